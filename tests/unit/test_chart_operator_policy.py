"""The ValidatingAdmissionPolicy confining the operator's own ServiceAccount, as rendered.

What it lets through is derived from the code, as the RBAC is (tests/unit/test_chart_rbac.py):
the child kinds from `render.CHILD_KINDS`, the report kinds from the audit's flavors, and
every write the chart's RBAC grants must be one the policy admits — or the operator would
be denied its own job. tests/e2e/test_chart.py proves against a real apiserver, with the
operator's real token, that the policy denies what it should and the operator still works.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from prodready import render
from prodready.api.labels import DOMAIN
from prodready.api.resource import LEASE
from prodready.audit.reports import FLAVORS
from prodready.controller.reconciler import APPLIED_HASH, PRODUCTION_SERVICE
from prodready.rules.grants import pattern_matches
from tests.cluster.controlplane import default_bin_dir
from tests.generate import GenerateError, documents, helm_template

pytestmark = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)

NAMESPACE = "platform"
POLICY = "ValidatingAdmissionPolicy"
BINDING = "ValidatingAdmissionPolicyBinding"
WRITE_VERBS = {"create", "update", "patch", "delete"}


def render_chart(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return documents(helm_template(values, release="prodready", namespace=NAMESPACE))


def only(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def variables(policy: dict[str, Any]) -> dict[str, str]:
    return {v["name"]: v["expression"] for v in policy["spec"]["variables"]}


def listed(expression: str) -> list[str]:
    """The one list literal in a CEL expression (rendered from a Helm list with toJson)."""
    (literal,) = re.findall(r"\[[^\]]*\]", expression)
    return list(json.loads(literal))


def group_resource(api_version: str, plural: str) -> str:
    group = api_version.rpartition("/")[0]
    return f"{group}/{plural}"


@pytest.fixture(scope="module")
def defaults() -> list[dict[str, Any]]:
    return render_chart()


@pytest.fixture(scope="module")
def policy(defaults: list[dict[str, Any]]) -> dict[str, Any]:
    return only(defaults, POLICY)


def test_on_by_default_bound_to_deny(defaults: list[dict[str, Any]]) -> None:
    policy = only(defaults, POLICY)
    binding = only(defaults, BINDING)
    assert policy["apiVersion"] == binding["apiVersion"] == "admissionregistration.k8s.io/v1"
    assert policy["metadata"]["name"] == "prodready-operator"
    assert binding["spec"] == {"policyName": "prodready-operator", "validationActions": ["Deny"]}
    assert policy["spec"]["failurePolicy"] == "Fail"
    for obj in (policy, binding):
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == "prodready"
        assert "namespace" not in obj["metadata"]


def test_it_matches_only_the_operators_service_account(policy: dict[str, Any]) -> None:
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == (
        "request.userInfo.username == 'system:serviceaccount:platform:prodready'"
    )
    # Every write of that user, subresources included: what is not allowed is denied.
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["apiGroups"] == rule["apiVersions"] == ["*"]
    assert rule["resources"] == ["*/*"]
    assert set(rule["operations"]) == {"CREATE", "UPDATE", "DELETE", "CONNECT"}


def test_the_service_account_name_follows_the_values() -> None:
    objects = render_chart({"serviceAccount": {"create": False, "name": "ops-bot"}})
    (condition,) = only(objects, POLICY)["spec"]["matchConditions"]
    assert "'system:serviceaccount:platform:ops-bot'" in condition["expression"]
    objects = render_chart({"fullnameOverride": "pr"})
    (condition,) = only(objects, POLICY)["spec"]["matchConditions"]
    assert "'system:serviceaccount:platform:pr'" in condition["expression"]
    assert only(objects, BINDING)["spec"]["policyName"] == "pr-operator"


def test_it_can_be_turned_off_for_clusters_before_1_30() -> None:
    objects = render_chart({"operatorPolicy": {"enabled": False}})
    assert not {o["kind"] for o in objects} & {POLICY, BINDING}


def test_validation_actions_are_configurable() -> None:
    objects = render_chart({"operatorPolicy": {"validationActions": ["Warn", "Audit"]}})
    assert only(objects, BINDING)["spec"]["validationActions"] == ["Warn", "Audit"]


@pytest.mark.parametrize(
    ("actions", "message"),
    [
        (["Deny", "Warn"], "at '/operatorPolicy/validationActions'"),
        (["Block"], "at '/operatorPolicy/validationActions/0'"),
        ([], "at '/operatorPolicy/validationActions'"),
    ],
)
def test_bad_validation_actions_are_refused(actions: list[str], message: str) -> None:
    with pytest.raises(GenerateError) as raised:
        render_chart({"operatorPolicy": {"validationActions": actions}})
    assert message in str(raised.value)


def test_the_allowed_kinds_are_the_ones_the_code_writes(policy: dict[str, Any]) -> None:
    found = variables(policy)
    assert set(listed(found["child"])) == {
        group_resource(kind.api_version, kind.plural) for kind in render.CHILD_KINDS
    }
    assert set(listed(found["report"])) == {
        group_resource(flavor.resource.api_version, flavor.resource.plural) for flavor in FLAVORS
    }
    assert group_resource(LEASE.api_version, LEASE.plural) in found["lease"]
    assert (
        group_resource(PRODUCTION_SERVICE.api_version, PRODUCTION_SERVICE.plural)
        in (found["status"])
    )


def admitted_kinds(policy: dict[str, Any]) -> set[str]:
    """group/resource of every whole object the policy may admit (subresources aside)."""
    found = variables(policy)
    kinds = set(listed(found["child"])) | set(listed(found["report"]))
    kinds |= set(listed(found["event"])) | {"coordination.k8s.io/leases"}
    # The webhook's own certificate: one Secret and one webhook configuration, by name.
    for name in ("webhookCertificate", "webhookTrust"):
        kinds |= set(re.findall(r"variables\.resource == '([^']*)'", found[name]))
    return kinds


def review_groups(policy: dict[str, Any]) -> set[str]:
    return set(listed(variables(policy)["review"]))


@pytest.mark.parametrize(
    "values", [{}, {"watch": {"namespaces": ["shop", "payments"]}}], ids=["cluster", "namespaced"]
)
def test_every_write_the_rbac_grants_is_one_the_policy_admits(values: dict[str, Any]) -> None:
    """Else the operator would be denied its own job by its own chart."""
    objects = render_chart(values)
    policy = only(objects, POLICY)
    admitted = admitted_kinds(policy)
    groups = review_groups(policy)
    for role in objects:
        if role["kind"] not in {"ClusterRole", "Role"}:
            continue
        labels = role["metadata"].get("labels") or {}
        if any(key.startswith("rbac.authorization.k8s.io/aggregate-to-") for key in labels):
            continue  # for people (exception authors, viewers), not the operator
        for rule in role["rules"]:
            if not WRITE_VERBS & set(rule["verbs"]):
                continue
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    name = f"{group}/{resource}"
                    if resource.endswith("/status"):
                        assert f"'prodready.io/{resource[:-7]}'" in variables(policy)["status"]
                        continue
                    assert name in admitted or group in groups, f"{role['kind']}: {name}"


def test_pod_templates_are_confined_as_the_renderer_makes_them(policy: dict[str, Any]) -> None:
    """Each forbidden pod field has its own check, and the renderer's own Deployment uses
    none of them (so the policy never stands in the operator's way)."""
    checks = " ".join(v["expression"] for v in policy["spec"]["validations"])
    for field in (
        "hostPID",
        "hostIPC",
        "hostNetwork",
        "privileged",
        "allowPrivilegeEscalation",
        "capabilities.add",
        "hostPort",
        "nodeName",
    ):
        assert field in checks, field
    allowed_volumes = listed(
        next(v["expression"] for v in policy["spec"]["validations"] if "volumes" in v["expression"])
    )
    assert allowed_volumes == ["name", "emptyDir"]
    deployment = render.render(
        {
            "apiVersion": "prodready.io/v1alpha1",
            "kind": "ProductionService",
            "metadata": {"name": "api", "namespace": "shop", "uid": "u-1"},
            "spec": {"image": "ghcr.io/example/api:1.0.0", "environment": "prod"},
        }
    )[1]
    pod = deployment["spec"]["template"]["spec"]
    assert not {"hostPID", "hostIPC", "hostNetwork", "nodeName"} & set(pod)
    assert all(set(volume) <= set(allowed_volumes) for volume in pod["volumes"])
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security.get("privileged") is not True
        assert security["allowPrivilegeEscalation"] is False
        assert not security["capabilities"].get("add")
        assert all("hostPort" not in port for port in container["ports"])
    assert deployment["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "prodready"


def account_check(policy: dict[str, Any]) -> str | None:
    return next(
        (
            v["expression"]
            for v in policy["spec"]["validations"]
            if "serviceAccountName" in v["expression"]
        ),
        None,
    )


def test_service_accounts_follow_the_platforms_allow_list(policy: dict[str, Any]) -> None:
    # allowed.serviceAccounts defaults to ["*"]: nothing to check.
    assert account_check(policy) is None
    objects = render_chart({"allowed": {"serviceAccounts": ["app-*", "web?", "ci.bot"]}})
    check = account_check(only(objects, POLICY))
    assert check is not None
    (compiled,) = cel_patterns(check, "shop")
    for name in ("app-", "app-web", "web1", "ci.bot"):
        assert compiled.match(name), name
    for name in ("admin", "web12", "ci-bot", "my-app-web"):
        assert not compiled.match(name), name


def cel_patterns(expression: str, namespace: str) -> list[re.Pattern[str]]:
    """The RE2 patterns of `matches(...)` calls in a CEL expression, with the request's
    namespace spliced in where the expression concatenates it."""
    compiled = []
    for argument in re.findall(r"matches\((r'.*?'(?: \+ [\w.]+ \+ r'.*?')*)\)", expression):
        parts = re.split(r"' \+ variables\.targetNamespace \+ r'", argument[2:-1])
        compiled.append(re.compile(namespace.join(parts)))
    return compiled


GLOBS = ["*.{namespace}.apps.example.com", "[*].wild.example.com", "api-?.example.com", "a.b"]
VALUES = [
    "x.shop.apps.example.com",
    "a.b.shop.apps.example.com",
    "*.shop.apps.example.com",
    "x.other.apps.example.com",
    "*.wild.example.com",
    "x.wild.example.com",
    "api-1.example.com",
    "api-12.example.com",
    "api-*.example.com",
    "a.b",
    "axb",
]


def test_the_policy_reads_allow_list_globs_as_the_webhook_does() -> None:
    """allowed.* are globs (rules/grants.py): the policy's regular expressions must agree
    with `pattern_matches` on every value, wildcard hosts and `{namespace}` included."""
    objects = render_chart({"allowed": {"ingressHosts": GLOBS}})
    (hosts,) = [
        v["expression"]
        for v in only(objects, POLICY)["spec"]["validations"]
        if "r.host.matches" in v["expression"]
    ]
    patterns = cel_patterns(hosts, "shop")
    assert len(patterns) == 2  # the rules' hosts and the TLS hosts
    for value in VALUES:
        expected = any(pattern_matches(g.replace("{namespace}", "shop"), value) for g in GLOBS)
        for pattern in patterns:
            assert (pattern.fullmatch(value) is not None) == expected, value


def test_the_default_allow_lists_reach_the_policy(policy: dict[str, Any]) -> None:
    checks = {v.get("message", ""): v["expression"] for v in policy["spec"]["validations"]}
    (hosts,) = [e for m, e in checks.items() if "allowed.ingressHosts" in m]
    (annotations,) = [e for m, e in checks.items() if "allowed.ingressAnnotations" in m]
    (host_pattern, _) = cel_patterns(hosts, "shop")
    # The default `*`: every concrete host, no wildcard host.
    assert host_pattern.fullmatch("orders.shop.example.com")
    assert not host_pattern.fullmatch("*.example.com")
    (annotation_pattern,) = cel_patterns(annotations, "shop")
    assert annotation_pattern.fullmatch("cert-manager.io/cluster-issuer")
    assert not annotation_pattern.fullmatch("nginx.ingress.kubernetes.io/server-snippet")
    # The reconciler's own annotation on every child it writes passes whatever the list.
    assert APPLIED_HASH.startswith(f"{DOMAIN}/")
    assert f"k.startsWith('{DOMAIN}/')" in annotations


def test_a_quote_in_an_allow_list_is_refused() -> None:
    with pytest.raises(GenerateError) as raised:
        render_chart({"allowed": {"ingressHosts": ["it's.example.com"]}})
    assert "a pattern cannot contain a quote" in str(raised.value)


def test_protected_namespaces_always_include_the_systems_own(policy: dict[str, Any]) -> None:
    def protected(policy: dict[str, Any]) -> list[str]:
        check = next(
            v["expression"]
            for v in policy["spec"]["validations"]
            if "variables.targetNamespace in" in v["expression"]
        )
        return listed(check)

    assert protected(policy) == ["kube-system", "kube-public", "kube-node-lease"]
    objects = render_chart({"operatorPolicy": {"protectedNamespaces": ["ingress", "kube-system"]}})
    assert protected(only(objects, POLICY)) == [
        "kube-system",
        "kube-public",
        "kube-node-lease",
        "ingress",
    ]


def test_the_webhook_certificate_is_written_by_name_and_only_its_ca_bundle_changes(
    policy: dict[str, Any],
) -> None:
    found = variables(policy)
    certificate = found["webhookCertificate"]
    assert "variables.resource == '/secrets'" in certificate
    assert "variables.targetNamespace == 'platform'" in certificate
    assert "request.name == 'prodready-webhook-tls'" in certificate
    assert "request.operation in ['CREATE', 'UPDATE']" in certificate  # never DELETE
    trust = found["webhookTrust"]
    assert "'admissionregistration.k8s.io/validatingwebhookconfigurations'" in trust
    assert "request.name == 'prodready'" in trust
    assert "request.operation == 'UPDATE'" in trust
    check = next(
        v["expression"]
        for v in policy["spec"]["validations"]
        if v["expression"].startswith("!variables.webhookTrust")
    )
    for field in (
        "rules",
        "failurePolicy",
        "namespaceSelector",
        "objectSelector",
        "timeoutSeconds",
        "matchPolicy",
        "sideEffects",
        "matchConditions",
        "clientConfig.service",
        "clientConfig.url",
    ):
        assert f"o.{field} == w.{field}" in check, field
    assert "caBundle" not in check
    # With cert-manager the token writes neither.
    other = variables(only(render_chart({"webhook": {"certificate": "cert-manager"}}), POLICY))
    assert other["webhookCertificate"].strip() == other["webhookTrust"].strip() == "false"


def test_the_lease_rule_names_the_configured_lease() -> None:
    objects = render_chart({"operator": {"leaseName": "elector"}})
    checks = " ".join(v["expression"] for v in only(objects, POLICY)["spec"]["validations"])
    assert "variables.targetNamespace == 'platform'" in checks
    assert "object.metadata.name == 'elector'" in checks


def test_sharded_replicas_may_write_their_shard_and_member_leases_only() -> None:
    objects = render_chart({"operator": {"leaseName": "elector", "shards": 16}})
    checks = " ".join(v["expression"] for v in only(objects, POLICY)["spec"]["validations"])
    assert "variables.targetNamespace == 'platform'" in checks
    assert "object.metadata.name == 'elector'" in checks
    assert "object.metadata.name.startsWith('elector-shard-')" in checks
    assert "object.metadata.name.startsWith('elector-member-')" in checks
    # DELETE only of member Leases (a dead replica's), never of the shards or the leader's.
    assert "request.operation == 'DELETE' ? request.name.startsWith('elector-member-')" in checks

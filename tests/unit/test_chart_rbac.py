"""The chart's RBAC is exactly what the operator's code uses: nothing missing, nothing more.

Two derivations meet here. The API calls are found in the code itself — every KubeClient
call site of the operator process (an AST scan), and every watch kopf is registered for
(the operator's own registry) — and each is mapped to the (group, resource, verb) it needs,
using the code's own constants for the kinds. The rendered ClusterRole/Roles are flattened
to the same triples. A new call site, a new watched kind or a new grant fails a test that
names it (tests/e2e/test_chart.py then proves the rules suffice against a real apiserver).
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import pytest

from prodready import render
from prodready.api.resource import LEASE, Resource
from prodready.app.process import assemble
from prodready.audit.reports import FLAVORS
from prodready.audit.vap_sync import BINDINGS as VAP_BINDINGS, POLICIES as VAP_POLICIES
from prodready.config import load_settings
from prodready.controller.reconciler import PRODUCTION_SERVICE
from prodready.kube.store import AUDITED_RESOURCES, NAMESPACE, POLICY_RESOURCES
from prodready.webhook.tls_rotation import SECRETS as CERTIFICATE_SECRET, WEBHOOK_CONFIGURATIONS
from tests.cluster.controlplane import default_bin_dir
from tests.generate import documents, helm_template

pytestmark = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "prodready"
RELEASE_NAMESPACE = "prodready"
CLUSTER = "*"  # the scope of a ClusterRole rule

Triple = tuple[str, str, str]  # (apiGroup, resource, verb)


def triples(resources: Iterable[Resource], verbs: Iterable[str], sub: str = "") -> set[Triple]:
    """(group, plural[/sub], verb) for each resource and verb."""
    suffix = f"/{sub}" if sub else ""
    return {(r.group, r.plural + suffix, verb) for r in resources for verb in verbs}


CHILDREN = list(render.CHILD_KINDS)
REPORTS = [flavor.resource for flavor in FLAVORS]
SECRETS = Resource("v1", "Secret", "secrets")
VAP_RESOURCES = [VAP_POLICIES, VAP_BINDINGS]
EVENTS = Resource("events.k8s.io/v1", "Event", "events")

# Every KubeClient call site of the operator process, by (module, call), with what it
# needs. Discovery (`served_resources`: GET /apis/<group>/<version>) and `ping`
# (GET /readyz) are granted to every authenticated user by Kubernetes' default
# system:discovery and system:public-info-viewer roles.
NAMESPACED_CALLS: dict[tuple[str, str], set[Triple]] = {
    # Cache warm-up: one LIST of ProductionServices and of each child kind.
    # The object store: seeded with one LIST per kind (what the controller reconciles from,
    # what the audit and the webhook judge with), repaired from metadata-only LISTs.
    ("kube/store.py", "list"): triples(
        [PRODUCTION_SERVICE, *CHILDREN, *AUDITED_RESOURCES, NAMESPACE, *POLICY_RESOURCES],
        ["list"],
    ),
    ("kube/store.py", "list_with_version"): triples(AUDITED_RESOURCES, ["list"]),
    ("kube/store.py", "served_resources"): set(),
    ("controller/operator.py", "ping"): set(),
    # Server-side apply is a PATCH; one that creates the object is authorised as `create`
    # as well (the apiserver checks both). Pruning is a DELETE.
    ("controller/reconciler.py", "apply"): triples(CHILDREN, ["patch", "create"]),
    # Never adopt: a child's name is read first (metadata only); a free name is created with
    # create semantics (POST), then its fields claimed for later applies (a JSON PATCH, and
    # a GET when another writer moved them meanwhile: kube/client.py).
    ("controller/reconciler.py", "get_metadata"): triples(CHILDREN, ["get"]),
    ("controller/reconciler.py", "create"): triples(CHILDREN, ["create"]),
    ("controller/reconciler.py", "delete"): triples(CHILDREN, ["delete"]),
    ("controller/reconciler.py", "patch_status"): triples(
        [PRODUCTION_SERVICE], ["patch"], "status"
    ),
    # Referenced Secrets, read by name for their key names.
    # Referenced Secrets' key names, for the reconciler, the audit and the webhook.
    ("kube/secret_keys.py", "get"): triples([SECRETS], ["get"]),
    ("controller/reconciler.py", "served_resources"): set(),
    # events.k8s.io Events: created, and a repeated one's series patched.
    ("kube/events.py", "request POST"): triples([EVENTS], ["create"]),
    ("kube/events.py", "request PATCH"): triples([EVENTS], ["patch"]),
    # The audit: reports listed, applied and deleted; the status of policies and exceptions.
    # The readiness dashboard served from the operator (readinessDashboard.enabled): the
    # ProductionServices and exceptions it shows (reports through audit/command.py's reader).
    ("dashboard/source.py", "list"): triples([PRODUCTION_SERVICE, POLICY_RESOURCES[1]], ["list"]),
    ("dashboard/source.py", "served_resources"): set(),
    ("audit/policy_status.py", "patch_status"): triples(POLICY_RESOURCES, ["patch"], "status"),
    ("audit/auditor.py", "list"): triples(REPORTS, ["list"]),
    ("audit/auditor.py", "apply"): triples(REPORTS, ["patch", "create"]),
    ("audit/auditor.py", "delete"): triples(REPORTS, ["delete"]),
    ("audit/auditor.py", "served_resources"): set(),
}
LEASE_CALLS: dict[tuple[str, str], set[Triple]] = {
    ("kube/leader.py", "get"): triples([LEASE], ["get"]),
    ("kube/leader.py", "create"): triples([LEASE], ["create"]),
    ("kube/leader.py", "request PUT"): triples([LEASE], ["update"]),
}
# Sharding (operator.shards above 1): the shard and member Leases, listed by label, renewed,
# handed back, and a dead replica's member Lease deleted; granted only when sharding.
SHARD_CALLS: dict[tuple[str, str], set[Triple]] = {
    ("kube/shards.py", "list"): triples([LEASE], ["list"]),
    ("kube/shards.py", "get"): triples([LEASE], ["get"]),
    ("kube/shards.py", "create"): triples([LEASE], ["create"]),
    ("kube/shards.py", "request PUT"): triples([LEASE], ["update"]),
    ("kube/shards.py", "request DELETE"): triples([LEASE], ["delete"]),
}
# The webhook's own certificate (webhook.certificate=operator, the default): its Secret read,
# created and renewed, the caBundle of its own webhook configuration read and patched; each
# granted by name (`create` cannot be), see certificate_rules.
CERTIFICATE_CALLS: dict[tuple[str, str], set[Triple]] = {
    ("webhook/tls_rotation.py", "get"): triples(
        [CERTIFICATE_SECRET, WEBHOOK_CONFIGURATIONS], ["get"]
    ),
    ("webhook/tls_rotation.py", "create"): triples([CERTIFICATE_SECRET], ["create"]),
    ("webhook/tls_rotation.py", "request PUT"): triples([CERTIFICATE_SECRET], ["update"]),
    ("webhook/tls_rotation.py", "request PATCH"): triples([WEBHOOK_CONFIGURATIONS], ["patch"]),
}
CERTIFICATE_SECRET_NAME: Final = "prodready-webhook-tls"
WEBHOOK_CONFIGURATION_NAME: Final = "prodready"
# Cluster-scoped reviews (granted by the ClusterRole in both modes): /metrics asks who holds
# a scrape's token and whether they may get /metrics (metrics.authentication, on by default);
# the webhook's /authorize asks whether a ProductionService's author may do what it implies
# (always).
SUBJECT_ACCESS_REVIEWS: Final = ("authorization.k8s.io", "subjectaccessreviews", "create")
REVIEW_CALLS: dict[tuple[str, str], set[Triple]] = {
    ("kube/access.py", "request POST"): {
        ("authentication.k8s.io", "tokenreviews", "create"),
        SUBJECT_ACCESS_REVIEWS,
    },
    ("webhook/authorization.py", "request POST"): {SUBJECT_ACCESS_REVIEWS},
}
# ReadinessPolicies with enforceInApiserver (rbac.admissionPolicies, off by default): the
# generated ValidatingAdmissionPolicies and bindings, applied, listed by label and deleted.
ADMISSION_POLICY_CALLS: dict[tuple[str, str], set[Triple]] = {
    ("audit/vap_sync.py", "apply"): triples(VAP_RESOURCES, ["patch", "create"]),
    ("audit/vap_sync.py", "list"): triples(VAP_RESOURCES, ["list"]),
    ("audit/vap_sync.py", "delete"): triples(VAP_RESOURCES, ["delete"]),
}
# Not part of the operator process: `prodready report` runs with the user's credentials.
NOT_THE_OPERATOR = {"audit/command.py"}
CLIENT_METHODS = {
    "get",
    "get_metadata",
    "list",
    "list_with_version",
    "apply",
    "patch_status",
    "delete",
    "create",
    "request",
    "served_resources",
    "ping",
}


def call_sites() -> Counter[tuple[str, str]]:
    """(module, call) of every KubeClient method called outside kube/client.py."""
    found: Counter[tuple[str, str]] = Counter()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module == "kube/client.py" or module in NOT_THE_OPERATOR:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in CLIENT_METHODS
                and "client" in ast.unparse(node.func.value)
            ):
                continue
            call = node.func.attr
            if call == "request":
                method = node.args[0]
                assert isinstance(method, ast.Constant), f"{module}:{node.lineno}: dynamic verb"
                call = f"request {method.value}"
            found[(module, call)] += 1
    return found


def watched() -> set[Triple]:
    """list + watch of everything the operator's kopf registry watches."""
    registry = assemble(load_settings({})).registry
    needed: set[Triple] = set()
    for handler in registry._watching.get_all_handlers():
        selector = handler.selector
        assert selector is not None
        plural = selector.plural or selector.any_name
        needed |= {
            (selector.group or "", str(plural), "list"),
            (selector.group or "", str(plural), "watch"),
        }
    return needed


def test_every_api_call_of_the_operator_is_accounted_for() -> None:
    sites = set(call_sites())
    known = set(NAMESPACED_CALLS) | set(LEASE_CALLS) | set(SHARD_CALLS) | set(REVIEW_CALLS)
    known |= set(CERTIFICATE_CALLS) | set(ADMISSION_POLICY_CALLS)
    assert sites - known == set(), (
        "new API calls: add them to NAMESPACED_CALLS/LEASE_CALLS with the RBAC they need, "
        "and to charts/prodready/templates/rbac.yaml"
    )
    assert known - sites == set(), "calls listed here that the code no longer makes"


def _rules(obj: dict[str, Any], scope: str) -> set[tuple[str, str, str, str, str]]:
    flat = set()
    for rule in obj["rules"]:
        assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    for name in rule.get("resourceNames") or ["*"]:
                        flat.add((scope, group, resource, verb, name))
    return flat


def granted(values: dict[str, Any] | None = None) -> set[tuple[str, str, str, str, str]]:
    """(scope, group, resource, verb, resourceName) of every rule bound to the operator."""
    objects = documents(helm_template(values, namespace=RELEASE_NAMESPACE))
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o for o in objects}
    result = set()
    for binding in objects:
        if binding["kind"] not in {"ClusterRoleBinding", "RoleBinding"}:
            continue
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "prodready", "namespace": RELEASE_NAMESPACE}
        ]
        namespace = binding["metadata"].get("namespace")
        ref = binding["roleRef"]
        role = roles[
            (ref["kind"], None if ref["kind"] == "ClusterRole" else namespace, ref["name"])
        ]
        result |= _rules(role, namespace or CLUSTER)
    return result


# Kinds that live in no namespace: granted by the ClusterRole whatever is watched.
CLUSTER_SCOPED = {"customresourcedefinitions", "namespaces", "readinesspolicies"}


def _cluster_scoped(triple: Triple) -> bool:
    return triple[1].split("/")[0] in CLUSTER_SCOPED


def expected_namespaced() -> set[Triple]:
    needed = set().union(*NAMESPACED_CALLS.values()) | watched()
    return {t for t in needed if not _cluster_scoped(t)}


def expected_cluster_scoped() -> set[Triple]:
    return {t for t in set().union(*NAMESPACED_CALLS.values()) | watched() if _cluster_scoped(t)}


def review_rules() -> set[tuple[str, str, str, str, str]]:
    return {(CLUSTER, *t, "*") for t in set().union(*REVIEW_CALLS.values())}


def lease_rules() -> set[tuple[str, str, str, str, str]]:
    by_name = {
        (RELEASE_NAMESPACE, g, r, v, "prodready") for g, r, v in triples([LEASE], ["get", "update"])
    }
    return by_name | {
        (RELEASE_NAMESPACE, g, r, "create", "*") for g, r, _ in triples([LEASE], ["create"])
    }


def certificate_rules() -> set[tuple[str, str, str, str, str]]:
    """The webhook certificate's grants: by name, in the release namespace (the Secret) or
    for the release's own webhook configuration; `create` of a Secret cannot be named."""
    rules = set()
    for group, resource, verb in set().union(*CERTIFICATE_CALLS.values()):
        if resource == WEBHOOK_CONFIGURATIONS.plural:
            rules.add((CLUSTER, group, resource, verb, WEBHOOK_CONFIGURATION_NAME))
        elif verb == "create":
            rules.add((RELEASE_NAMESPACE, group, resource, verb, "*"))
        else:
            rules.add((RELEASE_NAMESPACE, group, resource, verb, CERTIFICATE_SECRET_NAME))
    return rules


def test_cluster_wide_rbac_is_exactly_what_the_code_uses() -> None:
    crds = {t for t in watched() if t[1] == "customresourcedefinitions"}
    assert crds == {
        ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    }
    assert ("", "namespaces", "watch") in expected_cluster_scoped()
    expected = {(CLUSTER, *t, "*") for t in expected_namespaced() | expected_cluster_scoped()}
    expected |= lease_rules()
    expected |= review_rules()
    expected |= certificate_rules()
    actual = granted()
    assert actual - expected == set(), "granted but never used"
    assert expected - actual == set(), "used but not granted"


def test_namespace_scoped_rbac_grants_only_the_watched_namespaces() -> None:
    actual = granted({"watch": {"namespaces": ["shop", "payments"]}})
    expected = {(ns, *t, "*") for ns in ("shop", "payments") for t in expected_namespaced()}
    # Cluster-scoped kinds: CRDs, Namespaces (their labels; kopf also follows the named
    # namespaces with them), ReadinessPolicies.
    expected |= {(CLUSTER, *t, "*") for t in expected_cluster_scoped()}
    expected |= lease_rules() | review_rules() | certificate_rules()
    assert actual - expected == set(), "granted but never used"
    assert expected - actual == set(), "used but not granted"


def test_sharding_grants_the_leases_of_the_release_namespace() -> None:
    single, sharded = granted(), granted({"operator": {"shards": 16}})
    # Member Leases are named after pods, so the shard rules cannot name their objects.
    extra = {(RELEASE_NAMESPACE, *t, "*") for t in set().union(*SHARD_CALLS.values())}
    assert sharded - single == extra - single
    assert sharded - single
    assert {r for r in sharded - single if r[0] != RELEASE_NAMESPACE} == set()


def test_what_the_operator_can_never_do() -> None:
    actual = granted()
    # Beyond reading Secrets by name: its own certificate's Secret only (created once).
    own = certificate_rules()
    assert not {r for r in actual if r[2] == "secrets" and r[3] != "get"} - own
    assert not {r for r in actual if r[2] in {"pods", "pods/exec", "serviceaccounts/token"}}
    assert not {r for r in actual if r[1] == "rbac.authorization.k8s.io"}
    webhook_configurations = {r for r in actual if r[1] == "admissionregistration.k8s.io"}
    assert webhook_configurations == {r for r in own if r[2] == "validatingwebhookconfigurations"}
    assert {(r[0], r[3], r[4]) for r in webhook_configurations} == {
        (CLUSTER, "get", "prodready"),
        (CLUSTER, "patch", "prodready"),
    }
    assert not {r for r in actual if r[2] == "productionservices" and r[3] not in {"list", "watch"}}
    assert not {
        r for r in actual if r[3] in {"escalate", "bind", "impersonate", "deletecollection"}
    }


def test_with_cert_manager_the_certificate_grants_go() -> None:
    with_cert_manager = granted({"webhook": {"certificate": "cert-manager"}})
    assert not with_cert_manager & certificate_rules()
    assert not {r for r in with_cert_manager if r[1] == "admissionregistration.k8s.io"}
    assert not {r for r in with_cert_manager if r[2] == "secrets" and r[3] != "get"}


def test_rbac_can_be_left_to_the_cluster_administrator() -> None:
    objects = documents(helm_template({"rbac": {"create": False}}, namespace=RELEASE_NAMESPACE))
    assert not {o["kind"] for o in objects} & {
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    }


def test_metrics_reviews_are_granted_only_with_metrics_authentication() -> None:
    without = granted({"metrics": {"authentication": False}})
    # The webhook's /authorize still needs SubjectAccessReviews; TokenReviews go.
    assert without & review_rules() == {(CLUSTER, *SUBJECT_ACCESS_REVIEWS, "*")}
    assert review_rules() <= granted()


def test_admission_policies_are_granted_only_when_asked_for() -> None:
    asked = granted({"rbac": {"create": True, "admissionPolicies": True}})
    expected = {(CLUSTER, *t, "*") for t in set().union(*ADMISSION_POLICY_CALLS.values())}
    assert asked - granted() == expected
    assert not expected & granted()

"""A ProductionService grants nothing its author lacks, against the real kube-apiserver.

Issue 14 reproduced a user allowed only ProductionServices getting pods as an
admin-bound ServiceAccount, every value of a Secret she cannot read, tolerations of every
taint with a control-plane nodeSelector, and an Ingress for any host with any annotation.
Here that user, `alice` (a Role on ProductionServices only), tries each through
`kubectl --as alice` and is denied with a message naming the missing permission or the
platform's allow-list; `bob`, bound to the built-in `edit` ClusterRole in the namespace,
creates a compliant service that uses a Secret, a ServiceAccount and an Ingress.

The operator is a real `prodready run` process (admin credentials: the chart's RBAC for
SubjectAccessReviews is proven by tests/unit/test_chart_rbac.py); the module registers only
the `/authorize` entry of `render_webhook_configuration`, with the operator's CA and a
`url` client config, limited to namespaces carrying this module's label.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from prodready.webhook.configuration import AUTHORIZE_PATH, render_webhook_configuration
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import label_namespace, webhook_endpoint
from tests.e2e.support import CRD_FILE, OperatorProcess, get, install_crds, start_operator, wait_for

pytestmark = pytest.mark.cluster

LABEL = "prodready.io/e2e-authorization"
ENTRY = "authorize.productionservices.prodready.io"
CONFIGURATION = "prodready-e2e-authorization"
DENIED = f'admission webhook "{ENTRY}" denied the request: prodready: '
CLOSING = "a ProductionService cannot grant what its author lacks"


def production_service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {"image": "registry.example.com/shop/web:1.4.2", "environment": "dev", **spec},
    }


def apply_as(
    cluster: ControlPlane, user: str, namespace: str, obj: dict[str, Any], *extra: str
) -> tuple[int, str]:
    result = cluster.kubectl(
        "--as", user, "apply", "-n", namespace, "-f", "-", *extra,
        input=json.dumps(obj), check=False,
    )  # fmt: skip
    return result.returncode, result.stderr


def apply_admin(cluster: ControlPlane, namespace: str, *documents: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", "kind": "List", "items": list(documents)}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def _user(name: str) -> dict[str, str]:
    return {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": name}


def register(cluster: ControlPlane, operator: OperatorProcess, name: str, label: str) -> None:
    """Register only the /authorize entry of the configuration, for namespaces with `label`."""
    port, ca_file = webhook_endpoint(operator)
    document = render_webhook_configuration(
        operator_namespace="default",
        url=f"https://127.0.0.1:{port}",
        ca_bundle=ca_file.read_bytes(),
        name=name,
        timeout_seconds=10,
    )
    (entry,) = [w for w in document["webhooks"] if w["name"] == ENTRY]
    assert entry["failurePolicy"] == "Fail"
    assert entry["clientConfig"]["url"].endswith(AUTHORIZE_PATH)
    entry["namespaceSelector"]["matchExpressions"].append({"key": label, "operator": "Exists"})
    document["webhooks"] = [entry]
    cluster.kubectl("apply", "-f", "-", input=json.dumps(document))


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE)
    process = start_operator(cluster, tmp_path_factory.mktemp("authorization") / "operator.log")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def shop(cluster: ControlPlane, operator: OperatorProcess) -> Iterator[str]:
    """A namespace where alice may only handle ProductionServices and bob may `edit`, with
    a Secret and a ServiceAccount in it, checked by the operator's /authorize."""
    namespace = "authorization-shop"
    cluster.kubectl("create", "namespace", namespace)
    label_namespace(cluster, namespace, f"{LABEL}=true")
    apply_admin(
        cluster,
        namespace,
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "productionservices-only"},
            "rules": [
                {
                    "apiGroups": ["prodready.io"],
                    "resources": ["productionservices"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "alice"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "productionservices-only",
            },
            "subjects": [_user("alice")],
        },
        # Editors: bob, and carol (whose answers no other test has cached).
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "editors"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "edit",
            },
            "subjects": [_user("bob"), _user("carol")],
        },
        # `edit` covers ProductionServices only when aggregated, as a CRD's install would.
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "editors-productionservices"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "productionservices-only",
            },
            "subjects": [_user("bob"), _user("carol")],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "db-creds"},
            "stringData": {"url": "postgres://db/app"},
        },
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "deployer"}},
    )
    register(cluster, operator, CONFIGURATION, LABEL)
    try:
        probe = production_service("probe", exposure={"host": "*.probe.example.com"})

        def called() -> bool:
            _, stderr = apply_as(cluster, "bob", namespace, probe, "--dry-run=server")
            return DENIED in stderr

        wait_for(called, 30, "the apiserver to call /authorize")
        yield namespace
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found",
            check=False,
        )  # fmt: skip
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


# -- alice: ProductionServices only ----------------------------------------------------------

CASES = {
    "service account": (
        {"pod": {"serviceAccountName": "deployer"}},
        'user "alice" may not create pods in namespace "{ns}" (spec.pod.serviceAccountName: '
        'running pods as ServiceAccount "deployer" needs it)',
    ),
    "secretEnv": (
        {"secretEnv": [{"name": "DATABASE_URL", "secretName": "db-creds", "key": "url"}]},
        'user "alice" may not get secrets "db-creds" in namespace "{ns}" '
        "(spec.secretEnv[0].secretName)",
    ),
    "envFromSecrets": (
        {"envFromSecrets": [{"secretName": "db-creds"}]},
        'user "alice" may not get secrets "db-creds" in namespace "{ns}" '
        "(spec.envFromSecrets[0].secretName)",
    ),
    "tolerations Exists": (
        {"pod": {"tolerations": [{"operator": "Exists"}]}},
        "spec.pod.tolerations[0]: a toleration with no key (Exists, any effect), which "
        "tolerates every taint, the control plane's included, is not allowed by the "
        "platform's tolerations (PRODREADY_ALLOWED_TOLERATIONS",
    ),
    "control-plane nodeSelector": (
        {"pod": {"nodeSelector": {"node-role.kubernetes.io/control-plane": ""}}},
        'spec.pod.nodeSelector["node-role.kubernetes.io/control-plane"]: node selector '
        '"node-role.kubernetes.io/control-plane=" is not allowed by the platform\'s node '
        "selectors (PRODREADY_ALLOWED_NODE_SELECTORS",
    ),
    "wildcard host": (
        {"exposure": {"host": "*.example.com"}},
        'spec.exposure.host: wildcard host "*.example.com" is not allowed by the platform\'s '
        "Ingress hosts (PRODREADY_ALLOWED_INGRESS_HOSTS",
    ),
    "server-snippet": (
        {
            "exposure": {
                "host": "shop.example.com",
                "annotations": {"nginx.ingress.kubernetes.io/server-snippet": "return 200;"},
            }
        },
        'spec.exposure.annotations["nginx.ingress.kubernetes.io/server-snippet"]: Ingress '
        'annotation "nginx.ingress.kubernetes.io/server-snippet" is not allowed by the '
        "platform's Ingress annotations (PRODREADY_ALLOWED_INGRESS_ANNOTATIONS",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_productionservices_only_user_is_denied_each_privilege(
    cluster: ControlPlane, shop: str, case: str
) -> None:
    spec, expected = CASES[case]
    name = case.lower().replace(" ", "-").replace("_", "-")
    code, stderr = apply_as(cluster, "alice", shop, production_service(name, replicas=1, **spec))
    assert code != 0
    assert DENIED in stderr
    assert expected.format(ns=shop) in stderr
    # She may not create what every ProductionService renders, either.
    assert f'user "alice" may not create deployments.apps in namespace "{shop}"' in stderr
    assert stderr.rstrip().endswith(CLOSING)
    assert get(cluster, "productionservice", name, shop) is None


def test_an_editor_is_admitted_for_a_compliant_service_but_not_past_the_allow_lists(
    cluster: ControlPlane, shop: str
) -> None:
    compliant = production_service(
        "orders",
        replicas=2,
        secretEnv=[{"name": "DATABASE_URL", "secretName": "db-creds", "key": "url"}],
        envFromSecrets=[{"secretName": "db-creds"}],
        exposure={
            "host": "orders.shop.example.com",
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
        },
        autoscaling={"minReplicas": 2, "maxReplicas": 4},
        pod={
            "serviceAccountName": "deployer",
            "nodeSelector": {"kubernetes.io/arch": "amd64"},
            "tolerations": [
                {
                    "key": "node.kubernetes.io/unreachable",
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": 30,
                }
            ],
        },
    )
    code, stderr = apply_as(cluster, "bob", shop, compliant)
    assert code == 0, stderr
    assert get(cluster, "productionservice", "orders", shop) is not None
    # RBAC is not the whole story: what only the platform may allow stays refused.
    snippet = production_service(
        "orders-snippet",
        exposure={
            "host": "*.shop.example.com",
            "annotations": {"nginx.ingress.kubernetes.io/configuration-snippet": "x"},
        },
    )
    code, stderr = apply_as(cluster, "bob", shop, snippet)
    assert code != 0
    assert 'wildcard host "*.shop.example.com"' in stderr
    assert 'Ingress annotation "nginx.ingress.kubernetes.io/configuration-snippet"' in stderr
    assert 'user "bob" may not' not in stderr


def test_updates_are_checked_against_the_new_spec_and_metadata_changes_pass(
    cluster: ControlPlane, shop: str
) -> None:
    code, stderr = apply_as(cluster, "bob", shop, production_service("catalog", replicas=1))
    assert code == 0, stderr
    # alice may update ProductionServices, but not make this one read a Secret…
    reading = production_service(
        "catalog",
        replicas=1,
        secretEnv=[{"name": "DATABASE_URL", "secretName": "db-creds", "key": "url"}],
    )
    code, stderr = apply_as(cluster, "alice", shop, reading)
    assert code != 0
    assert 'user "alice" may not get secrets "db-creds"' in stderr
    live = get(cluster, "productionservice", "catalog", shop)
    assert live is not None
    assert "secretEnv" not in live["spec"]
    # …while a label, which asks for nothing, is hers to set.
    labelled = cluster.kubectl(
        "--as", "alice", "label", "productionservice", "catalog", "-n", shop, "team=web",
        check=False,
    )  # fmt: skip
    assert labelled.returncode == 0, labelled.stderr


def _reviews(cluster: ControlPlane) -> int:
    """SubjectAccessReviews created so far (the audit log records every create)."""
    count = 0
    for event in cluster.audit_events():
        record: Any = event
        if (record.get("objectRef") or {}).get("resource") == "subjectaccessreviews":
            count += 1
    return count


def test_an_apply_costs_a_handful_of_reviews_and_a_repeat_none(
    cluster: ControlPlane, shop: str
) -> None:
    spec = production_service(
        "cached",
        replicas=2,
        secretEnv=[{"name": "DATABASE_URL", "secretName": "db-creds", "key": "url"}],
        pod={"serviceAccountName": "deployer"},
    )
    before = _reviews(cluster)
    code, stderr = apply_as(cluster, "carol", shop, spec, "--dry-run=server")
    assert code == 0, stderr
    # Service, Deployment, PodDisruptionBudget, the Secret, pods (for the ServiceAccount).
    after_first = _reviews(cluster)
    assert after_first - before == 5
    code, stderr = apply_as(cluster, "carol", shop, spec, "--dry-run=server")
    assert code == 0, stderr
    assert _reviews(cluster) == after_first  # answered from the cache


def test_an_operator_that_cannot_ask_denies_instead_of_admitting(
    cluster: ControlPlane, operator: OperatorProcess, shop: str, tmp_path: Path
) -> None:
    """Fail closed: an operator whose credentials may read everything but not create
    SubjectAccessReviews answers every /authorize with a denial saying so."""
    label = "prodready.io/e2e-authorization-blind"
    name = "prodready-e2e-authorization-blind"
    account = "blind-operator"
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": account},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["get", "list", "watch"]}],
    }
    binding = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": account},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": account,
        },
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": shop}],
    }
    cluster.kubectl("create", "serviceaccount", account, "-n", shop)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [role, binding]}),
    )
    blind = start_operator(
        cluster, tmp_path / "operator.log", kubeconfig=cluster.mint_kubeconfig(account, shop)
    )
    try:
        label_namespace(cluster, shop, f"{label}=true")
        register(cluster, blind, name, label)
        compliant = production_service("blind", replicas=1)

        def denied() -> str:
            code, stderr = apply_as(cluster, "bob", shop, compliant, "--dry-run=server")
            return stderr if code != 0 and ENTRY in stderr else ""

        stderr = wait_for(denied, 30, "the blind operator's /authorize to deny")
        assert (
            "prodready could not check the author's permissions (SubjectAccessReview: "
            "403 Forbidden); the ProductionService is denied until they can be checked"
        ) in stderr
        assert get(cluster, "productionservice", "blind", shop) is None
    finally:
        cluster.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        cluster.kubectl("label", "namespace", shop, f"{label}-", check=False)
        blind.stop()
        cluster.kubectl("delete", "clusterrolebinding,clusterrole", account, "--ignore-not-found")
    # The log says why, once per denial, without the apiserver's text.
    reasons = [
        line.get("reason")
        for line in blind.log_lines()
        if line.get("message") == "authorization check failed; denying"
    ]
    assert reasons
    assert set(reasons) == {"403 Forbidden"}

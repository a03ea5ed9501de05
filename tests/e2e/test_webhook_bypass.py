"""No way around the webhook from one's own manifest, and no denial because of creation order
(issue 15), against the real kube-apiserver, which evaluates the configuration's
matchConditions and namespaceSelectors itself.

Every bypass is tried by `alice`, a namespace user holding only the built-in `edit`
ClusterRole (`kubectl --as alice`). One operator and one ValidatingWebhookConfiguration
serve the whole module; every entry also requires the label `prodready.io/e2e`, which
only these tests' namespaces carry.
"""

from __future__ import annotations

import copy
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.webhook.configuration import operator_username
from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import (
    E2E_LABEL,
    bare_deployment,
    compliant_deployment,
    compliant_objects,
    e2e_webhook_configuration,
    label_namespace,
    metric,
    without_liveness_probe,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    get,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

ENFORCE = "prodready.io/enforce=true"
AUDIT = "prodready.io/audit=true"
CONFIGURATION = "prodready-e2e-bypass"
# The operator is known by its ServiceAccount's username (the configuration's default for
# operator namespace `default`); the test impersonates it.
OPERATOR_USER = operator_username("default")
MANAGED_BY = {"app.kubernetes.io/managed-by": "prodready"}


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    process = start_operator(cluster, tmp_path_factory.mktemp("bypass") / "operator.log")
    document = e2e_webhook_configuration(process, CONFIGURATION)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(document))
    try:
        yield process
    finally:
        cluster.kubectl(
            "delete", "validatingwebhookconfiguration", CONFIGURATION, "--ignore-not-found",
            check=False,
        )  # fmt: skip
        process.stop()


def _as(
    cluster: ControlPlane, user: str, *args: str, body: Any = None
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "--as", user, *args, input=None if body is None else json.dumps(body), check=False
    )


def _apply(
    cluster: ControlPlane, user: str, namespace: str, *objects: dict[str, Any]
) -> subprocess.CompletedProcess[str]:
    body = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    return _as(cluster, user, "apply", "-n", namespace, "-f", "-", body=body)


def _denied(result: subprocess.CompletedProcess[str], what: str = "prodready denied") -> None:
    assert result.returncode != 0, f"admitted:\n{result.stdout}{result.stderr}"
    assert what in result.stderr, result.stderr


def _opt_in(cluster: ControlPlane, operator: OperatorProcess, namespace: str, *labels: str) -> str:
    """Label the namespace, give alice `edit` in it, and wait until the apiserver sends the
    namespace's requests to the webhook (configurations are picked up asynchronously)."""
    label_namespace(cluster, namespace, *labels, f"{E2E_LABEL}=true")
    cluster.kubectl(
        "create", "rolebinding", "alice-edit", "--clusterrole=edit", "--user=alice",
        "-n", namespace,
    )  # fmt: skip

    def called() -> bool:
        result = _as(
            cluster, "alice", "apply", "-n", namespace, "--dry-run=server", "-f", "-",
            body=bare_deployment("probe", namespace),
        )  # fmt: skip
        return result.returncode != 0 and "prodready denied" in result.stderr

    wait_for(called, 30, "the apiserver to call the webhook")
    return namespace


@pytest.fixture
def shop(cluster: ControlPlane, operator: OperatorProcess, namespace: str) -> str:
    return _opt_in(cluster, operator, namespace, ENFORCE)


def _non_compliant_pod_spec(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = copy.deepcopy(bare_deployment(name, "x")["spec"]["template"]["spec"])
    return spec


def _bare(kind: str, name: str) -> dict[str, Any]:
    """A non-compliant object of `kind` (no probes, no limits, `latest`, a literal password)."""
    spec = _non_compliant_pod_spec(name)
    spec["containers"][0]["env"] = [{"name": "DB_PASSWORD", "value": "hunter2"}]
    labels = {"app": name}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
                "spec": spec}  # fmt: skip
    template = {"metadata": {"labels": labels}, "spec": spec}
    if kind == "ReplicaSet":
        return {
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        }  # fmt: skip
    spec["restartPolicy"] = "Never"
    job = {"template": template}
    if kind == "Job":
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": job}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job}},
    }  # fmt: skip


def test_the_managed_by_label_is_no_way_around(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    labelled = bare_deployment("labelled", shop)
    labelled["metadata"]["labels"] = dict(MANAGED_BY)
    _denied(_apply(cluster, "alice", shop, labelled))
    assert get(cluster, "deployment", "labelled", shop) is None
    # First a compliant Deployment with the label (admitted), then a non-compliant update.
    good = compliant_deployment(shop, "sneaky")
    good["metadata"]["labels"] = {**good["metadata"]["labels"], **MANAGED_BY}
    result = _apply(cluster, "alice", shop, good)
    assert result.returncode == 0, result.stderr
    _denied(_apply(cluster, "alice", shop, without_liveness_probe(good)), "PR-HC-001")
    live = get(cluster, "deployment", "sneaky", shop)
    assert live is not None
    assert "livenessProbe" in live["spec"]["template"]["spec"]["containers"][0]


def test_the_operators_own_writes_are_known_by_its_username(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    """Only the operator's identity is not sent to the webhook (its children are judged
    through their ProductionService; the chart's admission policy confines what it writes)."""
    namespace, name = OPERATOR_USER.split(":")[2:]
    cluster.kubectl(
        "create", "rolebinding", "operator-edit", "--clusterrole=edit",
        f"--serviceaccount={namespace}:{name}", "-n", shop,
    )  # fmt: skip
    before = metric(operator, "prodready_webhook_requests_total", kind="Deployment")
    result = _apply(cluster, OPERATOR_USER, shop, bare_deployment("child", shop))
    assert result.returncode == 0, result.stderr
    assert metric(operator, "prodready_webhook_requests_total", kind="Deployment") == before


@pytest.mark.parametrize("kind", ["Pod", "Job", "CronJob", "ReplicaSet"])
def test_bare_pods_jobs_cronjobs_and_unowned_replicasets_are_checked(
    cluster: ControlPlane, operator: OperatorProcess, shop: str, kind: str
) -> None:
    name = f"bare-{kind.lower()}"
    _denied(_apply(cluster, "alice", shop, _bare(kind, name)), f"prodready denied {kind} {shop}/")
    assert get(cluster, kind.lower(), name, shop) is None


@pytest.mark.parametrize("kind", ["Pod", "ReplicaSet", "Job"])
def test_a_fake_owner_is_no_way_around(
    cluster: ControlPlane, operator: OperatorProcess, shop: str, kind: str
) -> None:
    """Claiming an owner of a checked kind (which the webhook would otherwise leave to that
    owner's own admission) helps only the controller that creates such objects."""
    owner = {"Pod": "ReplicaSet", "ReplicaSet": "Deployment", "Job": "CronJob"}[kind]
    group = "batch/v1" if owner == "CronJob" else "apps/v1"
    body = _bare(kind, f"owned-{kind.lower()}")
    body["metadata"]["ownerReferences"] = [
        {"apiVersion": group, "kind": owner, "name": "api", "controller": True,
         "uid": "6d1c4f5e-0000-4000-8000-000000000001"},
    ]  # fmt: skip
    _denied(_apply(cluster, "alice", shop, body), f"prodready denied {kind} {shop}/")


def test_a_rollout_never_waits_on_the_webhook_per_pod(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    """The Deployment is checked; the ReplicaSet and Pods kube-controller-manager creates
    for it are not sent to the webhook at all (matchConditions)."""
    pods_before = metric(operator, "prodready_webhook_requests_total", kind="Pod")
    sets_before = metric(operator, "prodready_webhook_requests_total", kind="ReplicaSet")
    result = _apply(cluster, "alice", shop, compliant_deployment(shop, "rolled"))
    assert result.returncode == 0, result.stderr
    wait_for(lambda: len(_pods(cluster, shop, "api")) >= 3, 60, "the Deployment's 3 pods")
    assert metric(operator, "prodready_webhook_requests_total", kind="Pod") == pods_before
    assert metric(operator, "prodready_webhook_requests_total", kind="ReplicaSet") == sets_before


def _replace_ephemeral(
    cluster: ControlPlane, user: str, namespace: str, pod: str, **security: Any
) -> subprocess.CompletedProcess[str]:
    live = cluster.kubectl_json("get", "pod", pod, "-n", namespace)
    live["spec"]["ephemeralContainers"] = [  # type: ignore[index]
        {"name": "raw", "image": "busybox:1.36", "securityContext": security}
    ]
    return _as(
        cluster, user, "replace", "--subresource=ephemeralcontainers", "-n", namespace, "-f", "-",
        body=live,
    )  # fmt: skip


def _pods(cluster: ControlPlane, namespace: str, app: str) -> list[str]:
    listed = cluster.kubectl_json("get", "pods", "-n", namespace, "-l", f"app={app}")
    return [str(item["metadata"]["name"]) for item in listed["items"]]  # type: ignore[attr-defined]


def test_a_privileged_ephemeral_container_is_denied(
    cluster: ControlPlane, operator: OperatorProcess, shop: str
) -> None:
    result = _apply(cluster, "alice", shop, compliant_deployment(shop, "debugged"))
    assert result.returncode == 0, result.stderr
    pod = wait_for(lambda: next(iter(_pods(cluster, shop, "api")), None), 60, "a pod")
    # `edit` does not grant the subresource at all: alice cannot add an ephemeral container.
    refused = _replace_ephemeral(cluster, "alice", shop, pod, privileged=True)
    _denied(refused, 'cannot update resource "pods/ephemeralcontainers"')
    # A debugger the platform grants exactly that (edit + pods/ephemeralcontainers) is
    # checked by the webhook: a raw update of the subresource with a privileged container.
    cluster.kubectl(
        "create", "role", "debugger", "--verb=update,patch",
        "--resource=pods/ephemeralcontainers", "-n", shop,
    )  # fmt: skip
    for role in ("role=debugger", "clusterrole=edit"):
        kind, name = role.split("=")
        cluster.kubectl(
            "create", "rolebinding", f"bob-{name}", f"--{kind}={name}", "--user=bob", "-n", shop
        )  # fmt: skip
    raw = _replace_ephemeral(cluster, "bob", shop, pod, privileged=True)
    _denied(raw, "ephemeral container raw is privileged")
    assert "PR-SC-004" in raw.stderr
    debug = _as(
        cluster, "bob", "debug", f"pod/{pod}", "-n", shop, "--image=busybox:1.36",
        "--profile=sysadmin", "--container=debugger",
    )  # fmt: skip
    _denied(debug, "ephemeral container debugger is privileged")
    after = cluster.kubectl_json("get", "pod", pod, "-n", shop)
    assert not after["spec"].get("ephemeralContainers")  # type: ignore[attr-defined]
    # An ordinary debugging container is let through.
    restricted = _as(
        cluster, "bob", "debug", f"pod/{pod}", "-n", shop, "--image=busybox:1.36",
        "--profile=restricted", "--container=looker",
    )  # fmt: skip
    assert restricted.returncode == 0, restricted.stderr


def test_a_namespace_with_both_labels_is_enforced(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    both = _opt_in(cluster, operator, namespace, ENFORCE, AUDIT)
    _denied(
        _apply(cluster, "alice", both, bare_deployment("web", both)),
        'admission webhook "enforce.workloads.prodready.io" denied the request',
    )
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "shop"},
        # Exposed in prod without CORS origins: PR-SC-002, its own to fix.
        "spec": {"image": "registry.example.com/shop/web:1.4.2", "replicas": 2,
                 "environment": "prod",
                 "exposure": {"host": "shop.example.com", "tlsSecretName": "shop-tls"}},
    }  # fmt: skip
    result = cluster.kubectl("apply", "-n", both, "-f", "-", input=json.dumps(service), check=False)
    _denied(result, "PR-SC-002")
    assert 'admission webhook "enforce.workloads.prodready.io"' in result.stderr


def test_helm_install_of_a_chart_with_a_service_monitor_succeeds(
    cluster: ControlPlane, operator: OperatorProcess, shop: str, tmp_path: Path
) -> None:
    """Helm creates a chart's Deployment before its ServiceMonitor and PrometheusRule (kinds
    it does not know go last): PR-MO-001 waits on the ServiceMonitor, so it is a warning at
    admission, not a denial."""
    chart = tmp_path / "api"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: api\nversion: 0.1.0\n")
    objects = compliant_objects(shop, "api")
    for obj in objects:
        obj["metadata"].pop("namespace", None)
    (chart / "templates" / "all.yaml").write_text(yaml.safe_dump_all(objects))
    kinds = [obj["kind"] for obj in objects]
    assert kinds.index("Deployment") < kinds.index("ServiceMonitor")
    # The Deployment alone is admitted, with PR-MO-001 as a warning saying why.
    alone = _apply(cluster, "alice", shop, compliant_deployment(shop, "alone"))
    assert alone.returncode == 0, alone.stderr
    assert "PR-MO-001 (error, not denied: waits on another object" in alone.stderr
    install = subprocess.run(
        [str(cluster.bin_dir / "helm"), "install", "api", str(chart), "--namespace", shop],
        env=cluster.env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    for obj in objects:
        assert get(cluster, obj["kind"].lower(), obj["metadata"]["name"], shop) is not None
    # Once the ServiceMonitor exists the workload is compliant: judged again with the
    # operator's view of the namespace, nothing is left to warn about.
    deployment = objects[0]
    probe = {**deployment, "metadata": {**deployment["metadata"], "name": "api-probe"}}

    def compliant() -> bool:
        result = _as(
            cluster, "alice", "apply", "-n", shop, "--dry-run=server", "-f", "-", body=probe
        )
        return result.returncode == 0 and "Warning" not in result.stderr

    wait_for(compliant, 30, "the Deployment judged compliant with its ServiceMonitor")

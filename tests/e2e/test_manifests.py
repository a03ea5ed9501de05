"""`kubectl apply -k manifests/` against the real control plane.

manifests/ is the chart's defaults with the webhook certificate from cert-manager
(tests/unit/test_chart_generated.py proves it is the current render). Here the apiserver
accepts it (server-side dry run, then a real apply), the operator becomes Ready, a second
apply changes nothing, and `kubectl delete -k` removes all of it. cert-manager itself is
not installed: stand-in CRDs (tests/fixtures/crds/cert-manager.io_*.standin.yaml) let the
apiserver validate the Certificate and Issuer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import REPO, get, install_crds, wait_for
from tests.generate import CRD_FILE, MANIFEST_NAMESPACE, MANIFESTS, documents

pytestmark = pytest.mark.cluster

CERT_MANAGER_CRDS = sorted((REPO / "tests" / "fixtures" / "crds").glob("cert-manager.io_*.yaml"))
CRD_NAME = "productionservices.prodready.io"


def crd_names(cluster: ControlPlane) -> set[str]:
    listed: Any = cluster.kubectl_json("get", "crds")
    return {str(item["metadata"]["name"]) for item in listed["items"]}


def rendered(cluster: ControlPlane) -> list[dict[str, Any]]:
    """What `kubectl apply -k manifests/` applies (kubectl's own kustomize)."""
    return documents(cluster.kubectl("kustomize", str(MANIFESTS)).stdout)


def exists(cluster: ControlPlane, obj: dict[str, Any]) -> bool:
    metadata = obj["metadata"]
    group = obj["apiVersion"].rpartition("/")[0]
    kind = f"{obj['kind'].lower()}.{group}" if group else obj["kind"].lower()
    scope = ["-n", metadata["namespace"]] if "namespace" in metadata else []
    result = cluster.kubectl("get", kind, metadata["name"], *scope, "-o", "name", check=False)
    return result.returncode == 0


@pytest.fixture(scope="module")
def crds_as_found(cluster: ControlPlane) -> Iterator[None]:
    """The stand-in cert-manager CRDs for this module; afterwards the CRDs are as found
    (`kubectl delete -k` deletes the ProductionService CRD, which other modules install)."""
    before = crd_names(cluster)
    install_crds(cluster, *CERT_MANAGER_CRDS)
    yield
    for name in sorted(crd_names(cluster) - before):
        cluster.kubectl("delete", "crd", name, "--wait=true", timeout=180)
    if CRD_NAME in before and CRD_NAME not in crd_names(cluster):
        install_crds(cluster, CRD_FILE)


def test_manifests_install_run_and_uninstall(cluster: ControlPlane, crds_as_found: None) -> None:
    objects = rendered(cluster)
    assert all(
        o["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "kubectl" for o in objects
    )
    # A server-side dry run checks every object against the apiserver's schemas, admission
    # and the CRDs, and persists nothing. Namespaced objects need their namespace to exist.
    cluster.kubectl("apply", "-f", str(MANIFESTS / "namespace.yaml"))
    try:
        cluster.kubectl("apply", "--dry-run=server", "-k", str(MANIFESTS))
        deployment = next(o for o in objects if o["kind"] == "Deployment")
        assert not exists(cluster, deployment), "a dry run must not create anything"

        cluster.kubectl("apply", "-k", str(MANIFESTS))
        assert all(exists(cluster, o) for o in objects)

        def available() -> bool:
            live = get(cluster, "deployment", "prodready", MANIFEST_NAMESPACE)
            status = (live or {}).get("status") or {}
            return bool(status.get("availableReplicas") == 2)

        wait_for(available, 120, "the operator Deployment of manifests/ to be available")
        # Applying again changes nothing: no field the server defaults fights the files.
        diff = cluster.kubectl("diff", "-k", str(MANIFESTS), check=False)
        assert diff.returncode == 0, diff.stdout + diff.stderr
        user = f"system:serviceaccount:{MANIFEST_NAMESPACE}:prodready"
        allowed = cluster.kubectl("auth", "can-i", "patch", "deployments", "--as", user, "-A")
        assert allowed.stdout.strip() == "yes"
    finally:
        cluster.kubectl(
            "delete", "-k", str(MANIFESTS), "--ignore-not-found", "--wait=true", timeout=240
        )
    assert [f"{o['kind']}/{o['metadata']['name']}" for o in objects if exists(cluster, o)] == []

"""Generated files are current: the chart's CRD, manifests/ (`make generate` rewrites them)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import default_bin_dir
from tests.generate import (
    CHART_CRD_FILE,
    CRD_FILE,
    MANIFEST_NAMESPACE,
    MANIFEST_VALUES,
    MANIFESTS,
    crd_files,
    documents,
    fill_markers,
    helm_template,
    main,
    manifest_files,
    stale_files,
)

needs_helm = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)


def test_chart_installs_exactly_the_generated_crd() -> None:
    assert CHART_CRD_FILE.read_bytes() == CRD_FILE.read_bytes()
    assert sorted(p.name for p in CHART_CRD_FILE.parent.iterdir()) == sorted(
        path.name for path in crd_files() if path.parent == CHART_CRD_FILE.parent
    )
    assert stale_files(crd_files()) == [], "run `make generate`"


@needs_helm
def test_manifests_are_the_current_chart_render() -> None:
    files = manifest_files()
    assert stale_files(files) == [], "manifests/ is stale: run `make generate`"
    assert sorted(MANIFESTS.iterdir()) == sorted(files), "a file in manifests/ is not generated"


@needs_helm
def test_manifests_carry_no_private_key() -> None:
    """The webhook certificate comes from cert-manager: nothing secret is committed."""
    objects = [doc for path in MANIFESTS.glob("*.yaml") for doc in documents(path.read_text())]
    kinds = {o["kind"] for o in objects}
    assert "Secret" not in kinds
    assert {"Certificate", "Issuer", "ValidatingWebhookConfiguration"} <= kinds
    assert all("PRIVATE KEY" not in path.read_text() for path in MANIFESTS.glob("*"))


@needs_helm
def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    assert listed == {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


def test_check_mode_names_a_stale_file_and_write_mode_fixes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = tmp_path / "manifests" / "kustomization.yaml"
    stale.parent.mkdir()
    stale.write_text("# edited by hand\n")
    monkeypatch.setattr("tests.generate.generated_files", lambda: {stale: "# generated\n"})
    monkeypatch.setattr("tests.generate.REPO", tmp_path)
    assert main(["--check"]) == 1
    assert "stale: manifests/kustomization.yaml (run `make generate`)" in capsys.readouterr().err
    assert stale.read_text() == "# edited by hand\n"
    assert main([]) == 0
    assert stale.read_text() == "# generated\n"
    assert main(["--check"]) == 0


def test_markers_are_filled_and_required() -> None:
    text = "a\n<!-- BEGIN x -->\nold\n<!-- END x -->\nb\n"
    assert fill_markers(text, {"x": "new\n"}) == "a\n<!-- BEGIN x -->\nnew\n<!-- END x -->\nb\n"
    with pytest.raises(RuntimeError, match="no <!-- BEGIN y -->"):
        fill_markers(text, {"y": "z\n"})


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    return str(obj["kind"]), str(obj["metadata"]["name"])


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    obj["metadata"]["labels"].pop("app.kubernetes.io/managed-by")
    if obj["kind"] == "ValidatingWebhookConfiguration":
        obj["metadata"].pop("annotations", None)
        for webhook in obj["webhooks"]:
            webhook["clientConfig"].pop("caBundle", None)
    return obj


@needs_helm
def test_manifests_install_what_the_chart_installs_with_cert_manager() -> None:
    """The same objects with the same specs as the chart with
    webhook.certificate=cert-manager (a static file holds no certificate the operator would
    rotate in place), plus the namespace and the CRDs that Helm creates by itself."""
    kubectl = default_bin_dir() / "kubectl"
    applied = subprocess.run(
        [str(kubectl), "kustomize", str(MANIFESTS)], capture_output=True, text=True, check=True
    ).stdout
    manifests: dict[tuple[str, str], Any] = {_key(o): o for o in documents(applied)}
    chart: dict[tuple[str, str], Any] = {
        _key(o): o for o in documents(helm_template(MANIFEST_VALUES))
    }
    assert set(manifests) - set(chart) == {
        ("Namespace", MANIFEST_NAMESPACE),
        ("CustomResourceDefinition", "productionservices.prodready.io"),
        ("CustomResourceDefinition", "readinesspolicies.prodready.io"),
        ("CustomResourceDefinition", "readinessexceptions.prodready.io"),
    }
    assert set(chart) - set(manifests) == set()
    for key in set(chart) & set(manifests):
        assert _comparable(manifests[key]) == _comparable(chart[key]), key


@needs_helm
def test_the_chart_defaults_differ_from_cert_manager_only_in_the_certificate() -> None:
    """By default the operator provisions the certificate: RBAC for its one Secret and its
    own webhook configuration instead of cert-manager's Certificate and Issuer; the
    Deployment, the operator's admission policy and the webhook configuration's
    annotation differ accordingly, nothing else."""
    defaults = {_key(o): o for o in documents(helm_template())}
    cert_manager = {_key(o): o for o in documents(helm_template(MANIFEST_VALUES))}
    assert set(defaults) - set(cert_manager) == {
        ("Role", "prodready-webhook-certificate"),
        ("RoleBinding", "prodready-webhook-certificate"),
        ("ClusterRole", "prodready-webhook-configuration"),
        ("ClusterRoleBinding", "prodready-webhook-configuration"),
    }
    assert set(cert_manager) - set(defaults) == {
        ("Certificate", "prodready-webhook"),
        ("Issuer", "prodready-selfsigned"),
    }
    certificate_dependent = {"Deployment", "ValidatingAdmissionPolicy"}
    for key in set(defaults) & set(cert_manager):
        if key[0] not in certificate_dependent:
            assert _comparable(defaults[key]) == _comparable(cert_manager[key]), key

"""`prodready validate` on inputs as repositories hold them: Helm charts and kustomizations.

These run the real helm and kubectl binaries (`PRODREADY_BIN_DIR`, else `.local/bin`),
put on PATH; without them the rendering tests are skipped with the reason.
"""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from prodready.cli import main
from prodready.rules.loader import load_inputs
from prodready.rules.sources import helm_sources, read_kustomization, template_path
from prodready.rules.toolchain import RenderError, Toolchain
from tests.cluster.controlplane import read_versions

REPO = Path(__file__).resolve().parents[2]
VALIDATE = REPO / "tests" / "fixtures" / "validate"
CHART = VALIDATE / "chart" / "shop"
KUSTOMIZE = VALIDATE / "kustomize"
BIN_DIR = Path(os.environ.get("PRODREADY_BIN_DIR") or REPO / ".local" / "bin")
HAVE_TOOLS = (BIN_DIR / "helm").is_file() and (BIN_DIR / "kubectl").is_file()
needs_tools = pytest.mark.skipif(
    not HAVE_TOOLS, reason=f"helm and kubectl not found in {BIN_DIR} (set PRODREADY_BIN_DIR)"
)


@pytest.fixture
def tools_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """helm and kubectl on PATH, no standalone kustomize (so `kubectl kustomize` is used)."""
    monkeypatch.setenv("PATH", f"{BIN_DIR}{os.pathsep}/usr/bin{os.pathsep}/bin")
    monkeypatch.chdir(REPO)


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any], str]:
    code = main(["validate", *args, "-o", "json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def _failing(document: dict[str, Any], kind: str, name: str) -> set[str]:
    (report,) = [
        o
        for o in document["objects"]
        if o["object"]["kind"] == kind and o["object"]["name"] == name
    ]
    return {f["rule"] for f in report["findings"] if f["result"] in ("fail", "warn")}


@needs_tools
@pytest.mark.usefixtures("tools_on_path")
def test_a_chart_directory_is_rendered_and_findings_point_at_templates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, document, err = _json(capsys, str(CHART.relative_to(REPO)))
    assert code == 1
    assert document["errors"] == []
    kinds = {(o["object"]["kind"], o["object"]["name"]) for o in document["objects"]}
    # The test hook Pod is skipped with a note; the migration hook Job is checked as a Job.
    assert kinds == {("Deployment", "release-name-web"), ("Job", "release-name-migrate")}
    assert "skipped 1 Helm test hook(s)" in err
    (web,) = [o for o in document["objects"] if o["object"]["kind"] == "Deployment"]
    assert web["source"] == {
        "file": "tests/fixtures/validate/chart/shop/templates/deployment.yaml",
        "line": 2,  # its `kind:` line
    }
    failing = _failing(document, "Deployment", "release-name-web")
    assert {"PR-HC-001", "PR-LG-001"} <= failing  # no liveness probe, LOG_FORMAT=text
    assert "PR-GS-002" in failing or "PR-RS-002" in failing  # replicas: 1 in prod


@needs_tools
@pytest.mark.usefixtures("tools_on_path")
def test_values_files_and_set_reach_helm(capsys: pytest.CaptureFixture[str]) -> None:
    chart = str(CHART.relative_to(REPO))
    _, document, _ = _json(capsys, chart, "-f", f"{chart}/values-prod.yaml")
    assert "PR-LG-001" not in _failing(document, "Deployment", "release-name-web")
    _, document, _ = _json(capsys, chart, "--set", "logFormat=json")
    assert "PR-LG-001" not in _failing(document, "Deployment", "release-name-web")


@needs_tools
@pytest.mark.usefixtures("tools_on_path")
def test_the_repository_chart_renders_without_input_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The chart asks for Kubernetes >= 1.30; a helm built from source says v1.20 unless told.
    kube_version = read_versions()["KUBERNETES_VERSION"]
    code, document, err = _json(capsys, "charts/prodready", "--kube-version", kube_version)
    assert document["errors"] == [], err
    assert "invalid YAML" not in err
    names = {o["object"]["kind"] for o in document["objects"]}
    assert "Deployment" in names
    assert code in (0, 1)
    for report in document["objects"]:
        assert report["source"]["file"].startswith("charts/prodready/templates/")
        template = (REPO / report["source"]["file"]).read_text().splitlines()
        assert template[report["source"]["line"] - 1].startswith("kind: ")


@needs_tools
@pytest.mark.usefixtures("tools_on_path")
def test_a_kustomize_overlay_is_rendered_and_its_base_and_patch_are_not_checked_alone(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, document, err = _json(capsys, str(KUSTOMIZE.relative_to(REPO)))
    assert document["errors"] == [], err
    (api,) = document["objects"]  # once, as the overlay renders it; not the base, not the patch
    assert api["object"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "namespace": "shop-prod",
        "name": "api",
    }
    assert api["environment"] == "prod"
    # It points at the resource that declares it, in the base.
    assert api["source"] == {
        "file": "tests/fixtures/validate/kustomize/base/deployment.yaml",
        "line": 1,
    }
    failing = _failing(document, "Deployment", "api")
    assert "PR-HC-001" not in failing  # the patch adds the liveness probe
    assert "base: a kustomization included by" in err
    assert code == 1


@needs_tools
@pytest.mark.usefixtures("tools_on_path")
def test_an_overlay_directory_given_directly(capsys: pytest.CaptureFixture[str]) -> None:
    _, document, err = _json(capsys, str((KUSTOMIZE / "overlays" / "prod").relative_to(REPO)))
    assert document["errors"] == [], err
    assert [o["object"]["name"] for o in document["objects"]] == ["api"]


def test_a_patch_given_on_its_own_is_not_a_whole_object(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    patch = str((KUSTOMIZE / "overlays" / "prod" / "replicas.yaml").relative_to(REPO))
    code, document, err = _json(capsys, patch)
    assert document["objects"] == []
    assert "a kustomize patch listed by" in err
    assert code == 0


def test_without_a_toolchain_patches_are_still_recognised() -> None:
    loaded = load_inputs([str(KUSTOMIZE)], io.BytesIO())
    files = {Path(o.file).name for o in loaded.objects}
    assert "replicas.yaml" not in files
    assert {"deployment.yaml", "service.yaml"} <= files
    assert any("a kustomize patch listed by" in note for note in loaded.notes)


@needs_tools
def test_a_missing_binary_is_an_input_error_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.chdir(REPO)
    code = main(["validate", str(CHART.relative_to(REPO))])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs the `helm` binary on PATH" in err
    code = main(["validate", str(KUSTOMIZE.relative_to(REPO))])
    err = capsys.readouterr().err
    assert code == 2
    assert "needs `kustomize` or `kubectl` on PATH" in err


def test_remote_kustomize_resources_are_refused_before_rendering(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n  - https://github.com/example/app//deploy?ref=main\n"
    )
    # A kustomize that would prove it ran: the refusal must come first.
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "kustomize").write_text("#!/bin/sh\necho ran > " + str(tmp_path / "ran") + "\n")
    (fake / "kustomize").chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    code = main(["validate", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "remote resources (https://github.com/example/app//deploy?ref=main)" in err
    assert not (tmp_path / "ran").exists()


def test_kustomize_is_preferred_to_kubectl_and_failures_are_reported(tmp_path: Path) -> None:
    for name in ("kustomize", "kubectl"):
        (tmp_path / name).write_text(f"#!/bin/sh\necho {name} failed >&2\nexit 3\n")
        (tmp_path / name).chmod(0o755)
    toolchain = Toolchain(path=str(tmp_path))
    assert toolchain.kustomize_command("d")[1:] == ["build", "d"]
    with pytest.raises(RenderError, match=r"kustomize build failed \(exit 3\): kustomize failed"):
        toolchain.kustomize("d")
    (tmp_path / "kustomize").unlink()
    assert toolchain.kustomize_command("d")[1:] == ["kustomize", "d"]


def test_rendering_is_bounded_in_time_and_size(tmp_path: Path) -> None:
    (tmp_path / "helm").write_text("#!/bin/sh\nexec sleep 30\n")
    (tmp_path / "helm").chmod(0o755)
    with pytest.raises(RenderError, match=r"did not finish within 0\.5 s"):
        Toolchain(path=str(tmp_path), timeout=0.5).helm("chart")
    (tmp_path / "helm").write_text("#!/bin/sh\nexec yes\n")
    with pytest.raises(RenderError, match="wrote more than 1 MiB"):
        Toolchain(path=str(tmp_path), max_bytes=1024 * 1024).helm("chart")


def test_helm_source_comments_map_to_template_files() -> None:
    rendered = (
        b"---\n# Source: shop/templates/a.yaml\nkind: A\n"
        b"---\n# Source: shop/charts/db/templates/b.yaml\n"
    )
    assert helm_sources(rendered) == [
        (2, "shop/templates/a.yaml"),
        (5, "shop/charts/db/templates/b.yaml"),
    ]
    assert template_path("deploy/chart", "shop/templates/a.yaml") == os.path.join(
        "deploy/chart", "templates/a.yaml"
    )


def test_kustomization_references(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [base, extra.yaml, git@github.com:x/y.git]\n"
        "patchesStrategicMerge: [p1.yaml]\n"
        "patches:\n  - path: p2.yaml\n  - patch: |-\n      - op: add\n"
        "patchesJson6902:\n  - path: p3.yaml\n"
    )
    found = read_kustomization(str(tmp_path / "kustomization.yaml"))
    real = os.path.realpath(tmp_path)
    assert found.includes == {os.path.join(real, "base")}
    assert found.resources == {os.path.join(real, "extra.yaml")}
    assert found.patches == {os.path.join(real, name) for name in ("p1.yaml", "p2.yaml", "p3.yaml")}
    assert found.problem is not None
    assert "git@github.com:x/y.git" in found.problem
    (tmp_path / "kustomization.yaml").write_text("- not a mapping\n")
    assert read_kustomization(str(tmp_path / "kustomization.yaml")).problem == (
        "the kustomization is not a mapping"
    )


def test_exclude_globs(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(VALIDATE)
    code = main(["validate", "input", "--exclude", "more/*", "-o", "json"])
    document = json.loads(capsys.readouterr().out)
    assert {o["source"]["file"] for o in document["objects"]} == {"input/shop.yaml"}
    assert code == 1
    main(["validate", "input", "--exclude", "shop.yaml", "--exclude", "nightly.*", "-q"])
    assert "no workloads" not in capsys.readouterr().err  # -q: no notes


def test_stdin_is_unaffected_by_rendering(capsys: pytest.CaptureFixture[str]) -> None:
    sys.stdin = io.TextIOWrapper(io.BytesIO((VALIDATE / "input" / "shop.yaml").read_bytes()))
    try:
        code = main(["validate", "-", "-q"])
    finally:
        sys.stdin = sys.__stdin__
    assert code == 1
    assert "Deployment shop/web" in capsys.readouterr().out


def test_files_given_one_by_one_as_pre_commit_does(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    template = str((CHART / "templates" / "deployment.yaml").relative_to(REPO))
    kustomization = str((KUSTOMIZE / "overlays" / "prod" / "kustomization.yaml").relative_to(REPO))
    resource = str((KUSTOMIZE / "base" / "deployment.yaml").relative_to(REPO))
    code, document, err = _json(capsys, template, kustomization, resource)
    # A template is not YAML and a kustomization no object: each is a note, not an error.
    assert document["errors"] == []
    assert f"{template}: a template of the Helm chart in" in err
    assert f"{kustomization}: a kustomization; give its directory" in err
    # A base's resource is a whole object: checked on its own when given on its own.
    assert [o["source"]["file"] for o in document["objects"]] == [resource]
    assert code == 1


def test_a_kustomization_met_without_rendering_is_noted() -> None:
    loaded = load_inputs([str(KUSTOMIZE / "base")], io.BytesIO())
    assert any("a kustomization; give its directory" in note for note in loaded.notes)
    assert {o.obj["kind"] for o in loaded.objects} == {"Deployment", "Service"}


def test_kustomize_objects_are_traced_to_their_declaration() -> None:
    from prodready.rules.loader import _origin

    origins = {("Deployment", "api"): ("base/d.yaml", 3), ("Deployment", "a"): ("x.yaml", 1)}
    named = {"kind": "Deployment", "metadata": {"name": "prod-api-v2"}}
    assert _origin(named, origins) == ("base/d.yaml", 3)  # the longest declared name inside
    assert _origin({"kind": "Service", "metadata": {"name": "api"}}, origins) is None
    assert _origin({"kind": "Deployment"}, origins) is None

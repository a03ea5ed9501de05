"""`prodready fix`: safe fixes applied in place, everything else byte for byte as it was."""

from __future__ import annotations

import difflib
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from prodready.cli import main
from prodready.rules.fixes import (
    FixTarget,
    PatchError,
    apply_operation,
    guess_mapping_indent,
    plan_file,
    secret_guard,
    split_documents,
)
from prodready.rules.model import Finding, ObjectRef, Result, Severity

# Two documents written differently (flow maps, 4-space indentation, unindented lists,
# quoting styles), with comments everywhere, and a ConfigMap that has nothing to fix.
MANIFEST = """\
# Shop: the web front end and its worker.
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the public site
  namespace: shop
  labels: {app: web, prodready.io/environment: prod}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        # the one container
        - name: web
          image: "registry.example.com/shop/web:1.4.2"
          ports:
            - {name: http, containerPort: 8080}
          env:
            - name: LOG_FORMAT
              value: 'text'    # legacy
            - name: DEBUG
              value: "true"
          readinessProbe:
            httpGet: {path: /readyz, port: http}
---
# config, untouched
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: shop}
data:
  greeting: "hello:  world"
---
apiVersion: apps/v1
kind: Deployment
metadata:
    name: worker
    namespace: shop
    labels:
        prodready.io/environment: prod
spec:
    replicas: 2
    selector:
        matchLabels: {app: worker}
    template:
        metadata:
            labels: {app: worker}
        spec:
            containers:
            -   name: worker
                image: registry.example.com/shop/worker:1.4.2
                env:
                -   name: LOG_FORMAT
                    value: text
"""
CHANGED_LINES = {
    "              value: 'text'    # legacy\n",
    '              value: "true"\n',
    "                    value: text\n",
}


def _fix(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["fix", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _validate_json(capsys: pytest.CaptureFixture[str], path: str) -> dict[str, Any]:
    main(["validate", path, "-o", "json"])
    document: dict[str, Any] = json.loads(capsys.readouterr().out)
    return document


@pytest.fixture
def manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "shop.yaml"
    path.write_text(MANIFEST)
    return path


def test_fix_changes_only_the_fixed_fields_and_is_idempotent(
    capsys: pytest.CaptureFixture[str], manifest: Path
) -> None:
    before = _validate_json(capsys, "shop.yaml")
    fixable = {
        (o["object"]["name"], f["rule"])
        for o in before["objects"]
        for f in o["findings"]
        if f["result"] in ("fail", "warn") and f["patch"]
    }
    assert ("web", "PR-LG-001") in fixable
    assert ("worker", "PR-LG-001") in fixable

    code, _, err = _fix(capsys, "shop.yaml")
    assert code == 0
    assert "fixed" in err
    fixed = manifest.read_text()
    original_lines = MANIFEST.splitlines(keepends=True)
    fixed_lines = fixed.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=original_lines, b=fixed_lines, autojunk=False)
    removed = {
        line
        for tag, i1, i2, _, _ in matcher.get_opcodes()
        if tag in ("replace", "delete")
        for line in original_lines[i1:i2]
    }
    # Every other byte of the file — comments, flow maps, quotes, indentation — is kept.
    assert removed == CHANGED_LINES
    assert "              value: 'json'    # legacy\n" in fixed_lines
    assert '              value: "false"\n' in fixed_lines
    assert "                    value: json\n" in fixed_lines
    # Inserted blocks follow each document's own indentation.
    assert "          securityContext:\n" in fixed_lines
    assert "                securityContext:\n" in fixed_lines

    after = _validate_json(capsys, "shop.yaml")
    left = [
        (o["object"]["name"], f["rule"])
        for o in after["objects"]
        for f in o["findings"]
        if f["result"] in ("fail", "warn") and f["patch"]
    ]
    assert left == []

    code, _, err = _fix(capsys, "shop.yaml")
    assert code == 0
    assert manifest.read_text() == fixed  # a second run changes nothing
    assert "fixed 0 finding(s) in 0 file(s)" in err


def test_diff_prints_and_writes_nothing(capsys: pytest.CaptureFixture[str], manifest: Path) -> None:
    code, out, err = _fix(capsys, "shop.yaml", "--diff")
    assert code == 1
    assert out.startswith("--- a/shop.yaml\n+++ b/shop.yaml\n")
    assert (
        "-              value: 'text'    # legacy\n+              value: 'json'    # legacy\n"
        in out
    )
    assert "would fix" in err
    assert manifest.read_text() == MANIFEST
    _fix(capsys, "shop.yaml")
    code, out, _ = _fix(capsys, "shop.yaml", "--diff")
    assert (code, out) == (0, "")


def test_fix_keeps_file_mode_and_a_selection(
    capsys: pytest.CaptureFixture[str], manifest: Path
) -> None:
    manifest.chmod(0o640)
    code, _, _ = _fix(capsys, "shop.yaml", "--only", "PR-LG-001")
    assert code == 0
    assert os.stat(manifest).st_mode & 0o777 == 0o640
    text = manifest.read_text()
    assert "value: 'json'" in text
    assert 'value: "true"' in text  # PR-ER-001 was not selected
    assert "securityContext" not in text


def test_what_cannot_be_fixed_in_place_is_refused_with_a_reason(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _fix(capsys, "-")
    assert code == 2
    assert "standard input (-) cannot be fixed" in err
    document = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "labels": {"prodready.io/environment": "prod"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "r/api:1",
                            "env": [{"name": "DEBUG", "value": "1"}],
                        }
                    ]
                },
            },
        },
    }
    (tmp_path / "api.json").write_text(json.dumps(document))
    code, _, err = _fix(capsys, "api.json")
    assert code == 0
    assert "not fixed: a JSON file: prodready fixes YAML files only" in err
    assert json.loads((tmp_path / "api.json").read_text()) == document


def _finding(patch: list[dict[str, Any]], kind: str = "Deployment") -> Finding:
    return Finding(
        rule_id="PR-LG-001",
        title="t",
        severity=Severity.ERROR,
        result=Result.FAIL,
        object=ObjectRef(api_version="v1", kind=kind, namespace=None, name="x"),
        container="app",
        path="spec",
        message="m",
        fix="f",
        patch=patch,
    )


def test_values_behind_references_and_secrets_are_never_patched() -> None:
    obj = {
        "kind": "Deployment",
        "spec": {"env": [{"name": "LOG_FORMAT", "valueFrom": {"secretKeyRef": {"name": "s"}}}]},
    }
    behind = _finding([{"op": "add", "path": "/spec/env/0/value", "value": "json"}])
    assert "valueFrom" in (secret_guard(obj, behind) or "")
    into = _finding([{"op": "replace", "path": "/spec/env/0/valueFrom", "value": {}}])
    assert "valueFrom" in (secret_guard(obj, into) or "")
    assert "a Secret" in (secret_guard({"kind": "Secret"}, behind) or "")
    fine = _finding([{"op": "add", "path": "/spec/replicas", "value": 2}])
    assert secret_guard(obj, fine) is None


def test_patch_operations() -> None:
    document: dict[str, Any] = {"a": {"b": [1, 2]}, "c": {"d": 1}}
    apply_operation(document, {"op": "add", "path": "/a/b/-", "value": 3})
    apply_operation(document, {"op": "add", "path": "/a/b/0", "value": 0})
    apply_operation(document, {"op": "replace", "path": "/a/b/1", "value": 9})
    apply_operation(document, {"op": "add", "path": "/c", "value": {"e": 2}})  # merges
    apply_operation(document, {"op": "add", "path": "/f~1g", "value": True})
    apply_operation(document, {"op": "remove", "path": "/a/b/3"})
    assert document == {"a": {"b": [0, 9, 2]}, "c": {"d": 1, "e": 2}, "f/g": True}
    for bad, message in [
        ({"op": "replace", "path": "/nope", "value": 1}, "no field 'nope' to replace"),
        ({"op": "add", "path": "/x/y", "value": 1}, "no field 'x'"),
        ({"op": "add", "path": "/a/b/7", "value": 1}, "no item '7'"),
        ({"op": "add", "path": "/c/d/e", "value": 1}, "below a value"),
        ({"op": "move", "path": "/a", "from": "/c"}, "operation 'move' is not applied"),
        ({"op": "add", "path": "", "value": {}}, "whole object"),
        ({"op": "add", "path": "a", "value": 1}, "not a JSON pointer"),
    ]:
        with pytest.raises(PatchError, match=message):
            apply_operation(document, bad)


def test_plan_refuses_an_object_it_cannot_find_or_a_patch_that_does_not_apply() -> None:
    text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec: {}\n"
    missing = FixTarget(
        line=1,
        object=ObjectRef(api_version="v1", kind="Pod", namespace=None, name="other"),
        findings=(_finding([{"op": "add", "path": "/spec/a", "value": 1}]),),
    )
    plan = plan_file(text, [missing])
    assert not plan.changed
    assert plan.refused[0][1] == "the object was not found in the file as written"
    broken = FixTarget(
        line=1,
        object=ObjectRef(api_version="v1", kind="Pod", namespace=None, name="x"),
        findings=(_finding([{"op": "replace", "path": "/spec/a", "value": 1}]),),
    )
    plan = plan_file(text, [broken])
    assert plan.refused[0][1] == "its patch does not apply: no field 'a' to replace"


def test_layout_helpers() -> None:
    assert guess_mapping_indent("a:\n    b: 1\n") == 4
    assert guess_mapping_indent("a:\n  - b\n") == 2
    segments = split_documents("# head\n---\na: 1\n--- \nb: 2\n")
    assert [(s.line, s.marker, s.body) for s in segments] == [
        (1, "", "# head\n"),
        (2, "---\n", "a: 1\n"),
        (4, "--- \n", "b: 2\n"),
    ]


def test_rendered_objects_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Path(__file__).resolve().parents[2]
    bin_dir = Path(os.environ.get("PRODREADY_BIN_DIR") or repo / ".local" / "bin")
    if not (bin_dir / "helm").is_file() or not (bin_dir / "kubectl").is_file():
        pytest.skip(f"helm and kubectl not found in {bin_dir} (set PRODREADY_BIN_DIR)")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(repo)
    chart = "tests/fixtures/validate/chart/shop"
    before = (repo / chart / "templates" / "deployment.yaml").read_bytes()
    code, out, err = _fix(capsys, chart, "--diff")
    assert (code, out) == (0, "")
    assert "not fixed: rendered by helm template: change the template or its values" in err
    assert (repo / chart / "templates" / "deployment.yaml").read_bytes() == before
    overlay = "tests/fixtures/validate/kustomize"
    code, out, err = _fix(capsys, overlay, "--diff")
    assert (code, out) == (0, "")
    assert "not fixed: built by kustomize: change the resource or add a patch" in err


def test_stdin_validate_still_offers_patches(capsys: pytest.CaptureFixture[str]) -> None:
    sys.stdin = io.TextIOWrapper(io.BytesIO(MANIFEST.encode()))
    try:
        main(["validate", "-", "-o", "json"])
    finally:
        sys.stdin = sys.__stdin__
    document = json.loads(capsys.readouterr().out)
    assert any(f["patch"] for o in document["objects"] for f in o["findings"])


def test_line_ends_and_symbolic_links(capsys: pytest.CaptureFixture[str], manifest: Path) -> None:
    windows = manifest.parent / "windows.yaml"
    windows.write_bytes(MANIFEST.replace("\n", "\r\n").encode())
    (manifest.parent / "link.yaml").symlink_to("shop.yaml")
    code, _, err = _fix(capsys, "windows.yaml", "link.yaml")
    assert code == 0
    fixed = windows.read_bytes()
    assert b"value: 'json'    # legacy\r\n" in fixed
    assert b"\n" not in fixed.replace(b"\r\n", b"")  # every line end is still CRLF
    assert "link.yaml: PR-LG-001 Deployment shop/web: not fixed: a symbolic link" in err
    assert manifest.read_text() == MANIFEST
    assert (manifest.parent / "link.yaml").is_symlink()

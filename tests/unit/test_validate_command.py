"""`prodready validate` and `prodready rules`: inputs, output formats (golden files), exit codes.

Regenerate the golden files after an intended output change with
`PRODREADY_REGENERATE_GOLDENS=1 .venv/bin/pytest tests/unit/test_validate_command.py`.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from prodready.cli import main
from prodready.rules import loader
from prodready.rules.formats import artifact_uri
from prodready.rules.loader import LoadResult, load_bytes, load_inputs

FIXTURES = Path(__file__).parent.parent / "fixtures"
VALIDATE = FIXTURES / "validate"
GOLDEN = VALIDATE / "golden"
SARIF_SCHEMA = FIXTURES / "sarif" / "sarif-schema-2.1.0.json"
REGENERATE = os.environ.get("PRODREADY_REGENERATE_GOLDENS") == "1"
SECRET_VALUE = "do-not-print-me"


def _run(
    capsys: pytest.CaptureFixture[str], *args: str, stdin: bytes | None = None
) -> tuple[int, str, str]:
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        code = main(["validate", *args])
    finally:
        sys.stdin = sys.__stdin__
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def in_validate_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the fixture directory so file paths in the output are short and stable."""
    monkeypatch.chdir(VALIDATE)
    monkeypatch.delenv("NO_COLOR", raising=False)


@pytest.mark.usefixtures("in_validate_dir")
@pytest.mark.parametrize(
    ("output", "golden"),
    [
        ("table", "table.txt"),
        ("json", "report.json"),
        ("sarif", "report.sarif"),
        ("junit", "junit.xml"),
        ("admission", "admission.json"),
    ],
)
def test_output_matches_golden(
    capsys: pytest.CaptureFixture[str], output: str, golden: str
) -> None:
    code, out, err = _run(capsys, "input", "-o", output)
    assert code == 1
    assert SECRET_VALUE not in out + err
    path = GOLDEN / golden
    if REGENERATE:
        path.write_text(out)
    assert out == path.read_text()
    summary = "3 objects checked: 18 passed, 8 failed, 6 warnings, 1 skipped; score 51.6%"
    assert summary in (out if output == "table" else err)
    assert "ignored 1 object(s) of kinds that are not checked: ServiceAccount (1)" in err


@pytest.mark.usefixtures("in_validate_dir")
def test_sarif_is_valid_and_points_at_documents(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "input", "-o", "sarif", "--show-passed")
    document = json.loads(out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    run = document["runs"][0]
    rule_ids = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rule_ids[result["ruleIndex"]] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uri"] == "input/shop.yaml"
        # The field's line and column, inside the object's document (from line 2).
        assert location["region"]["startLine"] >= 2
        assert location["region"]["startColumn"] >= 1
        assert result["partialFingerprints"]["prodready/v1"]
    (suppressed,) = [r for r in run["results"] if "suppressions" in r]
    assert suppressed["suppressions"][0]["kind"] == "inSource"


def test_sarif_input_errors_are_notifications(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Deployment\nmetadata: {name: [\n")
    code, out, _ = _run(capsys, str(bad), "-o", "sarif")
    assert code == 2
    document = json.loads(out)
    jsonschema.Draft4Validator(json.loads(SARIF_SCHEMA.read_text())).validate(document)
    invocation = document["runs"][0]["invocations"][0]
    assert invocation["executionSuccessful"] is False
    assert invocation["toolExecutionNotifications"][0]["locations"][0]["physicalLocation"][
        "region"
    ] == {"startLine": 3}


@pytest.mark.usefixtures("in_validate_dir")
def test_junit_shape(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = _run(capsys, "input", "-o", "junit", "--fail-on", "warning")
    root = ET.fromstring(out)  # noqa: S314 - our own output, not untrusted input
    suites = root.findall("testsuite")
    # The LoadBalancer Service is checked on its own (PR-SC-007, issue 17).
    assert [s.get("name") for s in suites] == [
        "Deployment shop/web",
        "Service shop/web",
        "CronJob shop/nightly",
    ]
    web = suites[0]
    assert web.get("failures") == "13"  # with --fail-on warning, warnings fail too
    assert web.get("skipped") == "1"


@pytest.mark.usefixtures("in_validate_dir")
def test_admission_output_is_exactly_the_webhook_answer(capsys: pytest.CaptureFixture[str]) -> None:
    from prodready.rules import evaluate, to_admission_response
    from prodready.rules.formats import admission_uid
    from prodready.rules.loader import load_inputs

    _, out, _ = _run(capsys, "input", "-o", "admission", "--warn-only")
    reviews = json.loads(out)
    objects = [o.obj for o in load_inputs(["input"], io.BytesIO()).objects]
    reports = evaluate(objects)
    assert [r["response"] for r in reviews] == [
        to_admission_response(r, uid=admission_uid(r), enforce=False) for r in reports
    ]
    assert all(r["response"]["allowed"] for r in reviews)


@pytest.mark.usefixtures("in_validate_dir")
def test_table_flags_and_colour(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, out, _ = _run(capsys, "input/shop.yaml", "--show-passed")
    assert "PASS  PR-HC-002" in out
    assert "\033[" not in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    _, out, _ = _run(capsys, "input/shop.yaml")
    assert "\033[31mFAIL" in out
    monkeypatch.setenv("NO_COLOR", "1")
    _, out, _ = _run(capsys, "input/shop.yaml")
    assert "\033[" not in out


# ------------------------------------------------------------------------ exit codes


@pytest.mark.usefixtures("in_validate_dir")
def test_exit_codes_follow_fail_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, "input/more")[0] == 0
    assert _run(capsys, "input/more", "--fail-on", "warning")[0] == 0
    assert _run(capsys, "input/shop.yaml", "--env", "dev")[0] == 1
    compliant = str(FIXTURES / "rules" / "compliant.yaml")
    assert _run(capsys, compliant, "--fail-on", "warning")[0] == 0


def test_warnings_fail_only_with_fail_on_warning(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    compliant = (FIXTURES / "rules" / "compliant.yaml").read_text()
    path = tmp_path / "m.yaml"
    path.write_text(re.sub(r"image: \S+", "image: shop/api:latest", compliant))
    assert _run(capsys, str(path))[0] == 0
    assert _run(capsys, str(path), "--fail-on", "warning")[0] == 1


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["validate"])
    assert caught.value.code == 2
    with pytest.raises(SystemExit) as caught:
        main(["validate", "x.yaml", "--env", "moon"])
    assert caught.value.code == 2
    capsys.readouterr()
    config = tmp_path / "c.yaml"
    config.write_text("disabled: [PR-NOPE]\n")
    code, _, err = _run(capsys, str(tmp_path), "--config", str(config))
    assert code == 2
    assert f"error: {config}: invalid rules configuration" in err
    assert "Traceback" not in err


def test_input_errors_exit_2_after_checking_the_rest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "good.yaml").write_text((FIXTURES / "rules" / "compliant.yaml").read_text())
    (tmp_path / "broken.yml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: [x\n")
    (tmp_path / "notes.txt").write_text("not a manifest")
    code, out, err = _run(capsys, str(tmp_path), str(tmp_path / "missing.yaml"))
    assert code == 2
    assert "Deployment shop/api" in out
    assert f"error: {tmp_path / 'broken.yml'}:5: invalid YAML" in err
    assert f"error: {tmp_path / 'missing.yaml'}: no such file or directory" in err
    assert "1 input error" not in out
    assert "2 input errors" in out
    assert "Traceback" not in err


def test_internal_errors_are_reported_without_traceback(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("prodready.rules.command.evaluate", explode)
    code, _, err = _run(capsys, str(FIXTURES / "rules" / "compliant.yaml"))
    assert code == 2
    assert "internal error while checking: RuntimeError: boom" in err


# --------------------------------------------------------------------------- inputs


def test_stdin_yaml_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    manifest = (FIXTURES / "rules" / "compliant.yaml").read_bytes()
    code, out, _ = _run(capsys, "-", stdin=manifest)
    assert code == 0
    assert "<stdin>:4" in out
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": []}).encode()
    code, _, err = _run(capsys, "-", "-o", "json", stdin=listing)
    assert code == 0
    assert "no workloads found" in err
    code, out, _ = _run(capsys, "-", stdin=b"{apiVersion: v1, kind: Service, metadata: {name: s}}")
    assert code == 0


def test_typed_lists_supply_kind_and_lines() -> None:
    result = LoadResult()
    load_bytes(
        b"apiVersion: apps/v1\nkind: DeploymentList\nitems:\n"
        b"- metadata: {name: a}\n  spec: {}\n- metadata: {name: b}\n",
        "list.yaml",
        result,
    )
    assert [(o.obj["kind"], o.obj["apiVersion"], o.line) for o in result.objects] == [
        ("Deployment", "apps/v1", 4),
        ("Deployment", "apps/v1", 6),
    ]


def test_documents_that_are_not_objects_are_noted() -> None:
    result = LoadResult()
    load_bytes(b"---\n---\n- 1\n---\nfoo: bar\n", "odd.yaml", result)
    assert result.objects == []
    assert result.errors == []
    assert result.notes == [
        "odd.yaml:3: a list document, not an object; ignored",
        "odd.yaml:5: no apiVersion/kind; not a Kubernetes object, ignored",
    ]


def test_alias_bombs_are_refused_without_expanding_them() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    result = LoadResult()
    load_bytes("\n".join(lines).encode(), "bomb.yaml", result)
    assert result.objects == []
    (error,) = result.errors
    assert "alias bomb" in error.message
    assert error.line == 1


def test_size_limit(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 8)
    big = tmp_path / "big.yaml"
    big.write_text("apiVersion: v1\nkind: Service\n")
    result = load_inputs([str(big)], io.BytesIO(b"x" * 20))
    assert "input limit" in result.errors[0].message
    result = load_inputs(["-"], io.BytesIO(b"kind: Service\napiVersion: v1\n"))
    assert "input limit" in result.errors[0].message


def test_json_errors_and_encodings(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{\n  "kind": \n}')
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe\x00")
    result = load_inputs([str(broken), str(binary)], io.BytesIO())
    assert [(e.line, e.message.split(":")[0]) for e in result.errors] == [
        (3, "invalid JSON"),
        (None, "not UTF-8 text"),
    ]


def test_deeply_nested_input_is_an_error_not_a_crash(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = load_inputs([str(deep)], io.BytesIO())
    assert "nested too deeply" in result.errors[0].message


def test_empty_directories_and_hidden_folders(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text(
        "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"
    )
    result = load_inputs([str(tmp_path)], io.BytesIO())
    assert result.objects == []
    assert result.notes == [f"{tmp_path}: no .yaml, .yml or .json files"]


def test_artifact_uris(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_uri("<stdin>") == "stdin"
    assert artifact_uri("dir/a b.yaml") == "dir/a%20b.yaml"
    assert artifact_uri(str(tmp_path / "x.yaml")) == "x.yaml"
    assert artifact_uri("/elsewhere/x.yaml") == "file:///elsewhere/x.yaml"


# ------------------------------------------------------------------------ catalogue


@pytest.mark.parametrize("output", ["table", "json", "markdown"])
def test_rules_catalogue(capsys: pytest.CaptureFixture[str], output: str) -> None:
    assert main(["rules", "-o", output]) == 0
    out = capsys.readouterr().out
    assert "PR-HC-001" in out
    assert "PR-RS-003" in out
    if output == "json":
        rules: list[dict[str, Any]] = json.loads(out)
        by_id = {r["id"]: r for r in rules}
        assert by_id["PR-ER-001"]["profiles"] == {"dev": None, "staging": None, "prod": "error"}
        assert by_id["PR-SC-003"]["profiles"]["dev"] == "warning"
    if output == "markdown":
        assert out.startswith("| ID | rule |")


def test_cli_through_a_real_process(tmp_path: Path) -> None:
    manifest = (VALIDATE / "input" / "shop.yaml").read_bytes()
    process = subprocess.run(
        [sys.executable, "-m", "prodready", "validate", "-", "-o", "json"],
        input=manifest,
        capture_output=True,
        check=False,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
        timeout=120,
    )
    assert process.returncode == 1, process.stderr
    document = json.loads(process.stdout)
    # The Deployment, and its LoadBalancer Service checked on its own (PR-SC-007).
    assert document["summary"]["objects"] == 2
    assert document["objects"][0]["source"] == {"file": "<stdin>", "line": 2}
    assert b"2 objects checked" in process.stderr
    assert SECRET_VALUE.encode() not in process.stdout + process.stderr

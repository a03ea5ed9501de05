"""`prodready validate` in pipelines: SARIF for code scanning, JUnit, selection and
thresholds, the configuration file and its schema, colour and quiet, shell completion,
and the pre-commit hook."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import yaml

from prodready.cli import main
from prodready.completion import script
from prodready.rules.formats import rule_help_uri, rule_name
from prodready.rules.registry import RULES
from prodready.rules.ruledocs import RULES_DOC_PATH, render_rule_docs
from prodready.rules.schema import SCHEMA_PATH, config_schema, config_schema_json

REPO = Path(__file__).resolve().parents[2]
SARIF_SCHEMA = REPO / "tests" / "fixtures" / "sarif" / "sarif-schema-2.1.0.json"
MANIFEST = """\
# a commented Deployment
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {prodready.io/environment: prod}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0.0
          env:
            - name: LOG_FORMAT
              value: text
"""


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    (tmp_path / "web.yaml").write_text(MANIFEST)
    return tmp_path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sarif_is_valid_with_fixes_regions_and_help(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    code, out, _ = _run(capsys, "web.yaml", "-o", "sarif")
    assert code == 1
    document = json.loads(out)
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker()).validate(document)
    run = document["runs"][0]
    for rule in run["tool"]["driver"]["rules"]:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", rule["name"]), rule["name"]
        assert rule["helpUri"].endswith("#" + rule["id"].lower())
    results = {r["ruleId"]: r for r in run["results"]}
    # The region is the field's line and column, not the object's first line.
    log_format = results["PR-LG-001"]
    region = log_format["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"]) == (20, 15)  # `value: text`
    # Its fix is one replacement that, applied to the file, is what `fix` writes.
    (fix,) = log_format["fixes"]
    (change,) = fix["artifactChanges"]
    assert change["artifactLocation"]["uri"] == "web.yaml"
    (replacement,) = change["replacements"]
    deleted = replacement["deletedRegion"]
    start, length = deleted["charOffset"], deleted["charLength"]
    patched = MANIFEST[:start] + replacement["insertedContent"]["text"] + MANIFEST[start + length :]
    assert "              value: json\n" in patched
    assert patched.replace("value: json", "value: text") == MANIFEST
    # A finding without a safe fix carries none.
    assert "fixes" not in results["PR-HC-001"]


def test_rule_names_are_identifiers() -> None:
    assert rule_name("Replicas ≥2 in prod, with a PDB") == "Replicas2InProdWithAPDB"
    assert rule_name("3 things") == "Rule3Things"
    assert rule_help_uri("PR-HC-001").endswith("docs/rules.md#pr-hc-001")


def test_junit_has_one_testcase_per_object_and_rule(
    capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    (workdir / "two.yaml").write_text(MANIFEST.replace("name: web", "name: api"))
    _, out, _ = _run(capsys, ".", "-o", "junit")
    root = ET.fromstring(out)  # noqa: S314 - our own output
    cases = [(suite.get("name"), case.get("name")) for suite in root for case in suite]
    assert len(cases) == len(set(cases))
    suites = {suite.get("name") for suite in root}
    assert suites == {"Deployment web", "Deployment api"}
    per_suite = {name: sum(1 for s, _ in cases if s == name) for name in suites}
    assert per_suite["Deployment web"] == per_suite["Deployment api"] > 10


def test_only_disable_and_sections(capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
    def rules(*args: str) -> set[str]:
        _, out, _ = _run(capsys, "web.yaml", "-o", "json", *args)
        return {f["rule"] for o in json.loads(out)["objects"] for f in o["findings"]}

    everything = rules()
    assert rules("--only", "PR-LG-001") == {"PR-LG-001"}
    assert rules("--only", "PR-LG") == {r for r in everything if r.startswith("PR-LG-")}
    assert rules("--only", "pr-hc-001,PR-LG-001") == {"PR-HC-001", "PR-LG-001"}
    section_one = {rule.id for rule in RULES if "1" in rule.section.split(", ")}
    assert rules("--only", "1") == everything & section_one
    assert rules("--disable", "PR-LG") == {r for r in everything if not r.startswith("PR-LG-")}
    code, _, err = _run(capsys, "web.yaml", "--only", "PR-XX-001")
    assert code == 2
    assert "--only PR-XX-001: no rule has this ID, ID prefix or section" in err


def test_min_score(capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
    _, out, _ = _run(capsys, "web.yaml", "-o", "json")
    score = json.loads(out)["summary"]["score"]
    code, _, err = _run(capsys, "web.yaml", "--fail-on", "error", "--min-score", "100", "-q")
    assert code == 1
    assert f"score {score:g}% is below --min-score 100" in err
    code, _, _ = _run(capsys, "web.yaml", "--only", "PR-LG-002", "--min-score", "0")
    assert code == 0
    with pytest.raises(SystemExit) as usage:
        main(["validate", "web.yaml", "--min-score", "101"])
    assert usage.value.code == 2
    assert "--min-score must be a number from 0 to 100" in capsys.readouterr().err


def test_the_configuration_is_found_upward(
    capsys: pytest.CaptureFixture[str], workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / ".prodready.yaml").write_text("disabled: [PR-LG-001]\n")
    (workdir / "deploy").mkdir()
    (workdir / "deploy" / "web.yaml").write_text(MANIFEST)
    monkeypatch.chdir(workdir / "deploy")
    _, out, err = _run(capsys, "web.yaml", "-o", "json")
    assert f"note: using the configuration in {workdir / '.prodready.yaml'}" in err
    assert "PR-LG-001" not in {f["rule"] for o in json.loads(out)["objects"] for f in o["findings"]}
    (workdir / ".prodready.yaml").write_text("disabled: [PR-NOPE-1]\n")
    code, _, err = _run(capsys, "web.yaml")
    assert code == 2
    assert "disabled.0: unknown rule ID 'PR-NOPE-1'" in err


def test_colour_and_quiet(capsys: pytest.CaptureFixture[str], workdir: Path) -> None:
    _, out, _ = _run(capsys, "web.yaml", "--color", "always")
    assert "\033[31m" in out
    _, out, _ = _run(capsys, "web.yaml", "--color", "never")
    assert "\033[" not in out
    assert "1 object checked" in out
    _, out, err = _run(capsys, "web.yaml", "-q")
    assert "object checked" not in out
    assert "FAIL" in out
    assert "note:" not in err


def test_completion_scripts(capsys: pytest.CaptureFixture[str]) -> None:
    bash = script("bash")
    assert "validate) opts=" in bash
    assert "--min-score" in bash
    assert "-o|--output) COMPREPLY=($(compgen -W 'table json sarif junit admission" in bash
    if shutil.which("bash"):
        subprocess.run(["bash", "-n"], input=bash.encode(), check=True)
    assert script("zsh").startswith("#compdef prodready\n")
    fish = script("fish")
    assert "-a fix -d 'apply the safe fixes of findings to manifest files'" in fish
    assert (
        "__fish_seen_subcommand_from validate' -l color -l colour -x -a 'auto always never'" in fish
    )
    assert main(["completion", "fish"]) == 0
    assert capsys.readouterr().out == fish


def test_config_schema_is_current_and_checks_configs() -> None:
    assert (REPO / SCHEMA_PATH).read_text() == config_schema_json(), "run `make generate`"
    schema = config_schema()
    validator = jsonschema.Draft202012Validator(schema)
    good = yaml.safe_load(
        "severity: {PR-SC-005: error}\ndisabled: [PR-MO-002]\n"
        "exemptions:\n  - rules: [PR-RS-002]\n    namespace: preview-*\n    reason: one replica\n"
    )
    validator.validate(good)
    assert not validator.is_valid({"disabled": ["PR-LM-001"]})  # cannot be disabled
    assert not validator.is_valid({"severity": {"PR-NOPE": "error"}})
    assert not validator.is_valid({"unknown_key": 1})


def test_rule_page_is_current_and_has_every_anchor() -> None:
    page = (REPO / RULES_DOC_PATH).read_text()
    assert page == render_rule_docs(), "run `make generate`"
    for rule in RULES:
        assert f'<a id="{rule.id.lower()}"></a>' in page


def test_action_and_hooks_are_well_formed() -> None:
    action = yaml.safe_load((REPO / "action.yml").read_text())
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    assert any(
        step.get("uses", "").startswith("github/codeql-action/upload-sarif") for step in steps
    )
    hooks = {
        hook["id"]: hook for hook in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())
    }
    assert hooks["prodready-validate"]["entry"] == "prodready validate"
    exclude = re.compile(hooks["prodready-validate"]["exclude"])
    for skipped in ("charts/x/templates/a.yaml", "charts/x/Chart.yaml", "k/kustomization.yaml"):
        assert exclude.search(skipped), skipped
    assert not exclude.search("deploy/web.yaml")


@pytest.mark.slow
def test_pre_commit_try_repo_runs_the_hook(tmp_path: Path) -> None:
    """pre-commit installs this repository (pip, from PyPI) and runs the hook on files.

    From a clone of HEAD: try-repo would otherwise add the work tree's uncommitted changes
    to tracked files (without untracked ones), which is what no user installs.
    """
    pre_commit = Path(sys.executable).parent / "pre-commit"
    if not pre_commit.is_file() or shutil.which("git") is None:
        pytest.skip("pre-commit (dev dependency) or git not installed")
    project = tmp_path / "project"
    project.mkdir()
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(tmp_path / "cache"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)

    clone = tmp_path / "prodready"
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(REPO), str(clone)],
        env=env,
        check=True,
        capture_output=True,
    )
    git("init", "-q")
    (project / "good.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    (project / "web.yaml").write_text(MANIFEST)
    git("add", ".")

    def try_repo(*files: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(pre_commit), "try-repo", str(clone), "prodready-validate", "--files", *files],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=900,
        )

    failing = try_repo("web.yaml")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "PR-LG-001" in failing.stdout
    passing = try_repo("good.yaml")
    assert passing.returncode == 0, passing.stdout + passing.stderr

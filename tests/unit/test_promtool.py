"""Every alerting rule prodready ships, checked by Prometheus' own promtool.

`promtool check rules` on each PrometheusRule the chart renders (with and without its
ServiceMonitor, with a selector of one's own) and the operator renders for the examples;
`promtool test rules` runs the unit tests in tests/promtool/ against the rules as rendered
(each test file names the rules file this module writes beside it). promtool is built from
Go modules like the control plane (tests/cluster/build.sh, `make binaries`).

Every alert also links its section of docs/runbook.md, which says what it means, what it
costs, how to diagnose and how to mitigate it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.api import API_VERSION, KIND, parse_production_service
from prodready.render.prometheusrule import RUNBOOK_URL, render_prometheus_rule
from tests.cluster.controlplane import default_bin_dir
from tests.generate import documents, helm_template

REPO = Path(__file__).resolve().parents[2]
TESTS = REPO / "tests" / "promtool"
RUNBOOK = REPO / "docs" / "runbook.md"
EXAMPLES = REPO / "examples"
PROMTOOL = default_bin_dir() / "promtool"
RELEASE = NAMESPACE = "prodready"

needs_promtool = pytest.mark.skipif(
    not PROMTOOL.exists(), reason="promtool is not built: run `make binaries`"
)
needs_helm = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)

CHART_VARIANTS: dict[str, dict[str, Any]] = {
    "operator-servicemonitor": {
        "metrics": {"prometheusRule": {"enabled": True}, "serviceMonitor": {"enabled": True}}
    },
    "operator-annotations": {"metrics": {"prometheusRule": {"enabled": True}}},
    "operator-selector": {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "selector": 'job="kubernetes-pods", kubernetes_namespace="prodready"',
            },
            "serviceMonitor": {"enabled": True},
        }
    },
}


def chart_rules(values: dict[str, Any]) -> dict[str, Any]:
    """The spec (rule groups) of the chart's PrometheusRule rendered with `values`."""
    objects = documents(helm_template(values, release=RELEASE, namespace=NAMESPACE))
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    return dict(rule["spec"])  # type: ignore[arg-type]


def production_service(name: str, namespace: str, **spec: Any) -> Any:
    return parse_production_service(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"image": "ghcr.io/example/api:1.0", "environment": "prod", **spec},
        }
    )


def rendered_rules() -> dict[str, dict[str, Any]]:
    """The operator's PrometheusRules: the unit tests' service and every example's."""
    rules: dict[str, dict[str, Any]] = {}
    tested = production_service("api", "shop", metrics={"alerts": {"latencyP99Seconds": 0.5}})
    rendered = render_prometheus_rule(tested)
    assert rendered is not None
    rules["productionservice"] = rendered["spec"]
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if not document or document.get("kind") != KIND:
                continue
            document["metadata"].setdefault("namespace", "examples")
            rule = render_prometheus_rule(parse_production_service(document))
            if rule is not None:
                rules[f"example-{path.stem}-{document['metadata']['name']}"] = rule["spec"]
    return rules


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def write_rules(directory: Path, name: str, spec: dict[str, Any]) -> Path:
    path = directory / f"{name}.rules.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


@needs_promtool
@needs_helm
def test_promtool_checks_every_rule_file(tmp_path: Path) -> None:
    files = [write_rules(tmp_path, name, chart_rules(v)) for name, v in CHART_VARIANTS.items()]
    files += [write_rules(tmp_path, name, spec) for name, spec in rendered_rules().items()]
    assert len(files) >= len(CHART_VARIANTS) + 3
    result = promtool("check", "rules", "--lint-fatal", *map(str, files), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(files), result.stdout


@needs_promtool
@needs_helm
def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    for name in ("operator-servicemonitor", "operator-annotations"):
        write_rules(tmp_path, name, chart_rules(CHART_VARIANTS[name]))
    write_rules(tmp_path, "productionservice", rendered_rules()["productionservice"])
    tests = sorted(TESTS.glob("*.test.yaml"))
    assert len(tests) == 3
    for test in tests:
        shutil.copy(test, tmp_path / test.name)
    result = promtool("test", "rules", *(test.name for test in tests), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(tests), result.stdout


@needs_promtool
def test_promtool_fails_a_broken_expectation(tmp_path: Path) -> None:
    # The harness proves something: a test expecting the wrong alert fails.
    write_rules(tmp_path, "productionservice", rendered_rules()["productionservice"])
    broken = (TESTS / "productionservice.test.yaml").read_text()
    broken = broken.replace("description: Target 10.1.0.2:8000", "description: Target 10.9.9.9:1")
    (tmp_path / "broken.test.yaml").write_text(broken)
    result = promtool("test", "rules", "broken.test.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "ProductionServiceTargetDown" in result.stdout + result.stderr


# -- runbook_url -----------------------------------------------------------------------------


def _sections() -> dict[str, str]:
    """docs/runbook.md's level-2 sections by GitHub anchor (the heading in lower case)."""
    sections: dict[str, str] = {}
    for block in re.split(r"^## ", RUNBOOK.read_text(), flags=re.MULTILINE)[1:]:
        heading, _, body = block.partition("\n")
        anchor = re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")
        sections[anchor] = body
    return sections


def _every_alert() -> list[dict[str, Any]]:
    specs = [chart_rules(values) for values in CHART_VARIANTS.values()]
    specs += list(rendered_rules().values())
    return [rule for spec in specs for group in spec["groups"] for rule in group["rules"]]


@needs_helm
def test_every_alert_links_its_runbook_section() -> None:
    sections = _sections()
    alerts = _every_alert()
    names = {alert["alert"] for alert in alerts}
    assert {"ProdreadyOperatorDown", "ProductionServiceHighLatency"} <= names
    for alert in alerts:
        url = alert["annotations"]["runbook_url"]
        page, _, anchor = url.partition("#")
        assert page == RUNBOOK_URL, url
        assert anchor == alert["alert"].lower(), url
        body = sections.get(anchor)
        assert body is not None, f"docs/runbook.md has no section {alert['alert']}"
        for part in ("**Meaning.**", "**Impact.**", "**Diagnosis.**", "**Mitigation.**"):
            assert part in body, f"{alert['alert']}: no {part} in its runbook section"
    # And no section for an alert that does not exist (besides the scraping notes).
    assert set(sections) - {name.lower() for name in names} == {"how-the-operator-is-scraped"}


@needs_helm
def test_the_chart_runbook_url_is_a_value() -> None:
    values = {
        "metrics": {
            "prometheusRule": {"enabled": True, "runbookUrl": "https://wiki.example.com/prodready"}
        }
    }
    urls = {
        rule["annotations"]["runbook_url"]
        for group in chart_rules(values)["groups"]
        for rule in group["rules"]
    }
    assert "https://wiki.example.com/prodready#prodreadyoperatordown" in urls
    assert all(url.startswith("https://wiki.example.com/prodready#") for url in urls)


@needs_helm
def test_no_operator_alert_uses_absent_on_a_job_it_cannot_know() -> None:
    # Only with the chart's own ServiceMonitor is the job label known in advance.
    for name, values in CHART_VARIANTS.items():
        expressions = [
            rule["expr"] for group in chart_rules(values)["groups"] for rule in group["rules"]
        ]
        uses_absent = any("absent(" in expression for expression in expressions)
        assert uses_absent == (name == "operator-servicemonitor"), name

"""`validate -o html` and the dashboard's pages, rendered without a browser.

What a browser proves (the page opens, filters work, no console errors) is in
tests/e2e/test_pages_browser.py and tests/e2e/test_dashboard.py; here: escaping, the
Secret-value canary, the CSP's hashes, and that every count on a page is the JSON's.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.cli import main
from prodready.rules import evaluate
from prodready.rules.formats import Run, run_dict
from prodready.rules.loader import LoadedObject
from prodready.rules.pages import (
    EXPIRING_SOON_DAYS,
    content_security_policy,
    dashboard,
    overview,
    render_dashboard,
    render_html,
    render_workload,
)
from prodready.rules.pages.model import exception_row, parse_time, service_row
from tests.e2e.policy_support import bare_deployment, compliant_objects

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-Zq8vXw2LmN4pRt7s"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _cli(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(list(args))
    return code, out.getvalue()


def _counts(page: str) -> dict[str, str]:
    return dict(re.findall(r'data-count="(\w+)">([^<%]+)%?<', page))


def _workloads(namespace: str = "shop") -> list[dict[str, Any]]:
    objects = compliant_objects(namespace, "api")
    secret_holder = bare_deployment("worker", namespace)
    container = secret_holder["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [
        {"name": "DB_PASSWORD", "value": CANARY},
        {"name": "DATABASE_URL", "value": f"postgres://app:{CANARY}@db/app"},
    ]
    exempt = bare_deployment("batch", namespace)
    exempt["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-RS-001",
        "prodready.io/exempt-reason": HOSTILE,
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": namespace},
        "stringData": {"password": CANARY},
    }
    return [*objects, secret_holder, exempt, secret]


def _run(objects: list[dict[str, Any]]) -> Run:
    reports = evaluate(objects, environment="prod")
    sources = [LoadedObject(obj=o, file="in.yaml", line=i + 1) for i, o in enumerate(objects)]
    return Run(reports, sources)


def test_validate_html_counts_equal_the_json_output(tmp_path: Path) -> None:
    (tmp_path / "all.yaml").write_text(yaml.safe_dump_all(_workloads()))
    code_html, page = _cli("validate", str(tmp_path), "-o", "html")
    code_json, document = _cli("validate", str(tmp_path), "-o", "json")
    assert code_html == code_json == 1
    summary = json.loads(document)["summary"]
    counts = _counts(page)
    assert counts == {
        "score": f"{summary['score']:g}",
        "objects": str(summary["objects"]),
        "compliant": str(summary["compliant"]),
        "fail": str(summary["fail"]),
        "warn": str(summary["warn"]),
        "skip": str(summary["skip"]),
        "pass": str(summary["pass"]),
    }
    assert page.count("data-workload ") == summary["objects"]


def test_fixture_tree_counts_equal_the_json_output() -> None:
    tree = str(REPO / "tests" / "fixtures" / "rules")
    _, page = _cli("validate", tree, "-o", "html")
    _, document = _cli("validate", tree, "-o", "json")
    summary = json.loads(document)["summary"]
    counts = _counts(page)
    assert counts["fail"] == str(summary["fail"])
    assert counts["warn"] == str(summary["warn"])
    assert counts["objects"] == str(summary["objects"])
    # Findings by rule add up to the run's failures.
    rules = overview(_load_run(tree)).rules
    assert sum(r.failed for r in rules) == summary["fail"]
    assert sum(r.warned for r in rules) == summary["warn"]
    assert sum(r.skipped for r in rules) == summary["skip"]


def _load_run(tree: str) -> Run:
    from prodready.rules.loader import InputLimits, load_inputs

    loaded = load_inputs([tree], io.BytesIO(), limits=InputLimits())
    reports = evaluate([item.obj for item in loaded.objects])
    return Run(reports, loaded.objects, loaded.errors)


def test_a_secret_value_never_reaches_the_page() -> None:
    run = _run(_workloads())
    page = render_html(run)
    assert any(f.rule_id == "PR-LG-003" and f.failed for r in run.reports for f in r.findings)
    assert CANARY not in page
    model = dashboard(run, now=NOW)
    assert CANARY not in render_dashboard(model)
    for row in model.overview.workloads:
        assert CANARY not in render_workload(model, row)


def test_text_from_a_manifest_is_escaped() -> None:
    page = render_html(_run(_workloads()))
    assert HOSTILE not in page
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    assert page.count("<script>") == 1  # the page's own, allowed by its hash


def test_the_csp_allows_exactly_the_inline_style_and_script() -> None:
    page = render_html(_run(_workloads()))
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    script = re.search(r"<script>(.*?)</script>", page, re.S)
    assert style
    assert script

    def digest(text: str) -> str:
        return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()

    csp = content_security_policy()
    assert f"style-src '{digest(style.group(1))}'" in csp
    assert f"script-src '{digest(script.group(1))}'" in csp
    assert "default-src 'none'" in csp
    assert "unsafe" not in csp
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert meta
    assert meta.group(1).replace("&#39;", "'") == csp
    # Self-contained: nothing is fetched from anywhere.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page
    assert "prefers-color-scheme: dark" in page


def test_findings_by_workload_and_rule() -> None:
    model = overview(_run(_workloads()))
    names = [row.ref.name for row in model.workloads]
    # Most errors first; the compliant workload (and whatever else the checklist reports
    # about its application) last.
    errors = [row.report.counts.failed for row in model.workloads]
    assert errors == sorted(errors, reverse=True)
    assert names[:2] == ["worker", "batch"]
    assert set(names[2:]) == {"api"}
    assert model.workloads[-1].shown == ()
    worker = next(row for row in model.workloads if row.ref.name == "worker")
    assert "PR-HC-001" in worker.failing_rules
    assert [f.result.value for f in worker.shown] == sorted(
        (f.result.value for f in worker.shown), key=["fail", "warn", "skip"].index
    )
    hc = next(rule for rule in model.rules if rule.rule_id == "PR-HC-001")
    assert hc.workloads == 2
    assert hc.why
    assert hc.fix
    exempted = model.exemptions
    assert [(row.ref.name, f.rule_id) for row, f in exempted] == [("batch", "PR-RS-001")]
    assert [ns.namespace for ns in model.namespaces] == ["shop"]
    assert model.namespaces[0].workloads == len(model.workloads)
    assert model.namespaces[0].compliant == len(model.workloads) - 2


def test_input_errors_are_listed(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("a: [\n")
    (tmp_path / "ok.yaml").write_text(yaml.safe_dump_all(compliant_objects("shop")))
    code, page = _cli("validate", str(tmp_path), "-o", "html")
    assert code == 2
    assert 'id="input-errors"' in page
    assert "broken.yaml" in page


def _exception(name: str, days: float, *, status: str | None = None) -> dict[str, Any]:
    expires = (NOW + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body: dict[str, Any] = {
        "metadata": {"namespace": "shop", "name": name},
        "spec": {
            "rules": [
                {"rule": "PR-HC-001", "reason": f"{name}: {HOSTILE}"},
                {"rule": "PR-RS-002", "reason": "one replica during the migration"},
            ],
            "match": {"names": ["worker", "batch"], "kinds": ["Deployment"]},
            "expires": expires,
            "approvedBy": "TICKET-42",
        },
    }
    if status:
        body["status"] = {"phase": status}
    return body


def _service(name: str, ready: str) -> dict[str, Any]:
    return {
        "metadata": {"namespace": "shop", "name": name},
        "spec": {"env": [{"name": "DB_PASSWORD", "value": CANARY}]},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": ready,
                    "reason": "Rollout" if ready != "True" else "Available",
                    "message": HOSTILE,
                    "lastTransitionTime": "2026-11-30T11:00:00Z",
                },
                "not a condition",
            ],
            "compliance": {"compliant": ready == "True", "score": 87},
        },
    }


def test_dashboard_model_and_page() -> None:
    run = _run(_workloads())
    model = dashboard(
        run,
        services=[_service("hello", "True"), _service("broken", "False")],
        exceptions=[
            _exception("later", 60),
            _exception("soon", 3),
            _exception("gone", -1),
            {"metadata": {"namespace": "shop", "name": "undated"}, "spec": {}},
        ],
        now=NOW,
        notes=[f"note {HOSTILE}"],
    )
    assert [s.name for s in model.services] == ["broken", "hello"]  # not ready first
    assert model.services[0].ready == "False"
    assert model.services[1].score == 87
    assert [e.name for e in model.exceptions] == ["gone", "soon", "later", "undated"]
    assert [e.name for e in model.expiring] == ["soon"]
    assert model.exceptions[0].status == "Expired"
    assert model.exceptions[1].status == "Active"
    assert model.exceptions[1].rules[1] == ("PR-RS-002", "one replica during the migration")
    assert model.exceptions[1].approved_by == "TICKET-42"
    assert model.exceptions[1].covers == "Deployment: worker, batch"
    assert EXPIRING_SOON_DAYS >= 3
    page = render_dashboard(model, base="/")
    assert CANARY not in page
    assert HOSTILE not in page
    assert 'id="exceptions-table"' in page
    assert "soon: &lt;script&gt;" in page
    assert "later:" not in page  # not expiring soon
    assert 'href="/workloads/shop/Deployment/worker"' in page
    assert _counts(page)["fail"] == str(run_dict(run)["summary"]["fail"])
    row = model.workload("shop", "Deployment", "worker")
    assert row is not None
    assert model.workload("shop", "Deployment", "nope") is None
    detail = render_workload(model, row, base="/")
    assert _counts(detail)["fail"] == str(row.report.counts.failed)
    assert 'id="rule-PR-HC-001"' in detail


def test_exception_status_and_times() -> None:
    assert exception_row(_exception("x", 2, status="Expired"), NOW).status == "Expired"
    assert parse_time("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_time("not a time") is None
    assert parse_time(None) is None
    other = exception_row(
        {
            "spec": {
                "entries": [{"rule": "PR-SC-005", "reason": "pinned by CI"}],
                "match": {"selector": {"matchLabels": {"app": "web"}}},
            }
        },
        NOW,
    )
    assert other.rules == (("PR-SC-005", "pinned by CI"),)
    assert other.covers == "any kind: labels app=web"
    assert (other.expires, other.days_left, other.status) == (None, None, "Active")
    assert exception_row({"spec": {"match": {"kinds": ["Job"]}}}, NOW).covers == "Job"
    row = service_row({"metadata": {}, "status": {"compliance": {"score": "x"}}})
    assert (row.ready, row.score, row.compliant) == ("Unknown", None, None)


@pytest.mark.parametrize("objects", [0, 2])
def test_empty_and_compliant_runs_render(objects: int) -> None:
    run = _run(compliant_objects("shop") if objects else [])
    page = render_html(run)
    assert _counts(page)["objects"] == str(len(run.reports))
    assert bool(run.reports) == bool(objects)
    assert "No rule failed." in page
    assert "No rule was exempted." in page

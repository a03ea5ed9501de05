"""The bounded-work benchmark's objects and its rows in the summary and RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import bounded, report

from prodready.rules import DEFAULT_LIMITS, Limits, evaluate
from prodready.rules.limits import excess


def test_the_objects_are_what_the_rows_say() -> None:
    workload, service = bounded.deployment(10_000)
    assert len(workload["spec"]["template"]["spec"]["containers"]) == 10_000
    assert service["spec"]["type"] == "LoadBalancer"
    # The largest object within the caps is within them, and one entry more is not.
    at_caps = bounded.deployment(DEFAULT_LIMITS.containers, env=34)[0]
    pod = at_caps["spec"]["template"]["spec"]
    assert excess(pod, "spec.template.spec", DEFAULT_LIMITS) is None
    assert excess(pod, "spec.template.spec", Limits(entries=19_500)) is not None
    # Lifted caps let 10,000 containers through to the rules.
    assert excess(workload["spec"]["template"]["spec"], "spec", Limits(**bounded.LIFTED)) is None
    body = json.loads(bounded.review(workload))
    assert body["request"]["object"]["metadata"]["name"] == "big"
    # The LoadBalancer Service is checked on its own too (PR-SC-007, issue 17).
    report_, service_report = evaluate([workload, service])
    assert [f.rule_id for f in report_.findings] == ["PR-LM-001"]
    assert service_report.object.kind == "Service"


def test_rows_and_detail_in_the_summary(tmp_path: Path) -> None:
    results = bounded.BoundedResults(
        [
            bounded.Row("evaluate one Deployment with 10,000 containers", 0.0002, 1, 1.0),
            bounded.Row("caps lifted (rule by rule)", 2.5, 150_008, None),
            bounded.Row("too slow", 2.0, 1, 1.0),
        ]
    )
    run = report.Run(None, None, None, seconds=10, bounded=results)
    rows = report.summary_rows(run)
    assert rows[0] == (
        "evaluate one Deployment with 10,000 containers, ms",
        "0.2",
        "",
        "",
        "< 1,000 ms",
        "yes",
    )
    assert rows[1][4:] == ("", "—")
    assert rows[2][5] == "**no**"
    path = tmp_path / "RESULTS.md"
    report.write_results(path, run, "python -m benchmarks --only bounded")
    text = path.read_text()
    assert "### Bounded work per object" in text
    assert "| caps lifted (rule by rule) | 2,500.0 | 150,008 |" in text
    assert report.as_json(run)["bounded"]["rows"][1]["findings"] == 150_008

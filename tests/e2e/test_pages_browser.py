"""`validate -o html` opened in a real browser (headless Chromium): the page loads from
disk with no console error (a CSP violation would be one), shows the JSON output's counts,
and its filters work from the keyboard. Screenshots: .local/artifacts/validate-*.png."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from benchmarks.corpus import generate

from tests.e2e.browser import chromium, console_problems, counts, prefer_dark, screenshot
from tests.e2e.policy_support import bare_deployment

REPO = Path(__file__).resolve().parents[2]


def _validate(tree: Path, output: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "prodready", "validate", str(tree), "-o", output],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tree = tmp_path_factory.mktemp("tree")
    generate(tree, workloads=60)
    exempt = bare_deployment("legacy", "team-0001")
    exempt["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-RS-001",
        "prodready.io/exempt-reason": "replaced next quarter <b>not bold</b>",
    }
    (tree / "legacy.yaml").write_text(yaml.safe_dump(exempt))
    page = tree.parent / "report.html"
    page.write_text(_validate(tree, "html"))
    return page, json.loads(_validate(tree, "json"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def _shown(driver: Any) -> int:
    from selenium.webdriver.common.by import By

    return sum(
        1
        for element in driver.find_elements(By.CSS_SELECTOR, "[data-workload]")
        if element.get_attribute("hidden") is None
    )


def test_the_page_shows_the_json_counts(browser: Any, report: tuple[Path, dict[str, Any]]) -> None:
    page, document = report
    browser.get(page.as_uri())
    summary = document["summary"]
    assert counts(browser) == {
        "score": f"{summary['score']:g}",
        "objects": str(summary["objects"]),
        "compliant": str(summary["compliant"]),
        "fail": str(summary["fail"]),
        "warn": str(summary["warn"]),
        "skip": str(summary["skip"]),
        "pass": str(summary["pass"]),
    }
    assert summary["skip"] >= 1
    assert _shown(browser) == summary["objects"]
    assert "<b>not bold</b>" in browser.find_element("id", "exemptions-table").text
    assert console_problems(browser) == []
    screenshot(browser, "validate-light")
    prefer_dark(browser, dark=True)
    dark = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    screenshot(browser, "validate-dark")
    prefer_dark(browser, dark=False)
    light = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert dark != light
    assert console_problems(browser) == []


def test_filters_work_from_the_keyboard(browser: Any, report: tuple[Path, dict[str, Any]]) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    page, document = report
    browser.get(page.as_uri())
    objects = document["objects"]
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the skip link first
    for _ in range(200):
        if browser.switch_to.active_element.get_attribute("id") == "filter-text":
            break
        browser.switch_to.active_element.send_keys(Keys.TAB)
    else:
        pytest.fail("the text filter cannot be reached with Tab")
    browser.switch_to.active_element.send_keys("svc-0001")
    expected = [
        o for o in objects if "svc-0001" in f"{o['object']['kind']} x/{o['object']['name']}"
    ]
    assert _shown(browser) == len(expected) > 0
    assert browser.find_element(By.ID, "shown-count").text == str(len(expected))

    browser.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
    Select(browser.find_element(By.ID, "filter-namespace")).select_by_value("team-0002")
    in_namespace = [o for o in objects if o["object"]["namespace"] == "team-0002"]
    assert _shown(browser) == len(in_namespace)

    browser.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
    browser.find_element(By.ID, "filter-failing").click()
    assert _shown(browser) == sum(1 for o in objects if not o["compliant"])

    # "Show workloads" of the rule failing most often: exactly the workloads it fails.
    browser.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
    button = browser.find_element(By.CSS_SELECTOR, "#rules-table [data-filter-rule]")
    rule = button.get_attribute("data-filter-rule")
    button.send_keys(Keys.ENTER)
    failing = [
        o
        for o in objects
        if any(f["rule"] == rule and f["result"] in ("fail", "warn") for f in o["findings"])
    ]
    assert _shown(browser) == len(failing) > 0
    rows = [
        row
        for row in browser.find_elements(By.CSS_SELECTOR, "[data-workload] [data-result]")
        if row.is_displayed()
    ]
    assert {row.get_attribute("data-rule") for row in rows} == {rule}

    # Unticking "failed" hides every failed finding.
    browser.find_element(By.CSS_SELECTOR, "button[type=reset]").click()
    browser.find_element(By.CSS_SELECTOR, "input[name=result][value=fail]").click()
    visible = {
        row.get_attribute("data-result")
        for row in browser.find_elements(By.CSS_SELECTOR, "[data-workload][open] [data-result]")
        if row.is_displayed()
    }
    assert "fail" not in visible
    assert "warn" in visible
    assert console_problems(browser) == []

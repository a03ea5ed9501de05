"""PRODREADY_REPORT_API: which report API the audit writes and `prodready report` reads."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any, cast

import pytest

from prodready.audit.command import ReportsUnavailableError, add_arguments, fetch_reports
from prodready.audit.reports import (
    FLAVORS,
    OPENREPORTS,
    POLICY_REPORT,
    flavors_for,
    unavailable_message,
)
from prodready.config import SettingsError, load_settings
from prodready.kube.client import KubeClient
from tests.unit.test_audit_auditor import FakeApi, Harness, _broken, _objects

BOTH = {"openreports.io/v1alpha1": {"reports"}, "wgpolicyk8s.io/v1alpha2": {"policyreports"}}


def test_auto_prefers_openreports_and_a_pin_names_one_api() -> None:
    assert flavors_for("auto") == FLAVORS == (OPENREPORTS, POLICY_REPORT)
    assert flavors_for("openreports") == (OPENREPORTS,)
    assert flavors_for("wgpolicyk8s") == (POLICY_REPORT,)
    with pytest.raises(ValueError, match="PRODREADY_REPORT_API: must be one of auto, openreports"):
        flavors_for("policyreports")


def test_the_message_names_the_crds_looked_for() -> None:
    assert "neither the OpenReports CRD (reports.openreports.io) nor the PolicyReport CRD" in (
        unavailable_message("auto")
    )
    pinned = unavailable_message("wgpolicyk8s")
    assert "PRODREADY_REPORT_API=wgpolicyk8s" in pinned
    assert "policyreports.wgpolicyk8s.io" in pinned
    assert "openreports.io" not in pinned


def test_the_setting_is_validated_and_case_insensitive() -> None:
    assert load_settings({"PRODREADY_REPORT_API": "WgPolicyK8s"}).report_api == "wgpolicyk8s"
    assert load_settings({}).report_api == "auto"
    with pytest.raises(SettingsError, match="PRODREADY_REPORT_API: must be one of"):
        load_settings({"PRODREADY_REPORT_API": "both"})


class ReportsApi:
    """Discovery and LIST of both report APIs, each holding one report."""

    def __init__(self, served: dict[str, set[str]]) -> None:
        self.served = served
        self.listed: list[str] = []

    async def served_resources(self, api_version: str) -> set[str] | None:
        return self.served.get(api_version)

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.listed.append(path)
        return [{"metadata": {"name": path.rsplit("/", 1)[-1], "namespace": "shop"}}]


@pytest.mark.parametrize(
    ("api", "plural"),
    [("auto", "reports"), ("openreports", "reports"), ("wgpolicyk8s", "policyreports")],
)
def test_report_reads_the_pinned_api_when_both_are_served(api: str, plural: str) -> None:
    client = ReportsApi(BOTH)
    flavor, bodies = asyncio.run(fetch_reports(cast(KubeClient, client), "shop", api))
    assert flavor.resource.plural == plural
    assert client.listed == [f"{flavor.resource.path('shop')}"]
    assert bodies[0]["metadata"]["name"] == plural


def test_a_pinned_api_that_is_not_served_is_an_error_not_the_other_one() -> None:
    client = ReportsApi({"openreports.io/v1alpha1": {"reports"}})
    with pytest.raises(ReportsUnavailableError, match="PRODREADY_REPORT_API=wgpolicyk8s"):
        asyncio.run(fetch_reports(cast(KubeClient, client), None, "wgpolicyk8s"))
    assert client.listed == []


async def test_the_audit_writes_the_pinned_api_when_both_are_served() -> None:
    harness = Harness(FakeApi(served=dict(BOTH)), report_api="wgpolicyk8s")
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.auditor.flavor is POLICY_REPORT
    assert harness.api.report("prodready-deployment-api", plural="policyreports") is not None
    assert harness.api.report("prodready-deployment-api", plural="reports") is None


async def test_the_audit_writes_no_report_when_the_pinned_api_is_missing() -> None:
    harness = Harness(FakeApi(), report_api="wgpolicyk8s")  # OpenReports only
    harness.put(_broken(), *_objects()[1:])
    await harness.auditor.step()
    assert harness.auditor.flavor is None
    assert harness.api.reports == {}


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="prodready report")
    add_arguments(parser)
    return parser.parse_args(argv)


def test_report_takes_the_api_from_the_flag_or_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PRODREADY_REPORT_API", raising=False)
    assert _parse().report_api == "auto"
    assert _parse("--report-api", "WGPolicyK8s").report_api == "wgpolicyk8s"
    monkeypatch.setenv("PRODREADY_REPORT_API", "openreports")
    assert _parse().report_api == "openreports"
    assert _parse("--report-api", "auto").report_api == "auto"


def test_a_bad_api_is_a_usage_error_naming_the_choices(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PRODREADY_REPORT_API", "policyreports")
    with pytest.raises(SystemExit) as exit_info:
        _parse()
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "PRODREADY_REPORT_API: must be one of auto, openreports, wgpolicyk8s" in error
    assert "Traceback" not in error

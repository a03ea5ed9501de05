"""`prodready report`: reading the cluster's reports and printing them like `validate`."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest
import yaml

from prodready import rules
from prodready.audit import command
from prodready.audit.reports import OPENREPORTS, POLICY_REPORT, build_report
from prodready.cli import main
from prodready.kube.client import ApiError

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"


def _report_body(namespace: str, name: str, *, broken: bool) -> dict[str, Any]:
    objects = [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d and d["kind"] != "Secret"]
    deployment = copy.deepcopy(objects[0])
    deployment["metadata"].update({"namespace": namespace, "name": name, "uid": f"uid-{name}"})
    if broken:
        del deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    for obj in objects[1:]:
        obj["metadata"]["namespace"] = namespace
    report = rules.evaluate([deployment, *objects[1:]])[0]
    return build_report(OPENREPORTS, report, deployment, max_results=100, now=1.9e9)


class FakeClient:
    default_namespace = "shop"  # the kubeconfig context's namespace

    def __init__(self, served: dict[str, set[str]], bodies: list[dict[str, Any]]) -> None:
        self.served = served
        self.bodies = bodies
        self.paths: list[str] = []
        self.closed = False

    async def served_resources(self, api_version: str) -> set[str] | None:
        return self.served.get(api_version)

    async def list(self, path: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        assert label_selector == "app.kubernetes.io/managed-by=prodready"
        self.paths.append(path)
        return copy.deepcopy(self.bodies)

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> FakeClient:
    fake = FakeClient(
        {"openreports.io/v1alpha1": {"reports"}},
        [
            _report_body("web", "front", broken=False),
            _report_body("shop", "api", broken=True),
        ],
    )
    monkeypatch.setattr(command.KubeClient, "login", classmethod(lambda cls, *a: fake))
    monkeypatch.setenv("NO_COLOR", "1")
    return fake


def test_table_lists_each_workload_like_validate(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "-A"]) == 1  # an error-severity rule fails in the cluster
    out = capsys.readouterr().out
    assert out.index("Deployment shop/api") < out.index("Deployment web/front")  # sorted
    assert "shop/reports/prodready-deployment-api:1" in out
    assert "FAIL  PR-HC-001" in out
    assert "2 objects checked" in out
    assert "1 of 2 compliant" in out
    assert client.paths == ["/apis/openreports.io/v1alpha1/reports"]
    assert client.closed


def test_one_namespace_as_json(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.bodies = client.bodies[:1]
    assert main(["report", "-n", "web", "-o", "json"]) == 0
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert document["summary"]["objects"] == 1
    assert document["objects"][0]["compliant"] is True
    assert "1 object checked" in captured.err
    assert client.paths == ["/apis/openreports.io/v1alpha1/namespaces/web/reports"]


def test_sarif_and_fail_on_warning(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.bodies = client.bodies[:1]
    assert main(["report", "-o", "sarif", "--fail-on", "warning"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "2.1.0"


def test_policy_reports_are_read_when_openreports_is_absent(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.served = {"wgpolicyk8s.io/v1alpha2": {"policyreports"}}
    assert main(["report", "--show-passed", "--all-namespaces"]) == 1
    assert "PASS  PR-HC-002" in capsys.readouterr().out
    assert client.paths == [POLICY_REPORT.resource.path(None)]


def test_no_reports_is_a_note(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.bodies = []
    assert main(["report", "-n", "empty"]) == 0
    assert "no prodready reports in namespace empty" in capsys.readouterr().err


def test_the_context_namespace_is_the_default(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    client.bodies = []
    assert main(["report"]) == 0
    assert client.paths == ["/apis/openreports.io/v1alpha1/namespaces/shop/reports"]
    err = capsys.readouterr().err
    assert "no prodready reports in namespace shop" in err
    assert "-A reads every namespace" in err


def test_namespace_and_all_namespaces_exclude_each_other(
    client: FakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["report", "-A", "-n", "shop"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_no_report_crd_is_an_error(client: FakeClient, capsys: pytest.CaptureFixture[str]) -> None:
    client.served = {}
    assert main(["report"]) == 2
    assert "neither the OpenReports CRD" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (ApiError(403, "Forbidden", "reports is forbidden", "GET", "/apis"), "403 Forbidden"),
        (aiohttp.ClientConnectionError("refused"), "cannot reach the cluster: refused"),
        (TimeoutError(), "cannot reach the cluster: TimeoutError"),
        (kopf.LoginError("no Kubernetes credentials"), "no Kubernetes credentials"),
    ],
)
def test_failures_are_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    error: Exception,
    message: str,
) -> None:
    async def failing(_namespace: str | None, **_: Any) -> Any:
        raise error

    monkeypatch.setattr(command, "_read", failing)
    assert main(["report", "--kubeconfig", "/nonexistent/kubeconfig"]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err

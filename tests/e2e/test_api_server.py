"""The ProductionService API against a real kube-apiserver.

The CRD installs and is Established; the apiserver's defaulting agrees with the models;
the CEL rules reject each bad case with its message; the rendered objects of both
examples pass server-side dry-run (with prometheus-operator's real CRDs installed);
`kubectl explain` shows the descriptions; names, short names, category, printer
columns and the status subresource work.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.api import parse_production_service
from prodready.api.crd import CRD_NAME
from prodready.render import CHILD_KINDS, render
from prodready.render.command import format_objects
from tests.cluster.controlplane import ControlPlane

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "prodready.io_productionservices.yaml"
MONITORING_CRDS = sorted((REPO / "tests" / "fixtures" / "crds").glob("*.yaml"))
EXAMPLES = REPO / "examples"


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def install_crd(cluster: ControlPlane, path: Path, name: str) -> None:
    """Server-side apply (the monitoring CRDs are too big for client-side apply), then wait."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path))
    cluster.wait_established(name)


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> ControlPlane:
    """The ProductionService CRD and the ServiceMonitor/PrometheusRule CRDs, installed.

    They stay installed: the session's other tests (the controller's) need them too.
    """
    install_crd(cluster, CRD_FILE, CRD_NAME)
    for path in MONITORING_CRDS:
        install_crd(cluster, path, yaml.safe_load(path.read_text())["metadata"]["name"])
    # Discovery (which kubectl uses to map kinds) lags Established by a moment.
    wait_for(
        lambda: cluster.kubectl("get", "productionservices", "-A", check=False).returncode == 0,
        60,
        "productionservices in discovery",
    )
    return cluster


def example(name: str, namespace: str) -> dict[str, Any]:
    """An example ProductionService, moved into the test's namespace."""
    document: dict[str, Any] = yaml.safe_load((EXAMPLES / name).read_text())
    document["metadata"]["namespace"] = namespace
    return document


def minimal(namespace: str, name: str = "api", **spec: Any) -> dict[str, Any]:
    """The smallest valid ProductionService plus `spec` overrides."""
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"image": "ghcr.io/example/api:1.0", "environment": "dev", **spec},
    }


def test_crd_is_established(crds: ControlPlane) -> None:
    crd = crds.kubectl_json("get", "crd", CRD_NAME)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}  # type: ignore[index]
    assert conditions["Established"] == "True"
    assert conditions["NamesAccepted"] == "True"
    assert conditions.get("NonStructuralSchema", "False") == "False"


def test_explain_shows_the_descriptions(crds: ControlPlane) -> None:
    explained: list[str] = []

    def explain() -> bool:
        result = crds.kubectl("explain", "productionservice.spec.health", check=False)
        explained[:] = [result.stdout]
        return result.returncode == 0

    wait_for(explain, 60, "kubectl explain productionservice.spec.health")
    text = " ".join(explained[0].split())
    assert "Health endpoint and probes." in text
    assert "HTTP path of the health endpoint: 200 when healthy, 503 when not." in text
    assert "PR-HC-004" in text
    liveness = crds.kubectl("explain", "productionservice.spec.health.liveness.periodSeconds")
    assert "Seconds between probes." in liveness.stdout


def test_defaulting_agrees_with_the_models(crds: ControlPlane, namespace: str) -> None:
    """What the apiserver stores parses to exactly the model the renderer builds."""
    for name in ("minimal.yaml", "fastapi-postgres-redis.yaml"):
        document = example(name, namespace)
        crds.kubectl("apply", "-f", "-", input=json.dumps(document))
        stored = crds.kubectl_json(
            "get", "productionservice", document["metadata"]["name"], "-n", namespace
        )
        assert stored["spec"]["health"]["liveness"]["periodSeconds"] == 30  # type: ignore[index]
        assert parse_production_service(stored).spec == parse_production_service(document).spec


def test_rendered_examples_pass_server_side_dry_run(crds: ControlPlane, namespace: str) -> None:
    crds.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "secret.yaml"))
    for name in ("minimal.yaml", "fastapi-postgres-redis.yaml"):
        objects = render(example(name, namespace))
        result = crds.kubectl(
            "apply", "--dry-run=server", "-f", "-", input=format_objects(objects, "yaml")
        )
        applied = result.stdout.strip().splitlines()
        assert len(applied) == len(objects), result.stdout
        assert all("(server dry run)" in line for line in applied)


def test_rendered_objects_are_created_and_kept_by_the_apiserver(
    crds: ControlPlane, namespace: str
) -> None:
    """Created for real, every object reads back with what we rendered (nothing pruned)."""
    objects = render(example("fastapi-postgres-redis.yaml", namespace))
    crds.kubectl("apply", "--server-side", "-f", "-", input=format_objects(objects, "yaml"))
    plurals = {(kind.api_version, kind.kind): kind.plural for kind in CHILD_KINDS}
    for rendered in objects:
        api_version = rendered["apiVersion"]
        group = api_version.split("/")[0] if "/" in api_version else ""
        plural = plurals[(api_version, rendered["kind"])]
        resource = f"{plural}.{group}" if group else plural
        stored = crds.kubectl_json("get", resource, rendered["metadata"]["name"], "-n", namespace)
        _assert_kept(rendered["spec"], stored["spec"], f"{rendered['kind']}.spec")


def _assert_kept(rendered: Any, stored: Any, path: str) -> None:
    if isinstance(rendered, dict):
        assert isinstance(stored, dict), path
        for key, value in rendered.items():
            assert key in stored, f"{path}.{key} was pruned"
            _assert_kept(value, stored[key], f"{path}.{key}")
    elif isinstance(rendered, list):
        assert isinstance(stored, list), path
        assert len(stored) == len(rendered), path
        for index, (item, kept) in enumerate(zip(rendered, stored, strict=True)):
            _assert_kept(item, kept, f"{path}[{index}]")
    else:
        assert str(rendered) == str(stored), path


BAD_CASES = [
    pytest.param(
        {"health": {"readiness": {"periodSeconds": 60}}},
        "spec.health.readiness.periodSeconds",
        "PR-HC-003",
        id="readiness-slower-than-liveness",
    ),
    pytest.param(
        {"shutdown": {"gracePeriodSeconds": 10, "preStopDelaySeconds": 10}},
        "spec.shutdown.preStopDelaySeconds",
        "PR-GS-002",
        id="prestop-not-within-grace",
    ),
    pytest.param(
        {"env": [{"name": "A", "value": "1"}, {"name": "DB_PASSWORD", "value": "hunter2"}]},
        "spec.env",
        "PR-LG-003",
        id="literal-secret",
    ),
    pytest.param(
        {"environment": "prod", "replicas": 1},
        "spec.replicas",
        "PR-RS-002",
        id="prod-single-replica",
    ),
    pytest.param(
        {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}},
        "spec.autoscaling.minReplicas",
        "must not exceed autoscaling.maxReplicas",
        id="autoscaling-min-above-max",
    ),
    pytest.param(
        {"resources": {"requests": {"memory": "1Gi"}}},
        "spec.resources.limits",
        "must not be lower than resources.requests",
        id="limit-below-request",
    ),
    pytest.param(
        {"env": [{"name": "LOG_LEVEL", "value": "DEBUG"}]},
        "spec.env",
        "must not set the variables prodready sets",
        id="env-shadows-a-setting",
    ),
    pytest.param(
        {
            "env": [{"name": "A", "value": "1"}],
            "secretEnv": [{"name": "A", "secretName": "s", "key": "k"}],
        },
        "spec.secretEnv",
        "both spec.env and spec.secretEnv",
        id="env-and-secret-env",
    ),
    pytest.param(
        {"pod": {"labels": {"prodready.io/service": "x"}}},
        "spec.pod.labels",
        "are set by prodready",
        id="reserved-pod-label",
    ),
    pytest.param({"environment": "qa"}, "spec.environment", "Unsupported value", id="bad-enum"),
    # What the apiserver would refuse in the rendered pod: refused in the spec, as the
    # renderer refuses it (found by tests/e2e/test_fuzz.py).
    pytest.param(
        {"pod": {"tolerations": [{"operator": "Equal"}]}},
        "spec.pod.tolerations[0].operator",
        "use operator Exists",
        id="toleration-without-key",
    ),
    pytest.param(
        {"pod": {"tolerations": [{"key": "k", "tolerationSeconds": 9, "effect": "NoSchedule"}]}},
        "spec.pod.tolerations[0].tolerationSeconds",
        "NoExecute effect only",
        id="toleration-seconds-without-noexecute",
    ),
    pytest.param(
        {"pod": {"tolerations": [{"operator": "Exists", "value": "v"}]}},
        "spec.pod.tolerations[0].value",
        "takes no value",
        id="exists-toleration-with-value",
    ),
]


@pytest.mark.parametrize(("spec", "field", "message"), BAD_CASES)
def test_cel_and_schema_reject_bad_cases(
    crds: ControlPlane, namespace: str, spec: dict[str, Any], field: str, message: str
) -> None:
    result = crds.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=json.dumps(minimal(namespace, **spec)),
        check=False,
    )
    assert result.returncode != 0
    assert field in result.stderr
    assert message in result.stderr
    assert "hunter2" not in result.stderr


def test_missing_image_is_rejected(crds: ControlPlane, namespace: str) -> None:
    document = minimal(namespace)
    del document["spec"]["image"]
    result = crds.kubectl(
        "apply", "--dry-run=server", "-f", "-", input=json.dumps(document), check=False
    )
    assert result.returncode != 0
    assert "spec.image: Required value" in result.stderr


def test_bad_name_is_rejected(crds: ControlPlane, namespace: str) -> None:
    result = crds.kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        "-",
        input=json.dumps(minimal(namespace, name="1api")),
        check=False,
    )
    assert result.returncode != 0
    assert "metadata.name must be a DNS-1035 label" in result.stderr


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ({"environment": "prod", "replicas": 1}, "PR-RS-002"),
        ({"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]}, "PR-LG-003"),
    ],
)
def test_exemptions_lift_the_cel_rules(
    crds: ControlPlane, namespace: str, spec: dict[str, Any], rule: str
) -> None:
    document = minimal(namespace, **spec, exemptions=[{"rule": rule, "reason": "reviewed"}])
    crds.kubectl("apply", "--dry-run=server", "-f", "-", input=json.dumps(document))


def test_names_category_printer_columns_and_status(crds: ControlPlane, namespace: str) -> None:
    crds.kubectl("apply", "-f", "-", input=json.dumps(minimal(namespace, name="hello")))
    for resource in ("productionservices", "productionservice", "ps", "prodsvc", "prodready"):
        listed = crds.kubectl("get", resource, "-n", namespace, "-o", "name")
        assert "productionservice.prodready.io/hello" in listed.stdout
    header = crds.kubectl("get", "ps", "-n", namespace).stdout.splitlines()[0].split()
    # READY first, its reason beside it (as Flux's kinds); the README and NOTES.txt say so.
    assert header == ["NAME", "READY", "REASON", "COMPLIANT", "REPLICAS", "ENVIRONMENT", "AGE"]

    status = {
        "status": {
            "observedGeneration": 1,
            "replicas": 2,
            "readyReplicas": 2,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Available",
                    "message": "2/2 replicas ready",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                    "observedGeneration": 1,
                },
                {
                    "type": "PolicyCompliant",
                    "status": "False",
                    "reason": "RuleFailed",
                    "message": "PR-SC-001",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                },
            ],
            "compliance": {
                "compliant": False,
                "errors": 1,
                "score": 90,
                "findings": [
                    {"ruleId": "PR-SC-001", "severity": "error", "result": "fail", "path": "x"}
                ],
            },
        }
    }
    crds.kubectl(
        "patch",
        "productionservice",
        "hello",
        "-n",
        namespace,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    row = crds.kubectl("get", "ps", "hello", "-n", namespace, "--no-headers").stdout.split()
    assert row[:6] == ["hello", "True", "Available", "False", "2", "dev"]
    wide = crds.kubectl("get", "ps", "hello", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-2:] == ["SCORE", "MESSAGE"]
    assert wide[1].split()[-4:] == ["90", "2/2", "replicas", "ready"]
    stored = crds.kubectl_json("get", "ps", "hello", "-n", namespace)
    parsed = parse_production_service(stored)
    assert parsed.status is not None
    assert parsed.status.compliance is not None
    assert parsed.status.compliance.score == 90
    # The status subresource ignores spec changes, and the main resource ignores status.
    changed = copy.deepcopy(status)
    changed["status"]["replicas"] = 7
    spec_patch = {"spec": {"replicas": 5}, **changed}
    crds.kubectl(
        "patch",
        "productionservice",
        "hello",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        json.dumps(spec_patch),
    )
    stored = crds.kubectl_json("get", "ps", "hello", "-n", namespace)
    assert stored["spec"]["replicas"] == 5  # type: ignore[index]
    assert stored["status"]["replicas"] == 2  # type: ignore[index]

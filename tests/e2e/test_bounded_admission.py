"""One crafted object no longer stalls admission (issue 14, "Why" 3), through the real
kube-apiserver: before, a 218 KB Deployment of 3,000 containers applied with kubectl held
the webhook past its timeout, was admitted by failurePolicy Ignore, and the next
non-compliant Deployment was admitted too. Now the object is refused by its cap at once,
with a message naming the field and the cap, and the next one is judged as usual."""

from __future__ import annotations

import json
import time

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.policy_support import bare_deployment, kubectl_apply, metric
from tests.e2e.support import OperatorProcess, get
from tests.e2e.test_webhook import Register, operator, webhook

pytestmark = pytest.mark.cluster

__all__ = ["operator", "webhook"]  # fixtures shared with test_webhook, one operator here


@pytest.fixture
def enforce_namespace(
    cluster: ControlPlane, operator: OperatorProcess, webhook: Register, namespace: str
) -> str:
    # failurePolicy Ignore, as in the reproduction: a webhook that stalls admits everything.
    webhook(operator, namespace, failure_policy="Ignore")
    return namespace


def _three_thousand_containers(namespace: str) -> dict[str, object]:
    deployment = bare_deployment("huge", namespace)
    deployment["spec"]["template"]["spec"]["containers"] = [  # type: ignore[index]
        {"name": f"c{index}", "image": f"registry.example.com/team/app:1.{index}"}
        for index in range(3_000)
    ]
    return deployment


def test_a_three_thousand_container_deployment_is_refused_at_once_and_the_next_is_judged(
    cluster: ControlPlane, operator: OperatorProcess, enforce_namespace: str
) -> None:
    huge = _three_thousand_containers(enforce_namespace)
    assert len(json.dumps(huge)) > 200_000
    started = time.monotonic()
    result = kubectl_apply(cluster, enforce_namespace, huge)
    seconds = time.monotonic() - started
    assert result.returncode != 0
    assert 'admission webhook "enforce.workloads.prodready.io" denied the request' in (
        result.stderr
    )
    assert "PR-LM-001" in result.stderr
    assert "declares 3,000 containers" in result.stderr
    assert "at most 500 per pod" in result.stderr
    assert "spec.template.spec.containers" in result.stderr
    # Answered by prodready, well within the apiserver's 10 s timeout (kubectl included).
    assert seconds < 5, seconds
    assert get(cluster, "deployment", "huge", enforce_namespace) is None
    assert metric(operator, "prodready_webhook_requests_total", allowed="false") >= 1

    result = kubectl_apply(cluster, enforce_namespace, bare_deployment("next", enforce_namespace))
    assert result.returncode != 0
    assert "PR-HC-001" in result.stderr
    assert get(cluster, "deployment", "next", enforce_namespace) is None

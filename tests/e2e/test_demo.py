"""`make demo` works on a fresh cluster, and a second time on the same one, and shows the
whole product: ProductionServices made Ready, a hand-written Deployment denied in the
enforce namespace (by the webhook, called by the apiserver with the operator's own
certificate), admitted with warnings in the audit namespace, and `prodready report` on
what the audit wrote."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.controlplane import REPO, default_bin_dir, free_port

pytestmark = pytest.mark.cluster


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def test_demo_twice_then_down(tmp_path: Path) -> None:
    env = dict(os.environ)
    env["PRODREADY_BIN_DIR"] = str(default_bin_dir())
    env["PRODREADY_HEALTH_PORT"] = str(free_port())
    env["PRODREADY_WEBHOOK_PORT"] = str(free_port())
    local = str(tmp_path)
    try:
        assert run(["tests.cluster", "up", "--dir", local], env).returncode == 0
        for attempt in (1, 2):
            demo = run(["tests.cluster.demo", "--dir", local], env)
            assert demo.returncode == 0, f"attempt {attempt}:\n{demo.stdout}\n{demo.stderr}"
            out = demo.stdout
            assert "productionservice/orders-api condition met" in out
            assert "productionservice/hello condition met" in out
            assert "checklist: compliant" in out
            assert "deployment.apps/orders-api" in out
            assert "set the caBundle" in out
            # The denial, as kubectl prints the webhook's answer.
            denial = out.split("kubectl apply -n demo-enforce", 1)[1]
            denial = denial.split("kubectl apply -n demo-audit", 1)[0]
            assert 'admission webhook "enforce.workloads.prodready.io" denied the request' in (
                denial
            )
            assert "PR-HC-001" in denial
            # The warnings: admitted in audit mode, each failing rule a kubectl warning.
            audit = out.split("kubectl apply -n demo-audit", 1)[1].split("== prodready report")[0]
            assert "Warning: " in audit
            assert "PR-HC-001" in audit
            assert "deployment.apps/web" in audit
            # The report the audit wrote for it.
            report = out.split("== prodready report -n demo-audit", 1)[1]
            assert "web" in report
            assert "PR-HC-001" in report
            assert "Traceback" not in out + demo.stderr
        assert (tmp_path / "operator.log").stat().st_size > 0
    finally:
        down = run(["tests.cluster", "down", "--dir", local], env)
    assert "operator" in down.stdout
    assert not (tmp_path / "operator.state.json").exists()

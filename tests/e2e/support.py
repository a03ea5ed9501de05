"""Helpers for tests against the real control plane: the operator as a real process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cluster.controlplane import ControlPlane, free_port

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "crds" / "prodready.io_productionservices.yaml"
POLICY_CRDS = (
    REPO / "crds" / "prodready.io_readinesspolicies.yaml",
    REPO / "crds" / "prodready.io_readinessexceptions.yaml",
)
MONITORING_CRDS = sorted(
    (REPO / "tests" / "fixtures" / "crds").glob("monitoring.coreos.com_*.yaml")
)


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Poll `check` until it returns something truthy; fail naming `what` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def install_crds(cluster: ControlPlane, *files: Path) -> None:
    """Apply CRD files and wait until each is Established."""
    for path in files:
        cluster.kubectl("apply", "--server-side", "-f", str(path))
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        cluster.wait_established(name)


def uninstall_crds(cluster: ControlPlane, *files: Path) -> None:
    """Delete CRDs and wait until they are gone."""
    for path in files:
        name = yaml.safe_load(path.read_text())["metadata"]["name"]
        cluster.kubectl("delete", "crd", name, "--ignore-not-found", "--wait=true", timeout=120)


def get(cluster: ControlPlane, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    """An object as JSON, or None when it does not exist."""
    result = cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return dict(json.loads(result.stdout))


def production_service(name: str, **spec: Any) -> dict[str, Any]:
    """A staging ProductionService the operator can make Ready; `spec` overrides fields."""
    body: dict[str, Any] = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {
            "image": "registry.example.com/shop/web:1.4.2",
            "environment": "staging",
            "replicas": 2,
            "security": {
                "corsAllowedOrigins": ["https://shop.example.com"],
                "rateLimit": "100/minute",
            },
        },
    }
    body["spec"].update(spec)
    return body


def condition(obj: dict[str, Any] | None, condition_type: str) -> dict[str, Any]:
    """A status condition of an object, or {}."""
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == condition_type:
            return dict(entry)
    return {}


def events(cluster: ControlPlane, namespace: str, name: str) -> list[dict[str, Any]]:
    """Events about the object `name` in `namespace`."""
    result = cluster.kubectl_json(
        "get", "events", "-n", namespace, f"--field-selector=involvedObject.name={name}"
    )
    items = result.get("items")
    return list(items) if isinstance(items, list) else []


@dataclass
class OperatorProcess:
    """`prodready run` as a child process, with its log and health port."""

    process: subprocess.Popen[bytes]
    log: Path
    health_port: int

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.health_port}{path}"

    def status(self, path: str) -> int:
        """HTTP status of a health endpoint (0 when unreachable)."""
        try:
            with urllib.request.urlopen(self.url(path), timeout=2) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def text(self, path: str) -> str:
        with urllib.request.urlopen(self.url(path), timeout=5) as response:  # noqa: S310
            return str(response.read().decode())

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for raw in self.log.read_text(errors="replace").splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(raw))
        return lines

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 40) -> int:
        """Signal the process and wait for it to exit; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"operator did not exit within {timeout}s of {sig.name}")


def start_operator(
    cluster: ControlPlane,
    log: Path,
    *,
    env: dict[str, str] | None = None,
    standalone: bool = True,
    kubeconfig: Path | None = None,
    wait_ready: bool = True,
) -> OperatorProcess:
    """Start `prodready run` against the cluster and wait until /readyz answers 200."""
    health_port = free_port()
    environment = dict(os.environ)
    environment.update(
        {
            "KUBECONFIG": str(kubeconfig or cluster.kubeconfig),
            "PRODREADY_HEALTH_PORT": str(health_port),
            "PRODREADY_WEBHOOK_PORT": str(free_port()),
            "PRODREADY_RESYNC_INTERVAL_SECONDS": "10",
            "PRODREADY_SHUTDOWN_TIMEOUT_SECONDS": "20",
            "PRODREADY_STANDALONE": "true" if standalone else "false",
            "PRODREADY_LOG_LEVEL": "DEBUG",
            # Tests read /metrics without a token; tests/e2e/test_security_webhook.py
            # proves the authenticated /metrics the operator serves by default.
            "PRODREADY_METRICS_AUTH": "false",
            "POD_NAMESPACE": "default",
        }
    )
    environment.update(env or {})
    handle = log.open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "prodready", "run"],
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=environment,
        cwd=REPO,
    )
    handle.close()
    operator = OperatorProcess(process, log, health_port)
    if wait_ready:

        def ready() -> bool:
            if process.poll() is not None:
                pytest.fail(f"operator exited ({process.returncode}):\n{log.read_text()[-4000:]}")
            return operator.status("/readyz") == 200

        try:
            wait_for(ready, 60, "the operator's /readyz")
        except pytest.fail.Exception:
            process.kill()
            pytest.fail(f"operator never became ready:\n{log.read_text()[-6000:]}")
    return operator


@contextlib.contextmanager
def running_operator(cluster: ControlPlane, log: Path, **kwargs: Any) -> Iterator[OperatorProcess]:
    """An operator for the duration of a `with` block; stopped with SIGTERM after."""
    operator = start_operator(cluster, log, **kwargs)
    try:
        yield operator
    finally:
        operator.stop(signal.SIGTERM)

"""The local control plane is real: scheduling, rollout, GC and RBAC all work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane, default_bin_dir

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it is true; fail the test with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def deployment(name: str, replicas: int) -> str:
    return json.dumps(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "example.invalid/app:1"}]},
                },
            },
        }
    )


def test_deployment_becomes_available(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("web", 2))
    cluster.kubectl(
        "wait",
        "-n",
        namespace,
        "--for=jsonpath={.status.availableReplicas}=2",
        "deployment/web",
        "--timeout=90s",
    )
    pods = cluster.kubectl_json("get", "pods", "-n", namespace)
    items = pods["items"]
    assert isinstance(items, list)
    assert len(items) == 2
    assert all(pod["status"]["phase"] == "Running" for pod in items)
    assert all(pod["spec"]["nodeName"] == "kwok-node-0" for pod in items)


def test_garbage_collection_deletes_owned_children(cluster: ControlPlane, namespace: str) -> None:
    owner = cluster.kubectl(
        "create", "configmap", "owner", "-n", namespace, "-o", "jsonpath={.metadata.uid}"
    ).stdout
    child = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "child",
            "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner}
            ],
        },
    }
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(child))
    cluster.kubectl("delete", "configmap", "owner", "-n", namespace)

    def child_gone() -> bool:
        result = cluster.kubectl("get", "configmap", "child", "-n", namespace, check=False)
        return result.returncode != 0 and "NotFound" in result.stderr

    wait_for(child_gone, 60, "the garbage collector to delete the owned ConfigMap")


def test_service_account_is_limited_to_its_rbac(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "serviceaccount", "reader", "-n", namespace)
    cluster.kubectl(
        "create",
        "role",
        "read-configmaps",
        "-n",
        namespace,
        "--verb=get,list",
        "--resource=configmaps",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "reader",
        "-n",
        namespace,
        "--role=read-configmaps",
        f"--serviceaccount={namespace}:reader",
    )
    kubeconfig = cluster.mint_kubeconfig("reader", namespace)

    allowed = cluster.kubectl("get", "configmaps", "-n", namespace, kubeconfig=kubeconfig)
    assert allowed.returncode == 0
    denied = cluster.kubectl("get", "secrets", "-n", namespace, kubeconfig=kubeconfig, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert f"system:serviceaccount:{namespace}:reader" in denied.stderr
    write = cluster.kubectl(
        "create", "configmap", "nope", "-n", namespace, kubeconfig=kubeconfig, check=False
    )
    assert "forbidden" in write.stderr.lower()


def test_writes_are_audited(cluster: ControlPlane, namespace: str) -> None:
    cluster.kubectl("create", "configmap", "audited", "-n", namespace)

    def audited() -> bool:
        return any(
            event.get("verb") == "create"
            and isinstance(event.get("objectRef"), dict)
            and event["objectRef"].get("name") == "audited"
            for event in cluster.audit_events()
        )

    wait_for(audited, 10, "the audit log to record the create")


def _descendants_alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if "\nState:\tZ" not in status:
            alive.append(pid)
    return alive


def test_teardown_leaves_no_process(tmp_path: Path) -> None:
    """A second, short-lived control plane: stop() ends every process it started."""
    plane = ControlPlane(bin_dir=default_bin_dir(), directory=tmp_path / "cp")
    plane.start()
    pids = [process.pid for process in plane.processes.values()]
    assert len(pids) == 5
    plane.stop()
    assert _descendants_alive(pids) == []


def test_make_cluster_up_and_down(tmp_path: Path) -> None:
    """`python -m tests.cluster up/down` (what make cluster runs) starts detached and stops."""
    env = dict(os.environ, PRODREADY_BIN_DIR=str(default_bin_dir()))
    up = subprocess.run(
        [sys.executable, "-m", "tests.cluster", "up", "--dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert up.returncode == 0, up.stderr
    state = json.loads((tmp_path / "cluster" / "state.json").read_text())
    pids = [int(pid) for pid in state["pids"].values()]
    nodes = subprocess.run(
        [
            str(default_bin_dir() / "kubectl"),
            f"--kubeconfig={tmp_path / 'kubeconfig'}",
            "get",
            "nodes",
            "-o",
            "jsonpath={.items[0].status.conditions[?(@.type=='Ready')].status}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert nodes.stdout == "True", nodes.stderr
    again = subprocess.run(
        [sys.executable, "-m", "tests.cluster", "up", "--dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "already running" in again.stdout
    down = subprocess.run(
        [sys.executable, "-m", "tests.cluster", "down", "--dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 0
    wait_for(lambda: _descendants_alive(pids) == [], 20, "the detached processes to exit")

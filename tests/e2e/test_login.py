"""Logging in as kubectl does, against the real kube-apiserver (issue 19).

Every credential here is a ServiceAccount token minted by a TokenRequest (`kubectl create
token`), handed over the ways real clusters hand them: a token file (in a kubeconfig, and
as a pod's), and an exec plugin printing an ExecCredential (what `aws eks get-token`,
`gke-gcloud-auth-plugin` and `kubelogin` do). The plugin counts its runs in a file, so a
refresh is seen, not assumed. `prodready report` and `prodready run` are real processes;
`kubectl prodready report` goes through kubectl's plugin lookup on PATH.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.kube.client import KubeClient
from prodready.kube.login import ClusterTarget, login
from tests.cluster.controlplane import ControlPlane, free_port
from tests.e2e.policy_support import OPENREPORTS_CRD
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    REPO,
    get,
    install_crds,
    start_operator,
    uninstall_crds,
    wait_for,
)

pytestmark = pytest.mark.cluster

NAMESPACE = "login-e2e"
ACCOUNT = "prodready-login"
USERNAME = f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}"
WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
PLUGIN = """#!{python}
import datetime, json, os, pathlib, sys
here = pathlib.Path(__file__).parent
if (here / "fail").exists():
    sys.stderr.write("plugin: no session, run the login first\\n")
    sys.exit(1)
lifetime = float((here / "lifetime").read_text())
expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)
with open(here / "runs", "a") as runs:  # one line per run: when its credential expires
    runs.write(str(expires.timestamp()) + "\\n")
status = {{"token": (here / "token").read_text().strip()}}
if lifetime > 0:
    status["expirationTimestamp"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
print(json.dumps({{
    "apiVersion": "client.authentication.k8s.io/v1",
    "kind": "ExecCredential",
    "status": status,
}}))
"""


@dataclass
class Plugin:
    """An exec credential plugin in its own directory: token, lifetime, run count."""

    directory: Path

    @property
    def command(self) -> Path:
        return self.directory / "plugin"

    def runs(self) -> int:
        return len(self._expirations())

    def all_expired(self) -> bool:
        """Whether every credential the plugin has handed out has expired by now."""
        return max(self._expirations(), default=0.0) < time.time()

    def _expirations(self) -> list[float]:
        path = self.directory / "runs"
        return [float(line) for line in path.read_text().splitlines()] if path.exists() else []

    def set(self, *, lifetime: float = 0, fail: bool = False) -> None:
        (self.directory / "lifetime").write_text(str(lifetime))
        fail_file = self.directory / "fail"
        if fail:
            fail_file.touch()
        else:
            fail_file.unlink(missing_ok=True)


def mint(cluster: ControlPlane, *extra: str) -> str:
    return cluster.kubectl("create", "token", ACCOUNT, "-n", NAMESPACE, *extra).stdout.strip()


def write_kubeconfig(
    path: Path,
    cluster: ControlPlane,
    user: dict[str, Any],
    *,
    contexts: dict[str, str] | None = None,
    current: str = "real",
) -> Path:
    """A kubeconfig whose contexts (name -> server) share one user and the cluster's CA."""
    contexts = contexts or {"real": cluster.api_url}
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority": str(cluster.certs.ca)},
            }
            for name, server in contexts.items()
        ],
        "users": [{"name": "user", "user": user}],
        "contexts": [
            {"name": name, "context": {"cluster": name, "user": "user", "namespace": NAMESPACE}}
            for name in contexts
        ],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def exec_user(plugin: Plugin) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin.command),
            "interactiveMode": "Never",
        }
    }


@pytest.fixture(scope="module")
def account(cluster: ControlPlane) -> Iterator[str]:
    """A ServiceAccount bound to cluster-admin (the operator needs its writes)."""
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS, OPENREPORTS_CRD)
    cluster.kubectl("create", "namespace", NAMESPACE)
    cluster.kubectl("create", "serviceaccount", ACCOUNT, "-n", NAMESPACE)
    cluster.kubectl(
        "create", "clusterrolebinding", ACCOUNT, "--clusterrole=cluster-admin",
        f"--serviceaccount={NAMESPACE}:{ACCOUNT}",
    )  # fmt: skip
    try:
        yield ACCOUNT
    finally:
        cluster.kubectl("delete", "clusterrolebinding", ACCOUNT, check=False)
        cluster.kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
        uninstall_crds(cluster, OPENREPORTS_CRD)


@pytest.fixture
def plugin(cluster: ControlPlane, account: str, tmp_path: Path) -> Plugin:
    directory = tmp_path / "plugin"
    directory.mkdir()
    made = Plugin(directory)
    made.command.write_text(PLUGIN.format(python=sys.executable))
    made.command.chmod(made.command.stat().st_mode | stat.S_IXUSR)
    (directory / "token").write_text(mint(cluster))
    made.set()
    return made


def prodready(cluster: ControlPlane, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**cluster.env(), **env}
    return subprocess.run(
        [sys.executable, "-m", "prodready", *args],
        capture_output=True, text=True, check=False, cwd=REPO, env=environment, timeout=120,
    )  # fmt: skip


def report_ok(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return dict(json.loads(result.stdout))


async def whoami(client: KubeClient) -> str:
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = await client.request("POST", WHOAMI, body=body)
    return str(answer["status"]["userInfo"]["username"])


# -- token files -------------------------------------------------------------------------------


def test_report_with_a_token_file_in_the_kubeconfig(
    cluster: ControlPlane, account: str, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text(mint(cluster) + "\n")
    config = write_kubeconfig(tmp_path / "config", cluster, {"tokenFile": "token"})
    document = report_ok(prodready(cluster, "report", "--kubeconfig", str(config), "-o", "json"))
    assert document["summary"]["failed"] is False


async def test_the_pods_service_account_token_file_and_its_rotation(
    cluster: ControlPlane, account: str, tmp_path: Path
) -> None:
    # A pod's token file, as the kubelet projects it; the token is bound to a Secret, so
    # deleting the Secret revokes it, as an expired projected token would be refused.
    cluster.kubectl("create", "secret", "generic", "binding", "-n", NAMESPACE)
    pod = tmp_path / "serviceaccount"
    pod.mkdir()
    (pod / "token").write_text(
        mint(cluster, "--bound-object-kind=Secret", "--bound-object-name=binding")
    )
    (pod / "ca.crt").write_bytes(cluster.certs.ca.read_bytes())
    (pod / "namespace").write_text(NAMESPACE)
    environ = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(cluster.ports["apiserver"]),
    }
    credentials = functools.partial(
        login, ClusterTarget(), environ=environ, service_account_dir=pod
    )
    client = KubeClient(credentials(), credentials=credentials)
    try:
        assert client.default_namespace == NAMESPACE
        assert await whoami(client) == USERNAME
        # The kubelet rotates the file and the old token stops working (401): the client
        # reads the file again and carries on, every request answered.
        cluster.kubectl("delete", "secret", "binding", "-n", NAMESPACE)
        fresh = mint(cluster)
        (pod / "token").write_text(fresh)
        deadline = time.monotonic() + 30
        while client._connection.token != fresh:
            assert time.monotonic() < deadline, "the rotated token file was never read"
            assert await whoami(client) == USERNAME
            await asyncio.sleep(0.5)
        assert await whoami(client) == USERNAME
    finally:
        await client.close()


async def test_an_explicit_kubeconfig_beats_the_pods_service_account(
    cluster: ControlPlane, account: str, tmp_path: Path
) -> None:
    pod = tmp_path / "serviceaccount"
    pod.mkdir()
    (pod / "token").write_text(mint(cluster))
    (pod / "ca.crt").write_bytes(cluster.certs.ca.read_bytes())
    environ = {
        "KUBERNETES_SERVICE_HOST": "127.0.0.1",
        "KUBERNETES_SERVICE_PORT": str(cluster.ports["apiserver"]),
    }
    in_pod = KubeClient(login(ClusterTarget(), environ=environ, service_account_dir=pod))
    explicit = ClusterTarget(kubeconfig=str(cluster.kubeconfig))
    admin = KubeClient(login(explicit, environ=environ, service_account_dir=pod))
    try:
        assert await whoami(in_pod) == USERNAME
        assert await whoami(admin) != USERNAME  # the kubeconfig's client certificate
    finally:
        await in_pod.close()
        await admin.close()


# -- exec plugins ------------------------------------------------------------------------------


def test_report_with_an_exec_plugin(cluster: ControlPlane, plugin: Plugin, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", cluster, exec_user(plugin))
    report_ok(prodready(cluster, "report", "-A", "--kubeconfig", str(config), "-o", "json"))
    assert plugin.runs() == 1


def test_a_failing_exec_plugin_is_one_line(
    cluster: ControlPlane, plugin: Plugin, tmp_path: Path
) -> None:
    plugin.set(fail=True)
    config = write_kubeconfig(tmp_path / "config", cluster, exec_user(plugin))
    result = prodready(cluster, "report", "--kubeconfig", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"error: the exec plugin '{plugin.command}' of context 'real'" in result.stderr
    assert "no session, run the login first" in result.stderr


async def test_an_expiring_exec_credential_is_refreshed(
    cluster: ControlPlane, plugin: Plugin, tmp_path: Path
) -> None:
    plugin.set(lifetime=2)
    config = write_kubeconfig(tmp_path / "config", cluster, exec_user(plugin))
    client = KubeClient.login(target=ClusterTarget(kubeconfig=str(config)))
    try:
        first = client._connection
        assert first.expiration is not None
        assert await whoami(client) == USERNAME
        assert plugin.runs() == 1
        deadline = time.monotonic() + 30
        while plugin.runs() < 3:  # each expiration runs the plugin again, before a request
            assert time.monotonic() < deadline, f"the plugin ran {plugin.runs()} time(s)"
            assert await whoami(client) == USERNAME
            await asyncio.sleep(0.2)
        assert client._connection.expiration > first.expiration
    finally:
        await client.close()


def test_run_reconciles_with_an_exec_plugin_and_refreshes_it(
    cluster: ControlPlane, plugin: Plugin, tmp_path: Path
) -> None:
    plugin.set(lifetime=4)
    config = write_kubeconfig(tmp_path / "config", cluster, exec_user(plugin))
    # KUBECONFIG points at a closed port: the explicit kubeconfig must win.
    closed = write_kubeconfig(
        tmp_path / "closed",
        cluster,
        {"token": "x"},
        contexts={"real": f"https://127.0.0.1:{free_port()}"},
    )
    operator = start_operator(
        cluster,
        tmp_path / "operator.log",
        kubeconfig=closed,
        env={
            "PRODREADY_KUBECONFIG": str(config),
            "PRODREADY_CONTEXT": "real",
            "PRODREADY_NAMESPACES": NAMESPACE,
        },
    )
    try:
        apply_service(cluster, "before")
        wait_for(
            lambda: get(cluster, "deployment", "before", NAMESPACE), 60, "the first Deployment"
        )
        # Credentials are refreshed when next used: once they have all expired, the next
        # reconcile (a watch event, then the client's apply) runs the plugin again.
        runs = plugin.runs()
        wait_for(plugin.all_expired, 30, "the plugin's credentials to expire")
        apply_service(cluster, "after")
        wait_for(
            lambda: get(cluster, "deployment", "after", NAMESPACE), 60, "the second Deployment"
        )
        assert plugin.runs() > runs
    finally:
        assert operator.stop() == 0
    log = operator.log.read_text()
    assert "Unauthorized" not in log, log[-3000:]  # refreshed before use, never refused


def apply_service(cluster: ControlPlane, name: str) -> None:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"image": f"registry.example.com/team/{name}:1.0.0", "environment": "dev"},
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(service))


# -- contexts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("current", ["real", "closed"])
def test_context_picks_the_cluster_of_two(
    cluster: ControlPlane, account: str, tmp_path: Path, current: str
) -> None:
    contexts = {"real": cluster.api_url, "closed": f"https://127.0.0.1:{free_port()}"}
    config = write_kubeconfig(
        tmp_path / "config", cluster, {"token": mint(cluster)}, contexts=contexts, current=current
    )
    other = "closed" if current == "real" else "real"
    by_default = prodready(cluster, "report", "--kubeconfig", str(config), "-o", "json")
    chosen = prodready(
        cluster, "report", "--kubeconfig", str(config), "--context", other, "-o", "json"
    )
    reached, refused = (by_default, chosen) if current == "real" else (chosen, by_default)
    report_ok(reached)
    assert refused.returncode == 2
    assert "error: cannot reach the cluster" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_kubeconfig_files_merge_as_kubectl_merges_them(
    cluster: ControlPlane, account: str, tmp_path: Path
) -> None:
    # The first file picks the context; the second holds the clusters and the user, and
    # a current-context of its own (at a closed port) that the first one overrides.
    contexts = {"real": cluster.api_url, "closed": f"https://127.0.0.1:{free_port()}"}
    clusters = write_kubeconfig(
        tmp_path / "clusters", cluster, {"token": mint(cluster)}, contexts=contexts,
        current="closed",
    )  # fmt: skip
    chooser = tmp_path / "chooser"
    chooser.write_text(
        yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "current-context": "real"})
    )
    result = prodready(cluster, "report", "-o", "json", KUBECONFIG=f"{chooser}:{clusters}")
    report_ok(result)


# -- the kubectl plugin ------------------------------------------------------------------------


def test_kubectl_runs_prodready_as_a_plugin(
    cluster: ControlPlane, plugin: Plugin, tmp_path: Path
) -> None:
    config = write_kubeconfig(tmp_path / "config", cluster, exec_user(plugin))
    venv_bin = Path(sys.executable).parent
    assert (venv_bin / "kubectl-prodready").exists(), "pip install -e . installs the plugin"
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(venv_bin), str(cluster.bin_dir), "/usr/bin", "/bin"]),
        "KUBECONFIG": str(config),
    }
    listed = subprocess.run(
        ["kubectl", "plugin", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert str(venv_bin / "kubectl-prodready") in listed.stdout, listed.stderr
    result = subprocess.run(
        ["kubectl", "prodready", "report", "-A", "-o", "json"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    plugin_document = report_ok(result)
    direct = report_ok(prodready(cluster, "report", "-A", "-o", "json", KUBECONFIG=str(config)))
    assert plugin_document["summary"] == direct["summary"]
    helped = subprocess.run(
        ["kubectl", "prodready", "report", "--help"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert helped.stdout.startswith("usage: kubectl prodready report")

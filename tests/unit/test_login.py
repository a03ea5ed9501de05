"""Logging in as kubectl does (prodready.kube.login): which credentials, read how.

No apiserver here: a login only reads files and runs plugins. tests/e2e/test_login.py
proves the credentials against the real one.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from prodready.cli import build_parser, kubectl_plugin
from prodready.kube import login
from prodready.kube.login import ClusterTarget, Source, choose_source

SERVER = "https://203.0.113.7:6443"


def kubeconfig(
    path: Path,
    *,
    current: str | None = "main",
    contexts: dict[str, str] | None = None,
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    namespace: str | None = "team",
) -> Path:
    """A kubeconfig: `contexts` maps a context name to its cluster's server."""
    contexts = contexts if contexts is not None else {"main": SERVER}
    config: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server, **(cluster or {})}}
            for name, server in contexts.items()
        ],
        "users": [{"name": "me", "user": user if user is not None else {"token": "t0ken"}}],
        "contexts": [
            {
                "name": name,
                "context": {
                    "cluster": name,
                    "user": "me",
                    **({"namespace": namespace} if namespace else {}),
                },
            }
            for name in contexts
        ],
    }
    if current:
        config["current-context"] = current
    path.write_text(yaml.safe_dump(config))
    return path


def plugin(path: Path, *, body: str, exit_code: int = 0) -> Path:
    """An exec credential plugin: a script that prints `body` and exits with `exit_code`."""
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.stderr.write('plugin stderr: no session\\n')\n"
        f"print({body!r})\nsys.exit({exit_code})\n"
    )
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def exec_user(command: Path) -> dict[str, Any]:
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(command),
            "interactiveMode": "Never",
        }
    }


# -- which credentials ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "environ", "in_cluster", "home", "expected"),
    [
        # An explicit kubeconfig beats $KUBECONFIG and the pod's ServiceAccount.
        (ClusterTarget(kubeconfig="a"), {"KUBECONFIG": "b"}, True, True, Source(kubeconfig="a")),
        (ClusterTarget(), {"KUBECONFIG": "b:c"}, True, True, Source(kubeconfig="b:c")),
        (
            ClusterTarget(context="x"),
            {},
            True,
            False,
            Source(kubeconfig=login.DEFAULT_KUBECONFIG, context="x"),
        ),
        (ClusterTarget(), {}, True, True, Source(kubeconfig=None)),
        (ClusterTarget(), {"KUBECONFIG": ""}, False, True, Source(kubeconfig="~/.kube/config")),
        (ClusterTarget(), {}, False, False, None),
    ],
)
def test_credentials_are_chosen_in_kubectls_order(
    target: ClusterTarget,
    environ: dict[str, str],
    in_cluster: bool,
    home: bool,
    expected: Source | None,
) -> None:
    assert choose_source(target, environ, in_cluster=in_cluster, home_config=home) == expected


def test_no_credentials_at_all_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(kopf.LoginError, match="no Kubernetes credentials"):
        login.login(ClusterTarget(), environ={}, service_account_dir=tmp_path)


# -- what a kubeconfig gives ---------------------------------------------------------------


def test_a_token_and_the_context_namespace(tmp_path: Path) -> None:
    info = login.login(ClusterTarget(kubeconfig=str(kubeconfig(tmp_path / "config"))))
    assert info.server == SERVER
    assert info.as_http_headers() == {"Authorization": "Bearer t0ken"}
    assert info.default_namespace == "team"
    assert info.expiration is None


def test_a_context_without_namespace_means_default(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", namespace=None)
    assert login.login(ClusterTarget(kubeconfig=str(path))).default_namespace == "default"


def test_a_token_file_is_read_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    path = kubeconfig(tmp_path / "config", user={"tokenFile": "token"})
    info = login.login(ClusterTarget(kubeconfig=str(path)))
    assert info.as_http_headers() == {"Authorization": "Bearer from-a-file"}


def test_client_certificates_and_insecure(tmp_path: Path) -> None:
    (tmp_path / "me.crt").write_text("CERT")
    (tmp_path / "me.key").write_text("KEY")
    path = kubeconfig(
        tmp_path / "config",
        user={"client-certificate": "me.crt", "client-key": "me.key"},
        cluster={"insecure-skip-tls-verify": True},
    )
    info = login.login(ClusterTarget(kubeconfig=str(path)))
    assert info.certificate_path == str(tmp_path / "me.crt")
    assert info.private_key_path == str(tmp_path / "me.key")
    assert info.insecure is True
    assert info.as_http_headers() == {}


def test_basic_auth_keeps_its_scheme(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"username": "ann", "password": "pw"})
    header = login.login(ClusterTarget(kubeconfig=str(path))).as_http_headers()
    assert header["Authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("context", "current", "message"),
    [
        ("nope", "main", "context 'nope' is not in the kubeconfig .* \\(its contexts: main\\)"),
        (None, None, "sets no current-context: pass --context \\(its contexts: main\\)"),
    ],
)
def test_a_missing_context_is_named(
    tmp_path: Path, context: str | None, current: str | None, message: str
) -> None:
    path = kubeconfig(tmp_path / "config", current=current)
    with pytest.raises(kopf.LoginError, match=message):
        login.login(ClusterTarget(kubeconfig=str(path), context=context))


def test_unreadable_kubeconfigs_are_named(tmp_path: Path) -> None:
    with pytest.raises(kopf.LoginError, match=r"no kubeconfig file found at .*absent"):
        login.login(ClusterTarget(kubeconfig=str(tmp_path / "absent")))
    (tmp_path / "empty").write_text("")
    with pytest.raises(kopf.LoginError, match=r"cannot read the kubeconfig .*empty"):
        login.login(ClusterTarget(kubeconfig=str(tmp_path / "empty")))
    (tmp_path / "broken").write_text("clusters: [")
    with pytest.raises(kopf.LoginError, match=r"cannot read the kubeconfig .*broken"):
        login.login(ClusterTarget(kubeconfig=str(tmp_path / "broken")))


def test_a_context_naming_no_cluster_is_a_login_error(tmp_path: Path) -> None:
    path = tmp_path / "config"
    config = {
        "contexts": [{"name": "x", "context": {"cluster": "gone", "user": "me"}}],
        "current-context": "x",
        "clusters": [],
        "users": [],
    }
    path.write_text(json.dumps(config))
    with pytest.raises(kopf.LoginError, match="cannot log in with context 'x'"):
        login.login(ClusterTarget(kubeconfig=str(path)))


def test_several_files_merge_as_kubectl_merges_them(tmp_path: Path) -> None:
    # The first file names the context (and the current one); the second defines its
    # cluster and user, and a current-context of its own that kubectl ignores.
    first = tmp_path / "first"
    first.write_text(
        yaml.safe_dump(
            {
                "current-context": "main",
                "contexts": [{"name": "main", "context": {"cluster": "main", "user": "me"}}],
            }
        )
    )
    second = kubeconfig(
        tmp_path / "second", current="other", contexts={"main": SERVER, "other": "https://x"}
    )
    info = login.login(ClusterTarget(), environ={"KUBECONFIG": f"{first}:{second}"})
    assert info.server == SERVER
    assert info.default_namespace == "default"  # the first file's context has none
    info = login.login(ClusterTarget(context="other"), environ={"KUBECONFIG": f"{first}:{second}"})
    assert info.server == "https://x"


# -- exec plugins ------------------------------------------------------------------------------


def test_an_exec_plugin_token_and_its_expiration(tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "from-plugin", "expirationTimestamp": "2031-01-02T03:04:05Z"},
    }
    command = plugin(tmp_path / "plugin", body=json.dumps(credential))
    path = kubeconfig(tmp_path / "config", user=exec_user(command))
    info = login.login(ClusterTarget(kubeconfig=str(path)))
    assert info.as_http_headers() == {"Authorization": "Bearer from-plugin"}
    assert info.expiration == datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert not login.expired(info)
    assert login.expired(info, datetime.datetime(2031, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))


def test_a_failing_exec_plugin_is_a_login_error_with_its_stderr(tmp_path: Path) -> None:
    command = plugin(tmp_path / "plugin", body="", exit_code=3)
    path = kubeconfig(tmp_path / "config", user=exec_user(command))
    with pytest.raises(kopf.LoginError) as error:
        login.login(ClusterTarget(kubeconfig=str(path)))
    assert f"the exec plugin '{command}' of context 'main' gave no credential" in str(error.value)
    assert "process returned 3" in str(error.value)
    assert "no session" in str(error.value)


def test_an_exec_plugin_answering_nonsense_is_named(tmp_path: Path) -> None:
    command = plugin(tmp_path / "plugin", body="not json")
    path = kubeconfig(tmp_path / "config", user=exec_user(command))
    with pytest.raises(kopf.LoginError, match="failed to decode process output"):
        login.login(ClusterTarget(kubeconfig=str(path)))


def test_a_naive_expiration_is_utc() -> None:
    naive = kopf.ConnectionInfo(server=SERVER, expiration=datetime.datetime(2000, 1, 1))
    assert login.expired(naive)
    assert not login.expired(kopf.ConnectionInfo(server=SERVER))


# -- the pod's ServiceAccount ------------------------------------------------------------------


def test_the_pods_service_account(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "namespace").write_text("operators\n")
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    info = login.login(ClusterTarget(), environ=environ, service_account_dir=tmp_path)
    assert info.server == "https://10.0.0.1:443"
    assert info.as_http_headers() == {"Authorization": "Bearer sa-token"}
    assert info.ca_path == str(tmp_path / "ca.crt")
    assert info.default_namespace == "operators"
    environ["POD_NAMESPACE"] = "from-env"
    info = login.login(ClusterTarget(), environ=environ, service_account_dir=tmp_path)
    assert info.default_namespace == "from-env"


def test_the_pods_service_account_over_ipv6_without_the_official_client(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token\n")
    (tmp_path / "ca.crt").write_text("CA")
    environ = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    info = login.login(ClusterTarget(), environ=environ, service_account_dir=tmp_path)
    assert info.server == "https://[fd00::1]:6443"
    assert info.token == "sa-token"
    assert info.default_namespace == "default"
    # The pod's login reads two files; the official client is for kubeconfigs only.
    probe = subprocess.run(
        [sys.executable, "-c", PROBE_POD_LOGIN, str(tmp_path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert probe.stdout.split() == ["https://10.0.0.1:443", "False", "False"]


PROBE_POD_LOGIN = """
import sys
from pathlib import Path
from prodready.kube import login
import kopf
info = login.login(
    login.ClusterTarget(),
    environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    service_account_dir=Path(sys.argv[1]),
)
print(info.server, "kubernetes" in sys.modules, "kubernetes.client" in sys.modules)
"""


def test_no_operator_entry_point_loads_the_official_client() -> None:
    """kopf imports kubernetes.client when it can; whichever prodready package a process
    imports first, it comes without (logins from a kubeconfig import it when used)."""
    for module in (
        "prodready.app.process",
        "prodready.controller.operator",
        "prodready.audit.command",
        "prodready.dashboard.command",
        "prodready.kube.client",
    ):
        probe = subprocess.run(
            [sys.executable, "-c", f"import sys, {module}; print('kubernetes' in sys.modules)"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert probe.stdout.strip() == "False", module


def test_a_broken_service_account_is_named(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")  # no ca.crt
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(kopf.LoginError, match=r"cannot use the pod's ServiceAccount.*ca\.crt"):
        login.login(ClusterTarget(), environ=environ, service_account_dir=tmp_path)
    (tmp_path / "ca.crt").write_text("CA")
    (tmp_path / "token").write_text("\n")
    with pytest.raises(kopf.LoginError, match="the token file is empty"):
        login.login(ClusterTarget(), environ=environ, service_account_dir=tmp_path)


def test_an_explicit_kubeconfig_beats_the_pod(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("sa-token")
    (tmp_path / "ca.crt").write_text("CA")
    environ = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    path = kubeconfig(tmp_path / "config")
    info = login.login(
        ClusterTarget(kubeconfig=str(path)), environ=environ, service_account_dir=tmp_path
    )
    assert info.server == SERVER


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def restore_selection() -> Any:
    before = login.selected()
    yield
    login.select(before)


@pytest.mark.usefixtures("restore_selection")
def test_flags_select_the_cluster_for_every_later_login(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    login.add_cluster_arguments(parser)
    login.select_from_arguments(parser.parse_args(["--kubeconfig", "k", "--context", "c"]))
    assert login.selected() == ClusterTarget(kubeconfig="k", context="c")
    login.select_from_arguments(parser.parse_args([]))
    assert login.selected() == ClusterTarget()


@pytest.mark.usefixtures("restore_selection")
def test_run_takes_kubeconfig_and_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import prodready.app.process

    path = kubeconfig(tmp_path / "config")
    seen: list[ClusterTarget] = []
    monkeypatch.setattr(
        prodready.app.process, "run", lambda settings: seen.append(login.selected()) or 0
    )
    monkeypatch.setattr("prodready.observability.logging.configure_logging", lambda *a: None)
    from prodready.cli import main

    assert main(["run", "--kubeconfig", str(path), "--context", "main"]) == 0
    assert seen == [ClusterTarget(kubeconfig=str(path), context="main")]


def test_the_kubectl_plugin_names_itself_as_kubectl_does(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["kubectl-prodready", "--help"])
    with pytest.raises(SystemExit):
        kubectl_plugin()
    assert capsys.readouterr().out.startswith("usage: kubectl prodready ")
    assert build_parser(["report"]).prog == "prodready"


@pytest.mark.parametrize("command", ["report", "run", "dashboard"])
def test_every_command_that_logs_in_takes_kubeconfig_and_context(command: str) -> None:
    args = build_parser([command]).parse_args([command, "--kubeconfig", "k", "--context", "c"])
    assert (args.kubeconfig, args.context) == ("k", "c")


# -- KubeClient logs in again ----------------------------------------------------------------


@pytest.fixture
async def apiserver() -> Any:
    """Answers 200 to the token 'good', 401 to any other; records what it was sent."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        seen.append(header)
        if header != "Bearer good":
            return web.json_response({"kind": "Status", "reason": "Unauthorized"}, status=401)
        return web.json_response({"kind": "Namespace"})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/x", handle)
    async with TestServer(app) as running:
        running.seen = seen  # type: ignore[attr-defined]
        yield running


def _connection(server: Any, token: str, **extra: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=str(server.make_url("")), token=token, **extra)


async def test_a_401_logs_in_once_for_every_request_that_met_it(apiserver: Any) -> None:
    import asyncio

    from prodready.kube.client import KubeClient

    logins: list[str] = []

    def credentials() -> kopf.ConnectionInfo:
        logins.append("login")
        return _connection(apiserver, "good", insecure=None)

    client = KubeClient(_connection(apiserver, "stale", insecure=True), credentials=credentials)
    try:
        answers = await asyncio.gather(*(client.get("/api/v1/namespaces/x") for _ in range(5)))
        assert answers == [{"kind": "Namespace"}] * 5
        assert logins == ["login"]  # one login for the five requests refused
        assert apiserver.seen.count("Bearer stale") == 5
    finally:
        await client.close()


async def test_an_expired_credential_is_renewed_before_it_is_sent(apiserver: Any) -> None:
    from prodready.kube.client import KubeClient

    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)
    client = KubeClient(
        _connection(apiserver, "old", expiration=past),
        credentials=lambda: _connection(apiserver, "good"),
    )
    try:
        assert await client.get("/api/v1/namespaces/x") == {"kind": "Namespace"}
        assert apiserver.seen == ["Bearer good"]  # the expired token never left
        assert client.default_namespace is None
    finally:
        await client.close()


def test_validate_never_imports_the_kubernetes_package() -> None:
    import subprocess

    fixture = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"
    script = (
        "import sys; from prodready.cli import main; main(['validate', '-q', sys.argv[1]]);"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'kubernetes', 'kopf'}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(fixture)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stderr


PROBE_CHILD_LOGIN = """
import json, sys
from prodready.kube import login
login.isolate_kubeconfig_logins()
try:
    info = login.login(login.ClusterTarget(kubeconfig=sys.argv[1], context=sys.argv[2] or None))
except Exception as error:
    print(json.dumps({"error": type(error).__name__ + ": " + str(error)}))
else:
    print(json.dumps({
        "server": info.server, "token": info.token, "ca": (info.ca_data or b"").decode(),
        "cert": (info.certificate_data or b"").decode(),
        "key": (info.private_key_data or b"").decode(),
        "namespace": info.default_namespace, "expiration": str(info.expiration),
        "official_client_here": "kubernetes" in sys.modules,
    }))
"""


def _child_login(path: Path, context: str = "") -> dict[str, Any]:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE_CHILD_LOGIN, str(path), context],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return dict(json.loads(probe.stdout))


def test_the_operator_reads_a_kubeconfig_in_a_child_process(tmp_path: Path) -> None:
    """`prodready run` logs in from a kubeconfig through a child process: the same answer
    (certificates inlined, as the child's temporary files go with it), the same errors,
    and the official client never in the operator's own memory."""
    ca = base64.b64encode(b"-----CA-----").decode()
    cert = base64.b64encode(b"-----CERT-----").decode()
    key = base64.b64encode(b"-----KEY-----").decode()
    path = kubeconfig(
        tmp_path / "config",
        user={"client-certificate-data": cert, "client-key-data": key},
        cluster={"certificate-authority-data": ca},
    )
    answer = _child_login(path)
    assert answer == {
        "server": SERVER,
        "token": None,
        "ca": "-----CA-----",
        "cert": "-----CERT-----",
        "key": "-----KEY-----",
        "namespace": "team",
        "expiration": "None",
        "official_client_here": False,
    }
    assert _child_login(kubeconfig(tmp_path / "token"))["token"] == "t0ken"
    missing = _child_login(path, "elsewhere")
    assert missing == {
        "error": f"LoginError: context 'elsewhere' is not in the kubeconfig {path} "
        "(its contexts: main)"
    }

"""Logging in as kubectl does, through the official `kubernetes` package.

The package reads a kubeconfig as kubectl reads it (exec plugins, auth providers and OIDC,
client certificates, `token` and `tokenFile`, `insecure-skip-tls-verify`) and the pod's
ServiceAccount; what it found becomes a `kopf.ConnectionInfo` that both kopf's watches and
our own aiohttp `KubeClient` use. kopf's `login_via_client` does the same extraction, but
reads only the default kubeconfig's current context and drops the credential's lifetime,
so it is not used: here the kubeconfig and the context can be chosen, and an exec
credential's `expirationTimestamp` becomes the connection's `expiration`, after which kopf
and `KubeClient` log in again (the plugin runs again).

Which credentials, in kubectl's order (client-go's deferred loading):

1. a kubeconfig named on the command line (`--kubeconfig`, `PRODREADY_KUBECONFIG`), or
   `$KUBECONFIG` (several files, separated by `:`, merged as kubectl merges them: the first
   file to name a cluster, user or context wins, and the first current-context);
2. a `--context` without a kubeconfig: the default kubeconfig, ~/.kube/config;
3. inside a pod, its ServiceAccount (the token file is read again after a 401, when the
   kubelet has rotated it);
4. ~/.kube/config.

So an explicit kubeconfig or context beats the pod's ServiceAccount, as with kubectl.
`kubernetes` is imported inside the functions: `prodready validate` never loads it. The
operator (`prodready run`, a long-lived process) reads a kubeconfig in a child process
(`isolate_kubeconfig_logins`), so the official client's generated API never takes its
memory; the pod's ServiceAccount is read without it.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kopf

logger = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
DEFAULT_KUBECONFIG = "~/.kube/config"
DEFAULT_NAMESPACE = "default"  # kubectl's namespace when the context names none


@dataclass(frozen=True, kw_only=True)
class ClusterTarget:
    """Where to log in: a kubeconfig (one file, or several joined by `:`) and a context.

    Both unset: kubectl's defaults ($KUBECONFIG, the pod's ServiceAccount, ~/.kube/config).
    """

    kubeconfig: str | None = None
    context: str | None = None


_selected = ClusterTarget()
_selected_lock = threading.Lock()
_isolated = False
# An exec plugin may take its time (a cloud CLI); past this, the login fails.
CHILD_LOGIN_SECONDS = 120.0


def isolate_kubeconfig_logins(isolated: bool = True) -> None:
    """Read kubeconfigs in a child process from now on (the operator's choice: the official
    client's API would stay in its memory for the process's life, for a login)."""
    global _isolated  # noqa: PLW0603 - one process, one choice, made at the edge
    _isolated = isolated


def select(target: ClusterTarget) -> None:
    """Make `target` the cluster this process talks to (the command line's choice).

    Set once at the edge (`run`, `report`, `dashboard`) before any client logs in; every
    later login in the process, kopf's and `KubeClient`'s, reads it.
    """
    global _selected  # noqa: PLW0603 - one process, one cluster, chosen at the edge
    with _selected_lock:
        _selected = target


def selected() -> ClusterTarget:
    """The cluster chosen with `select` (kubectl's defaults until then)."""
    with _selected_lock:
        return _selected


@dataclass(frozen=True, kw_only=True)
class Source:
    """Where the credentials come from: a kubeconfig (paths as KUBECONFIG) or the pod."""

    kubeconfig: str | None  # None: the pod's ServiceAccount
    context: str | None = None


def choose_source(
    target: ClusterTarget, environ: Mapping[str, str], *, in_cluster: bool, home_config: bool
) -> Source | None:
    """kubectl's order of credentials; None when there are none at all.

    `in_cluster`: the pod's ServiceAccount is there; `home_config`: ~/.kube/config exists.
    """
    if target.kubeconfig:
        return Source(kubeconfig=target.kubeconfig, context=target.context)
    if environ.get("KUBECONFIG"):
        return Source(kubeconfig=environ["KUBECONFIG"], context=target.context)
    if target.context:
        return Source(kubeconfig=DEFAULT_KUBECONFIG, context=target.context)
    if in_cluster:
        return Source(kubeconfig=None)
    if home_config:
        return Source(kubeconfig=DEFAULT_KUBECONFIG)
    return None


def login(
    target: ClusterTarget | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    service_account_dir: Path | None = None,
) -> kopf.ConnectionInfo:
    """Log in to `target` (default: the selected one) as kubectl would.

    Blocking (an exec plugin is a subprocess): call it from a thread on an event loop.
    Raises `kopf.LoginError` with a message naming the file, context or plugin at fault.
    """
    target = target or selected()
    environ = os.environ if environ is None else environ
    account = service_account_dir or SERVICE_ACCOUNT_DIR
    in_cluster = bool(environ.get("KUBERNETES_SERVICE_HOST") and (account / "token").is_file())
    home_config = Path(DEFAULT_KUBECONFIG).expanduser().is_file()
    source = choose_source(target, environ, in_cluster=in_cluster, home_config=home_config)
    if source is None:
        raise kopf.LoginError(
            "no Kubernetes credentials: not in a pod, no --kubeconfig, no KUBECONFIG "
            "and no ~/.kube/config"
        )
    if source.kubeconfig is None:
        return _from_service_account(account, environ)
    if _isolated:
        return _from_kubeconfig_in_child(source.kubeconfig, source.context)
    return _from_kubeconfig(source.kubeconfig, source.context)


def _from_kubeconfig_in_child(paths: str, context: str | None) -> kopf.ConnectionInfo:
    """`_from_kubeconfig` in a child process (this module as a program), its answer passed
    back as JSON with the certificate and key files' contents inlined (the official client
    deletes the files it wrote for `*-data` entries when the child exits)."""
    try:
        child = subprocess.run(
            [sys.executable, "-m", "prodready.kube.login"],
            input=json.dumps({"paths": paths, "context": context}),
            capture_output=True,
            text=True,
            timeout=CHILD_LOGIN_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise kopf.LoginError(
            f"logging in with {paths} took longer than {CHILD_LOGIN_SECONDS:g} s"
        ) from None
    try:
        answer = json.loads(child.stdout)
    except ValueError:
        answer = {"error": (child.stderr.strip().splitlines() or ["no answer"])[-1]}
    if "error" in answer:
        raise kopf.LoginError(str(answer["error"]))
    expiration = answer.get("expiration")
    return kopf.ConnectionInfo(
        server=answer["server"],
        ca_data=_decoded(answer.get("ca_data")),
        insecure=answer.get("insecure"),
        username=answer.get("username"),
        password=answer.get("password"),
        scheme=answer.get("scheme"),
        token=answer.get("token"),
        certificate_data=_decoded(answer.get("certificate_data")),
        private_key_data=_decoded(answer.get("private_key_data")),
        default_namespace=answer.get("default_namespace"),
        expiration=datetime.datetime.fromisoformat(expiration) if expiration else None,
    )


def _decoded(text: str | None) -> bytes | None:
    return base64.b64decode(text) if text else None


def _child_main() -> int:
    """The child's side: read {"paths", "context"} on stdin, answer on stdout."""
    request = json.load(sys.stdin)
    try:
        info = _from_kubeconfig(request["paths"], request.get("context"))
    except kopf.LoginError as error:
        print(json.dumps({"error": str(error)}))
        return 1

    def inline(data: str | bytes | None, path: object) -> str | None:
        if isinstance(data, str):
            data = data.encode()
        if data is None and isinstance(path, str | os.PathLike):
            data = Path(path).read_bytes()
        return base64.b64encode(data).decode() if data else None

    print(
        json.dumps(
            {
                "server": info.server,
                "ca_data": inline(info.ca_data, info.ca_path),
                "insecure": info.insecure,
                "username": info.username,
                "password": info.password,
                "scheme": info.scheme,
                "token": info.token,
                "certificate_data": inline(info.certificate_data, info.certificate_path),
                "private_key_data": inline(info.private_key_data, info.private_key_path),
                "default_namespace": info.default_namespace,
                "expiration": info.expiration.isoformat() if info.expiration else None,
            }
        )
    )
    return 0


def _from_service_account(account: Path, environ: Mapping[str, str]) -> kopf.ConnectionInfo:
    """The pod's ServiceAccount: two variables and three files, read here rather than
    through the official client, whose loader would import its whole generated API (the
    operator's memory in benchmarks/RESULTS.md) to do the same."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "").strip()
    port = environ.get("KUBERNETES_SERVICE_PORT", "").strip()
    ca = account / "ca.crt"
    try:
        if not host or not port:
            raise ValueError("KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is not set")
        token = (account / "token").read_text().strip()
        if not token:
            raise ValueError("the token file is empty")
        if not ca.is_file():
            raise ValueError(f"{ca} does not exist")
    except (OSError, ValueError) as error:
        raise kopf.LoginError(f"cannot use the pod's ServiceAccount ({account}): {error}") from None
    namespace = environ.get("POD_NAMESPACE")
    if not namespace and (account / "namespace").is_file():
        namespace = (account / "namespace").read_text().strip()
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    return kopf.ConnectionInfo(
        server=server,
        ca_path=str(ca),
        scheme="Bearer",
        token=token,
        default_namespace=namespace or DEFAULT_NAMESPACE,
    )


def merged_kubeconfig(paths: str) -> Any:
    """The kubeconfig files of `paths` (KUBECONFIG syntax) merged as kubectl merges them.

    The `kubernetes` package's merger keeps the first cluster, user and context of each
    name, as kubectl does, but the last file's current-context; kubectl takes the first.
    """
    import yaml
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigMerger

    try:
        merger = KubeConfigMerger(paths)
    except (ConfigException, OSError, ValueError, AttributeError, yaml.YAMLError) as error:
        # Unreadable, not YAML, or YAML that is not a kubeconfig (a list, a string).
        raise kopf.LoginError(f"cannot read the kubeconfig {paths}: {error}") from None
    if merger.config is None:
        raise kopf.LoginError(f"no kubeconfig file found at {paths}")
    current = next(
        (
            merger.config_files[path].get("current-context")
            for path in merger.paths
            if isinstance(merger.config_files[path], dict)
            and merger.config_files[path].get("current-context")
        ),
        None,
    )
    if current:
        merger.config.value["current-context"] = current
    return merger


def _from_kubeconfig(paths: str, context: str | None) -> kopf.ConnectionInfo:
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.kube_config import KubeConfigLoader

    merger = merged_kubeconfig(paths)
    config = merger.config.value
    # The merger wraps each entry in a ConfigNode (its file, for relative paths).
    entries = [getattr(entry, "value", entry) for entry in config.get("contexts") or ()]
    names = [str(entry.get("name")) for entry in entries if isinstance(entry, Mapping)]
    chosen = context or config.get("current-context")
    if not chosen:
        raise kopf.LoginError(
            f"the kubeconfig {paths} sets no current-context: pass --context "
            f"(its contexts: {', '.join(names) or 'none'})"
        )
    if chosen not in names:
        raise kopf.LoginError(
            f"context {chosen!r} is not in the kubeconfig {paths} "
            f"(its contexts: {', '.join(names) or 'none'})"
        )
    configuration = Configuration()
    with _plugin_errors() as errors:
        try:
            loader = KubeConfigLoader(
                config_dict=merger.config,
                active_context=chosen,
                config_base_path=None,
                # kubectl writes a refreshed OIDC token back to the kubeconfig; so does this.
                config_persister=merger.save_changes,
            )
            loader.load_and_set(configuration)
        except (ConfigException, OSError, ValueError) as error:
            raise kopf.LoginError(
                f"cannot log in with context {chosen!r} of {paths}: {error}"
            ) from None
    user = loader._user
    if (
        user is not None
        and "exec" in user
        and "token" not in vars(loader)
        and not vars(loader).get("cert_file")
    ):
        command = user["exec"].safe_get("command")
        raise kopf.LoginError(
            f"the exec plugin {command!r} of context {chosen!r} gave no credential: "
            + ("; ".join(errors) or "no token and no client certificate")
        )
    namespace = loader.current_context["context"].get("namespace") or DEFAULT_NAMESPACE
    expiry = vars(loader).get("expiry")
    return _connection(configuration, namespace=str(namespace), expiry=expiry)


@contextmanager
def _plugin_errors() -> Iterator[list[str]]:
    """What the `kubernetes` package logs (to the root logger) while it runs a plugin.

    It logs an exec plugin's failure and carries on without a credential; this catches
    those lines (from this thread only) for the LoginError, instead of a bare 401 later.
    """
    errors: list[str] = []
    thread = threading.get_ident()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == thread and record.levelno >= logging.ERROR:
                errors.append(record.getMessage())

    handler = Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield errors
    finally:
        root.removeHandler(handler)


def _connection(
    configuration: Any, *, namespace: str, expiry: datetime.datetime | None
) -> kopf.ConnectionInfo:
    # The header is read as stored: `get_api_key_with_prefix` would run the package's
    # refresh hook, which re-runs an exec plugin whose token expires within 5 minutes.
    header = str(
        configuration.api_key.get("BearerToken") or configuration.api_key.get("authorization") or ""
    )
    # Stripped as client-go strips it: a token file usually ends with a newline.
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if not token:  # a bare token, no scheme
        scheme, token = "Bearer", scheme
    if expiry is not None and expiry.tzinfo is None:
        expiry = expiry.replace(tzinfo=datetime.UTC)
    return kopf.ConnectionInfo(
        server=str(configuration.host),
        ca_path=configuration.ssl_ca_cert or None,
        insecure=not configuration.verify_ssl,
        scheme=(scheme.capitalize() if token else None),
        token=token or None,
        certificate_path=configuration.cert_file or None,
        private_key_path=configuration.key_file or None,
        default_namespace=namespace,
        expiration=expiry,
    )


def expired(connection: kopf.ConnectionInfo, now: datetime.datetime | None = None) -> bool:
    """Whether the connection's credential has reached its expiration (never, without one)."""
    if connection.expiration is None:
        return False
    expiration = connection.expiration
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=datetime.UTC)
    return (now or datetime.datetime.now(datetime.UTC)) >= expiration


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare kubectl's `--kubeconfig` and `--context`, for every command that logs in."""
    parser.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file; beats the pod's ServiceAccount "
        "(default: $KUBECONFIG, in a pod its ServiceAccount, ~/.kube/config)",
    )
    parser.add_argument(
        "--context",
        metavar="NAME",
        help="kubeconfig context to use (default: the kubeconfig's current-context)",
    )


def select_from_arguments(args: argparse.Namespace) -> None:
    """`select` what `add_cluster_arguments` parsed."""
    select(ClusterTarget(kubeconfig=args.kubeconfig or None, context=args.context or None))


if __name__ == "__main__":
    sys.exit(_child_main())

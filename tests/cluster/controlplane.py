"""A real Kubernetes control plane on loopback, from binaries built by build.sh.

etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok (one fake Node, so
Deployment pods become Running and Ready) run as unprivileged child processes on free
ports, with their own certificates and data in one directory. The same class serves the
pytest session fixture (tests/conftest.py) and `make cluster` (tests/cluster/__main__.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

REPO = Path(__file__).resolve().parents[2]
VERSIONS_FILE = Path(__file__).with_name("versions.env")
NODE_NAME = "kwok-node-0"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")

# Only writes are audited: tests and benchmarks count them to prove the operator is idle
# once converged. Reads would make the log large and tell us nothing.
AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: Metadata
    verbs: ["create", "update", "patch", "delete", "deletecollection"]
  - level: None
"""

# The apiserver presents a client certificate to every admission webhook it calls
# (Kubernetes "Authenticate apiservers"): `*` matches any webhook host. A webhook that
# trusts `Certificates.webhook_client_ca` can thus tell the apiserver from anyone else.
ADMISSION_CONFIGURATION = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: ValidatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: {kubeconfig}
  - name: MutatingAdmissionWebhook
    configuration:
      apiVersion: apiserver.config.k8s.io/v1
      kind: WebhookAdmissionConfiguration
      kubeConfigFile: {kubeconfig}
"""

NODE_MANIFEST = {
    "apiVersion": "v1",
    "kind": "Node",
    "metadata": {
        "name": NODE_NAME,
        "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
        "labels": {
            "kubernetes.io/hostname": NODE_NAME,
            "kubernetes.io/os": "linux",
            "kubernetes.io/arch": "amd64",
            "type": "kwok",
        },
    },
    "status": {
        "allocatable": {"cpu": "256", "memory": "1Ti", "pods": "10000"},
        "capacity": {"cpu": "256", "memory": "1Ti", "pods": "10000"},
        "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux"},
    },
}


def read_versions() -> dict[str, str]:
    """The component versions named in versions.env."""
    versions: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            versions[key] = value
    return versions


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    # If the test process is killed outright, its control plane goes with it (Linux only).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or reached."""


@dataclass
class Certificates:
    """A CA and the serving/client certificates signed by it, written as PEM files."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    def pair(self, name: str) -> tuple[Path, Path]:
        return self.directory / f"{name}.crt", self.directory / f"{name}.key"

    @property
    def webhook_client_ca(self) -> Path:
        """The CA of the certificate the apiserver presents to admission webhooks."""
        return self.directory / "webhook-client-ca.crt"

    @property
    def webhook_client(self) -> tuple[Path, Path]:
        """The certificate and key the apiserver presents to admission webhooks."""
        return self.pair("webhook-client")

    @property
    def service_account_key(self) -> Path:
        return self.directory / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.directory / "sa.pub"

    def generate(self) -> None:
        """Write the CA, apiserver serving cert, admin client cert and SA signing keys."""
        self.directory.mkdir(parents=True, exist_ok=True)
        ca_key = _new_key()
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "prodready-local-ca")])
        now = datetime.datetime.now(datetime.UTC)
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_pem(self.ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_key(self.directory / "ca.key", ca_key)
        self._issue(
            "apiserver",
            ca_key,
            ca_cert,
            common_name="kube-apiserver",
            organization=None,
            hosts=["localhost", "kubernetes", "kubernetes.default", "127.0.0.1", "10.0.0.1"],
        )
        self._issue(
            "admin", ca_key, ca_cert, common_name="admin", organization="system:masters", hosts=[]
        )
        self._webhook_client()
        sa_key = _new_key()
        _write_key(self.service_account_key, sa_key)
        _write_pem(
            self.service_account_public_key,
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        )

    def _webhook_client(self) -> None:
        """A CA of its own (so that trusting it trusts nothing else) and one client pair.

        P-256 keys: generated in a millisecond, where RSA would slow every start.
        """
        now = datetime.datetime.now(datetime.UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name(
            [x509.NameAttribute(NameOID.COMMON_NAME, "prodready-local-webhook-client-ca")]
        )
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(ca_name)
            .issuer_name(ca_name)
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(ca_key, hashes.SHA256())
        )
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(
                x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-webhook")])
            )
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        _write_pem(self.webhook_client_ca, ca_cert.public_bytes(serialization.Encoding.PEM))
        cert_path, key_path = self.webhook_client
        _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)

    def _issue(
        self,
        name: str,
        ca_key: rsa.RSAPrivateKey,
        ca_cert: x509.Certificate,
        *,
        common_name: str,
        organization: str | None,
        hosts: list[str],
    ) -> None:
        key = _new_key()
        attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        if organization:
            attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name(attributes))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        if hosts:
            alt_names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    alt_names.append(x509.DNSName(host))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            usage = x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        else:
            usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        cert_path, key_path = self.pair(name)
        _write_pem(cert_path, cert.public_bytes(serialization.Encoding.PEM))
        _write_key(key_path, key)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


@dataclass
class ControlPlane:
    """etcd + kube-apiserver + controller-manager + scheduler + kwok, on loopback ports."""

    bin_dir: Path
    directory: Path
    detached: bool = False  # True for `make cluster`: the processes outlive this Python process
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Components run with the directory as cwd; every path handed to them is absolute.
        self.directory = self.directory.resolve()
        self.bin_dir = self.bin_dir.resolve()

    @property
    def kubeconfig(self) -> Path:
        return self.directory / "kubeconfig"

    @property
    def certs(self) -> Certificates:
        return Certificates(self.directory / "pki")

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def audit_log(self) -> Path:
        return self.logs / "audit.log"

    @property
    def state_file(self) -> Path:
        return self.directory / "state.json"

    @property
    def api_url(self) -> str:
        return f"https://127.0.0.1:{self.ports['apiserver']}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 120.0, attempts: int = 3) -> None:
        """Start every component and wait until the fake node is Ready.

        Free ports are picked before the components bind them; another process on the
        machine can take one in between. Such a start is retried on fresh ports.
        """
        for attempt in range(1, attempts + 1):
            try:
                self._start_once(timeout)
                return
            except ControlPlaneError as error:
                if "address already in use" not in str(error) or attempt == attempts:
                    raise

    def _start_once(self, timeout: float) -> None:
        missing = [b for b in (*BINARIES, "kubectl") if not (self.bin_dir / b).exists()]
        if missing:
            raise ControlPlaneError(
                f"missing binaries in {self.bin_dir}: {', '.join(missing)} "
                "(run `make binaries` or tests/cluster/build.sh)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        self.certs.generate()
        for name in ("etcd", "etcd-peer", "apiserver", "controller-manager", "scheduler"):
            self.ports[name] = free_port()
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd()
            self._wait(self._etcd_healthy, deadline, "etcd to be healthy")
            self._start_apiserver()
            self._wait(lambda: self._get("/readyz") == 200, deadline, "kube-apiserver /readyz")
            self._write_kubeconfig(self.kubeconfig, self.certs.pair("admin"), token=None)
            self._start("controller-manager", self._controller_manager_args())
            self._start("scheduler", self._scheduler_args())
            self._start("kwok", self._kwok_args())
            self._save_state()
            self.kubectl("apply", "-f", "-", input=json.dumps(NODE_MANIFEST))
            self._wait(self._node_ready, deadline, "the kwok node to be Ready")
            # Pods cannot be created until the controller-manager has made the default SA.
            self._wait(
                lambda: (
                    self.kubectl("get", "serviceaccount", "default", check=False).returncode == 0
                ),
                deadline,
                "the default ServiceAccount",
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL) and wait for each to exit."""
        for name in reversed(list(self.processes)):
            _terminate(self.processes[name])
        self.processes.clear()
        with contextlib.suppress(FileNotFoundError):
            self.state_file.unlink()

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- helpers for tests and scripts -----------------------------------------------------

    def env(self) -> dict[str, str]:
        """An environment whose PATH finds the built binaries and whose KUBECONFIG is admin."""
        env = dict(os.environ)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}"
        return env

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        kubeconfig: Path | None = None,
        timeout: float = 120.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this control plane (admin unless `kubeconfig`)."""
        config = kubeconfig or self.kubeconfig
        result = subprocess.run(
            [str(self.bin_dir / "kubectl"), f"--kubeconfig={config}", *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise ControlPlaneError(
                f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}"
            )
        return result

    def wait_established(self, crd: str, timeout: float = 60.0) -> None:
        """Wait until a CRD is Established.

        Polls instead of `kubectl wait`, which fails at once (not waits) when it reads the
        CRD before the apiserver has written any condition.
        """
        deadline = time.monotonic() + timeout
        jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
        while time.monotonic() < deadline:
            result = self.kubectl("get", "crd", crd, "-o", jsonpath, check=False)
            if result.stdout.strip() == "True":
                return
            time.sleep(0.2)
        raise ControlPlaneError(f"CRD {crd} not Established after {timeout:.0f}s")

    def kubectl_json(self, *args: str) -> dict[str, object]:
        """`kubectl get ... -o json`, parsed."""
        return dict(json.loads(self.kubectl(*args, "-o", "json").stdout))

    def mint_kubeconfig(self, service_account: str, namespace: str, *, hours: int = 2) -> Path:
        """A kubeconfig that authenticates as a ServiceAccount, via a TokenRequest."""
        token = self.kubectl(
            "create", "token", service_account, "-n", namespace, f"--duration={hours}h"
        ).stdout.strip()
        path = self.directory / f"kubeconfig-{namespace}-{service_account}"
        self._write_kubeconfig(path, None, token=token, namespace=namespace)
        return path

    def audit_events(self) -> list[dict[str, object]]:
        """The write requests the apiserver has audited so far."""
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events

    # -- internals -------------------------------------------------------------------------

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        binary = {
            "apiserver": "kube-apiserver",
            "controller-manager": "kube-controller-manager",
            "scheduler": "kube-scheduler",
        }
        executable = self.bin_dir / binary.get(name, name)
        self.processes[name] = subprocess.Popen(
            [str(executable), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.directory,
            start_new_session=True,
            preexec_fn=None if self.detached else _die_with_parent,  # noqa: PLW1509
        )
        log.close()

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.ports['etcd']}"
        peer = f"http://127.0.0.1:{self.ports['etcd-peer']}"
        self._start(
            "etcd",
            [
                "--name=default",
                f"--data-dir={self.directory / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=default={peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports['etcd']}/health", timeout=2
            ) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def _start_apiserver(self) -> None:
        certs = self.certs
        serving_cert, serving_key = certs.pair("apiserver")
        (self.directory / "audit-policy.yaml").write_text(AUDIT_POLICY)
        client_cert, client_key = certs.webhook_client
        webhook_kubeconfig = self.directory / "webhook-client.kubeconfig"
        webhook_kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "users": [
                        {
                            "name": "*",
                            "user": {
                                "client-certificate": str(client_cert),
                                "client-key": str(client_key),
                            },
                        }
                    ],
                },
                indent=2,
            )
        )
        admission = self.directory / "admission-configuration.yaml"
        admission.write_text(ADMISSION_CONFIGURATION.format(kubeconfig=webhook_kubeconfig))
        self._start(
            "apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{self.ports['etcd']}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                # The "kubernetes" Service endpoint cannot point at loopback; nothing in-cluster
                # needs it here (pods are fake), so the apiserver keeps no endpoints for it.
                "--endpoint-reconciler-type=none",
                f"--secure-port={self.ports['apiserver']}",
                f"--tls-cert-file={serving_cert}",
                f"--tls-private-key-file={serving_key}",
                f"--client-ca-file={certs.ca}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={certs.service_account_public_key}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                f"--audit-policy-file={self.directory / 'audit-policy.yaml'}",
                f"--admission-control-config-file={admission}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",
                "--v=0",
            ],
        )

    def _controller_manager_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['controller-manager']}",
            f"--service-account-private-key-file={self.certs.service_account_key}",
            f"--root-ca-file={self.certs.ca}",
            "--use-service-account-credentials=false",
            "--controllers=*",
        ]

    def _scheduler_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--leader-elect=false",
            "--bind-address=127.0.0.1",
            f"--secure-port={self.ports['scheduler']}",
        ]

    def _kwok_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--config={self.bin_dir / 'stages.yaml'}",
            "--node-lease-duration-seconds=40",
        ]

    def _write_kubeconfig(
        self,
        path: Path,
        client_pair: tuple[Path, Path] | None,
        *,
        token: str | None,
        namespace: str = "default",
    ) -> None:
        user: dict[str, str] = {}
        if client_pair:
            user["client-certificate"] = str(client_pair[0])
            user["client-key"] = str(client_pair[1])
        if token:
            user["token"] = token
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": self.api_url,
                        "certificate-authority": str(self.certs.ca),
                    },
                }
            ],
            "users": [{"name": "user", "user": user}],
            "contexts": [
                {
                    "name": "local",
                    "context": {"cluster": "local", "user": "user", "namespace": namespace},
                }
            ],
            "current-context": "local",
        }
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)

    def _ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.certs.ca))
        cert, key = self.certs.pair("admin")
        context.load_cert_chain(str(cert), str(key))
        return context

    def _get(self, path: str) -> int:
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback URL built here
                self.api_url + path, timeout=5, context=self._ssl_context()
            ) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return 0

    def _wait(self, ready: Callable[[], bool], deadline: float, what: str) -> None:
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    tail = _tail(self.logs / f"{name}.log")
                    raise ControlPlaneError(f"{name} exited ({process.returncode}):\n{tail}")
            if ready():
                return
            time.sleep(0.2)
        raise ControlPlaneError(f"timed out waiting for {what}")

    def _node_ready(self) -> bool:
        result = self.kubectl(
            "get",
            "node",
            NODE_NAME,
            "-o",
            "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False,
        )
        return result.stdout == "True"

    def _save_state(self) -> None:
        state = {
            "pids": {name: process.pid for name, process in self.processes.items()},
            "ports": self.ports,
        }
        self.state_file.write_text(json.dumps(state, indent=2))


def _terminate(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=grace)


def kill_recorded(state_file: Path, grace: float = 10.0) -> list[str]:
    """Stop the process groups recorded in a state file (for `make cluster-down`)."""
    if not state_file.exists():
        return []
    state = json.loads(state_file.read_text())
    stopped = []
    for name, pid in reversed(list(state.get("pids", {}).items())):
        if _signal_group(int(pid), signal.SIGTERM):
            stopped.append(name)
    deadline = time.monotonic() + grace
    for pid in state.get("pids", {}).values():
        while _alive(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(int(pid), signal.SIGKILL)
    state_file.unlink()
    return stopped


def _signal_group(pid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); a stopped group's leader that we did not spawn is
    # reaped by init, so look at /proc for its state.
    with contextlib.suppress(OSError):
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def default_bin_dir() -> Path:
    """Where `make binaries` links the built binaries (overridable by PRODREADY_BIN_DIR)."""
    return Path(os.environ.get("PRODREADY_BIN_DIR", REPO / ".local" / "bin"))


@contextlib.contextmanager
def running(directory: Path, bin_dir: Path | None = None) -> Iterator[ControlPlane]:
    """Start a control plane for the duration of a `with` block."""
    plane = ControlPlane(bin_dir=bin_dir or default_bin_dir(), directory=directory)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use `python -m tests.cluster up|down`")

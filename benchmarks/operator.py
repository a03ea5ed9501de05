"""The operator on a fresh local control plane: convergence against a floor, idle writes,
memory, and the admission webhook's latency.

* floor — the same children `prodready render` makes, applied directly with `kubectl
  apply --server-side` to a fresh control plane: the time until every Deployment has
  rolled out is what the cluster itself needs, whoever applies.
* convergence — N ProductionServices applied at once (one `kubectl apply
  --server-side`) to another fresh control plane with the operator running: the time
  until every one is Ready. Reconcile latency is the time from a ProductionService's
  ADDED watch event to its Deployment's ADDED event (the same watcher sees both).
* steady state — write requests by the operator (audit events whose userAgent starts with
  `prodready`) over five resync periods after convergence.
* memory — the operator's VmRSS at 0, 100 and 100 + N ProductionServices, and after N
  unrelated Deployments appear.
* writes per new service — the operator's writes while converging (the audit log), per
  service, beside the children it created for each.
* webhook — dry-run creates through the real apiserver at a fixed rate (50/s), without
  and with the webhook registered: the latency the webhook adds, once while the operator
  resyncs every 10 s and once with the default interval, between two resyncs; with the
  default interval also at 200/s, issue 21's rate.

The same operator at 10,000 services is the scale phase (benchmarks/scale.py), built on
the helpers here.

Each control plane runs in its own temporary directory and is stopped afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.cluster.controlplane import ControlPlane, default_bin_dir

from benchmarks.measure import percentile

NAMESPACE = "bench"
RESYNC_SECONDS = 10
DEFAULT_RESYNC_SECONDS = 300  # the operator's default (config.py)
STEADY_PERIODS = 5
WEBHOOK_RATE = 50
# Issue 21's goal: the webhook's added latency at 200 reviews/s, with the default resync.
WEBHOOK_FAST_RATE = 200
WEBHOOK_SECONDS = 20

Log = Callable[[str], None]


# -- helpers ----------------------------------------------------------------------------


def production_service(name: str, namespace: str) -> dict[str, Any]:
    """The benchmark's service: dev, one replica (so the pod count equals N)."""
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": f"registry.example.com/bench/{name}:1.0.0",
            "environment": "dev",
            "replicas": 1,
        },
    }


def _context(plane: ControlPlane) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(plane.certs.ca))
    cert, key = plane.certs.pair("admin")
    context.load_cert_chain(str(cert), str(key))
    return context


def rolled_out(deployment: dict[str, Any]) -> bool:
    """`kubectl rollout status`'s verdict."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 1)
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )


def is_ready(service: dict[str, Any]) -> bool:
    for entry in (service.get("status") or {}).get("conditions") or []:
        if entry.get("type") == "Ready":
            return bool(entry.get("status") == "True")
    return False


class Watch(threading.Thread):
    """A watch on one collection: the first time each object is seen, and the first time
    `predicate` holds for it (monotonic seconds)."""

    def __init__(
        self, plane: ControlPlane, path: str, predicate: Callable[[dict[str, Any]], bool]
    ) -> None:
        super().__init__(daemon=True, name=f"watch {path}")
        self.plane, self.path, self.predicate = plane, path, predicate
        self.added: dict[str, float] = {}
        self.reached: dict[str, float] = {}
        self.started_watching = threading.Event()
        self.error: str | None = None

    def run(self) -> None:
        url = f"{self.plane.api_url}{self.path}?watch=1&timeoutSeconds=3600"
        try:
            with urllib.request.urlopen(  # noqa: S310 - the local apiserver
                url, context=_context(self.plane), timeout=3600
            ) as response:
                self.started_watching.set()
                for raw in response:
                    now = time.monotonic()
                    event = json.loads(raw)
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name")
                    if not name or event.get("type") not in ("ADDED", "MODIFIED"):
                        continue
                    self.added.setdefault(name, now)
                    if name not in self.reached and self.predicate(obj):
                        self.reached[name] = now
        except Exception as error:  # the plane stopping ends the watch
            self.error = f"{type(error).__name__}: {error}"
            self.started_watching.set()


def watch(plane: ControlPlane, path: str, predicate: Callable[[dict[str, Any]], bool]) -> Watch:
    watcher = Watch(plane, path, predicate)
    watcher.start()
    watcher.started_watching.wait(30)
    return watcher


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (from /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BenchControlPlane(ControlPlane):
    """The test harness's control plane, sized for thousands of objects: its /24 service
    range holds 254 ClusterIPs (the 255th Service is refused, "range is full"), and the
    controller-manager's default client rate (20 requests/s) alone makes rolling out
    1,000 Deployments take four minutes, whoever applies them."""

    def _start(self, name: str, args: list[str]) -> None:
        if name == "apiserver":
            args = [
                "--service-cluster-ip-range=10.0.0.0/16"
                if arg.startswith("--service-cluster-ip-range=")
                else arg
                for arg in args
            ]
        elif name in ("controller-manager", "scheduler"):
            args = [*args, "--kube-api-qps=500", "--kube-api-burst=1000"]
        super()._start(name, args)


@contextlib.contextmanager
def control_plane(
    log: Log, name: str, kind: type[BenchControlPlane] = BenchControlPlane
) -> Iterator[ControlPlane]:
    with tempfile.TemporaryDirectory(prefix=f"prodready-bench-{name}-") as directory:
        plane = kind(bin_dir=default_bin_dir(), directory=Path(directory))
        started = time.monotonic()
        plane.start()
        log(f"  control plane ({name}) up in {time.monotonic() - started:.1f} s")
        try:
            yield plane
        finally:
            plane.stop()


def install_crds(plane: ControlPlane) -> None:
    from tests.e2e.support import CRD_FILE, MONITORING_CRDS, install_crds as install

    install(plane, CRD_FILE, *MONITORING_CRDS)
    wait_until(
        lambda: plane.kubectl("get", "productionservices", "-A", check=False).returncode == 0,
        60,
        "productionservices in discovery",
    )


def apply_file(plane: ControlPlane, path: Path, timeout: float = 900) -> float:
    """`kubectl apply --server-side -f path`; the seconds it took."""
    started = time.monotonic()
    plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(path), timeout=timeout)
    return time.monotonic() - started


def write_services(path: Path, names: list[str], namespace: str) -> None:
    items = [production_service(name, namespace) for name in names]
    path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


# -- results ----------------------------------------------------------------------------


@dataclass
class OperatorResults:
    """Every figure of the operator benchmark (seconds, MiB)."""

    services: int
    floor_seconds: float = float("nan")
    floor_apply_seconds: float = float("nan")
    converge_seconds: float = float("nan")
    converge_apply_seconds: float = float("nan")
    converge_cpu_seconds: float = float("nan")
    services_apply_alone_seconds: float = float("nan")
    latency_p50: float = float("nan")
    latency_p99: float = float("nan")
    latency_max: float = float("nan")
    steady_writes: int = -1
    steady_window_seconds: float = 0.0
    steady_detail: dict[str, int] = field(default_factory=dict)
    steady_cpu_percent: float = float("nan")
    converge_writes: dict[str, int] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    rss_peak: float = float("nan")
    webhook: dict[str, dict[str, float]] = field(default_factory=dict)
    webhook_fast: dict[str, dict[str, float]] = field(default_factory=dict)  # at 200/s
    webhook_note: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.converge_seconds / self.floor_seconds

    @property
    def children_per_service(self) -> float:
        """Objects the operator created per new service (its children), from the audit."""
        created = sum(
            count
            for key, count in self.converge_writes.items()
            if key.startswith("create ") and key.split()[1] not in ("events", "productionservices")
        )
        return created / self.services if self.converge_writes else float("nan")

    @property
    def writes_per_service(self) -> float:
        """Every write the operator made while converging, per new service."""
        total = sum(self.converge_writes.values())
        return total / self.services if self.converge_writes else float("nan")


# -- the floor ----------------------------------------------------------------------------


def measure_floor(results: OperatorResults, names: list[str], work: Path, log: Log) -> None:
    log(f"floor: {len(names)} services' rendered children applied with kubectl")
    services = work / "floor-services.yaml"  # `prodready render` reads a YAML stream
    services.write_text(
        "".join("---\n" + json.dumps(production_service(n, NAMESPACE)) + "\n" for n in names)
    )
    children = work / "floor-children.yaml"
    with children.open("w") as out:
        subprocess.run(
            [str(Path(sys.executable).with_name("prodready")), "render", "-f", str(services)],
            stdout=out,
            check=True,
        )
    with control_plane(log, "floor") as plane:
        install_crds(plane)
        plane.kubectl("create", "namespace", NAMESPACE)
        deployments = watch(plane, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", rolled_out)
        started = time.monotonic()
        results.floor_apply_seconds = apply_file(plane, children)
        wait_until(
            lambda: len(deployments.reached) >= len(names), 900, "every Deployment to roll out"
        )
        results.floor_seconds = max(deployments.reached.values()) - started
        # What the apiserver needs to admit the ProductionServices themselves, with nothing
        # else going on: the part of the convergence no operator can shorten.
        services_file = work / "floor-services.json"
        write_services(services_file, names, "alone")
        plane.kubectl("create", "namespace", "alone")
        results.services_apply_alone_seconds = apply_file(plane, services_file)
    log(
        f"  all {len(names)} Deployments rolled out in {results.floor_seconds:.1f} s "
        f"(kubectl apply itself: {results.floor_apply_seconds:.1f} s)"
    )


# -- the operator -------------------------------------------------------------------------


def _operator_writes(
    plane: ControlPlane, since: float, until: float, offset: int = 0
) -> list[dict[str, Any]]:
    """The operator's write requests the apiserver audited between `since` and `until`
    (wall clock), reading the audit log from byte `offset`: at 10,000 services the log
    holds hundreds of thousands of other writers' events, so lines are parsed only when
    they name prodready."""
    writes: list[dict[str, Any]] = []
    if not plane.audit_log.exists():
        return writes
    with plane.audit_log.open("rb") as audit:
        audit.seek(offset)
        lines = [line for line in audit if b"prodready" in line]
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:  # the line the apiserver is writing right now
            continue
        agent = str(event.get("userAgent", ""))
        if event.get("stage") != "ResponseComplete" or not agent.startswith("prodready"):
            continue
        stamp = str(event.get("requestReceivedTimestamp", ""))
        with contextlib.suppress(ValueError):
            moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
            if since <= moment <= until:
                writes.append(event)
    return writes


def measure_operator(results: OperatorResults, names: list[str], work: Path, log: Log) -> None:
    from tests.e2e.support import start_operator

    log(f"operator: {len(names)} ProductionServices applied at once")
    with control_plane(log, "operator") as plane:
        install_crds(plane)
        for namespace in (NAMESPACE, "hundred", "unrelated", "webhook"):
            plane.kubectl("create", "namespace", namespace)
        operator = start_operator(
            plane,
            work / "operator.log",
            env={
                "PRODREADY_LOG_LEVEL": "INFO",
                "PRODREADY_RESYNC_INTERVAL_SECONDS": str(RESYNC_SECONDS),
            },
        )
        pid = operator.process.pid
        try:
            time.sleep(3)
            results.rss["0 services"] = rss_mib(pid)[0]

            hundred = work / "hundred.json"
            write_services(hundred, [f"h-{n:03d}" for n in range(100)], "hundred")
            ready100 = watch(
                plane, "/apis/prodready.io/v1alpha1/namespaces/hundred/productionservices", is_ready
            )
            apply_file(plane, hundred)
            wait_until(lambda: len(ready100.reached) >= 100, 300, "100 services Ready")
            time.sleep(2)
            results.rss["100 services"] = rss_mib(pid)[0]

            services = work / "services.json"
            write_services(services, names, NAMESPACE)
            ready = watch(
                plane,
                f"/apis/prodready.io/v1alpha1/namespaces/{NAMESPACE}/productionservices",
                is_ready,
            )
            created = watch(
                plane, f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", lambda _: True
            )
            started, cpu_before = time.monotonic(), cpu_seconds(pid)
            results.converge_apply_seconds = apply_file(plane, services)
            wait_until(lambda: len(ready.reached) >= len(names), 900, "every service Ready")
            results.converge_seconds = max(ready.reached.values()) - started
            results.converge_cpu_seconds = cpu_seconds(pid) - cpu_before
            wall_end = time.time()
            wall_start = wall_end - (time.monotonic() - started)
            for event in _operator_writes(plane, wall_start, wall_end):
                ref = event.get("objectRef") or {}
                key = f"{event.get('verb')} {ref.get('resource')}"
                key += f"/{ref['subresource']}" if ref.get("subresource") else ""
                results.converge_writes[key] = results.converge_writes.get(key, 0) + 1
            log(f"  operator writes while converging: {results.converge_writes}")
            latencies = [
                created.added[name] - ready.added[name]
                for name in names
                if name in created.added and name in ready.added
            ]
            results.latency_p50 = percentile(latencies, 0.50)
            results.latency_p99 = percentile(latencies, 0.99)
            results.latency_max = max(latencies)
            log(
                f"  all Ready in {results.converge_seconds:.1f} s (kubectl apply itself: "
                f"{results.converge_apply_seconds:.1f} s); CR -> Deployment p50 "
                f"{results.latency_p50 * 1000:.0f} ms, p99 {results.latency_p99 * 1000:.0f} ms"
            )
            results.rss[f"{len(names) + 100} services"] = rss_mib(pid)[0]

            # Idle: five resync periods after the last status write has landed.
            time.sleep(5)
            since, cpu_before = time.time(), cpu_seconds(pid)
            time.sleep(RESYNC_SECONDS * STEADY_PERIODS)
            until, cpu_after = time.time(), cpu_seconds(pid)
            results.steady_cpu_percent = 100 * (cpu_after - cpu_before) / (until - since)
            writes = _operator_writes(plane, since, until)
            results.steady_writes = len(writes)
            results.steady_window_seconds = until - since
            for event in writes:
                ref = event.get("objectRef") or {}
                key = f"{event.get('verb')} {ref.get('resource')}/{ref.get('subresource', '')}"
                results.steady_detail[key] = results.steady_detail.get(key, 0) + 1
            log(
                f"  steady state: {results.steady_writes} writes in "
                f"{results.steady_window_seconds:.0f} s ({STEADY_PERIODS} resyncs of "
                f"{RESYNC_SECONDS} s) {results.steady_detail or ''}; operator CPU "
                f"{results.steady_cpu_percent:.0f}% of one core"
            )

            unrelated = work / "unrelated.json"
            unrelated.write_text(json.dumps(_unrelated_deployments(len(names))))
            apply_file(plane, unrelated)
            time.sleep(RESYNC_SECONDS + 2)
            results.rss[f"+ {len(names)} unrelated Deployments"] = rss_mib(pid)[0]
            results.rss_peak = rss_mib(pid)[1]
            log(
                "  memory (VmRSS): "
                + ", ".join(f"{key}: {value:.0f} MiB" for key, value in results.rss.items())
                + f"; peak {results.rss_peak:.0f} MiB"
            )
            if measure_webhook(results, plane, operator, WITH_BURSTS, log):
                # Every resync reconciles every service on the loop that also serves the
                # webhook; with the default interval, measure between two of them.
                operator.stop()
                operator = start_operator(
                    plane,
                    work / "operator-default-resync.log",
                    # start_operator's own default is the tests' 10 s: say 300 outright.
                    env={
                        "PRODREADY_LOG_LEVEL": "INFO",
                        "PRODREADY_RESYNC_INTERVAL_SECONDS": str(DEFAULT_RESYNC_SECONDS),
                    },
                )
                wait_idle(operator.process.pid)
                measure_webhook(results, plane, operator, WITH_DEFAULT, log)
        finally:
            operator.stop()


def _unrelated_deployments(count: int) -> dict[str, Any]:
    items = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"other-{n:04d}", "namespace": "unrelated"},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": f"other-{n:04d}"}},
                "template": {
                    "metadata": {"labels": {"app": f"other-{n:04d}"}},
                    "spec": {"containers": [{"name": "app", "image": "example/other:1.0"}]},
                },
            },
        }
        for n in range(count)
    ]
    return {"apiVersion": "v1", "kind": "List", "items": items}


# -- the webhook --------------------------------------------------------------------------


async def _drive(
    url: str, body: dict[str, Any], context: ssl.SSLContext, rate: int, seconds: float
) -> tuple[list[float], int, int]:
    """Open-loop requests at `rate` per second; (latencies, errors, answers with warnings)."""
    import aiohttp

    latencies: list[float] = []
    errors = warned = 0
    payload = json.dumps(body)
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    connector = aiohttp.TCPConnector(ssl=context, limit=200)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            nonlocal errors, warned
            started = time.perf_counter()
            try:
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    ok = response.status < 300
                    warned += bool(response.headers.getall("Warning", []))
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1

        loop = asyncio.get_running_loop()
        begin = loop.time()
        tasks = []
        for index in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, begin + index / rate - loop.time()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return latencies, errors, warned


WITHOUT = "without the webhook"
WITH_BURSTS = f"with, resync every {RESYNC_SECONDS} s"
WITH_DEFAULT = f"with, default resync ({DEFAULT_RESYNC_SECONDS} s)"


def _latency_figures(figures: tuple[list[float], int, int]) -> dict[str, float]:
    latencies, errors, warned = figures
    return {
        "p50": percentile(latencies, 0.50),
        "p99": percentile(latencies, 0.99),
        "max": max(latencies) if latencies else float("nan"),
        "errors": errors,
        "answered by the webhook": warned,
        "requests": len(latencies) + errors,
    }


def _measure_rate(
    url: str, body: dict[str, Any], context: ssl.SSLContext, rate: int, operator_pid: int
) -> dict[str, float]:
    """Latency figures at `rate` for WEBHOOK_SECONDS, with this process's CPU (the driver's),
    the operator's and the machine's load average: whichever saturates shows in the figures,
    not only in the p99."""
    cpu, operator_cpu = time.process_time(), cpu_seconds(operator_pid)
    figures = _latency_figures(asyncio.run(_drive(url, body, context, rate, WEBHOOK_SECONDS)))
    figures["driver CPU %"] = 100 * (time.process_time() - cpu) / WEBHOOK_SECONDS
    figures["operator CPU %"] = 100 * (cpu_seconds(operator_pid) - operator_cpu) / WEBHOOK_SECONDS
    figures["load average"] = os.getloadavg()[0]
    return figures


def measure_webhook(
    results: OperatorResults, plane: ControlPlane, operator: Any, label: str, log: Log
) -> bool:
    """Register the operator's webhook and drive dry-run creates through the apiserver;
    the baseline without it first, when not measured yet. False: no webhook package."""
    try:
        from tests.e2e.policy_support import bare_deployment, webhook_endpoint

        from prodready.webhook.configuration import render_webhook_configuration
    except ImportError:
        results.webhook_note = "skipped: no prodready.webhook package"
        log(f"webhook: {results.webhook_note}")
        return False
    namespace = "webhook"
    url = f"{plane.api_url}/apis/apps/v1/namespaces/{namespace}/deployments?dryRun=All"
    body = bare_deployment("probe", namespace)
    context = _context(plane)
    if WITHOUT not in results.webhook:
        log(
            f"webhook: dry-run creates at {WEBHOOK_RATE}/s and {WEBHOOK_FAST_RATE}/s for "
            f"{WEBHOOK_SECONDS} s"
        )
        plane.kubectl("label", "namespace", namespace, "prodready.io/audit=true")
        asyncio.run(_drive(url, body, context, WEBHOOK_RATE, 2))  # warm the paths
        results.webhook[WITHOUT] = _measure_rate(
            url, body, context, WEBHOOK_RATE, operator.process.pid
        )
        _log_latency(log, WITHOUT, results.webhook[WITHOUT])
        results.webhook_fast[WITHOUT] = _measure_rate(
            url, body, context, WEBHOOK_FAST_RATE, operator.process.pid
        )
        _log_latency(log, f"{WITHOUT}, {WEBHOOK_FAST_RATE}/s", results.webhook_fast[WITHOUT])
    port, ca_file = webhook_endpoint(operator)
    document = render_webhook_configuration(
        operator_namespace="default",
        url=f"https://127.0.0.1:{port}",
        ca_bundle=ca_file.read_bytes(),
        name="prodready-bench",
        failure_policy="Ignore",
        timeout_seconds=5,
    )
    plane.kubectl("apply", "-f", "-", input=json.dumps(document))
    wait_until(
        lambda: asyncio.run(_drive(url, body, context, 5, 1))[2] >= 5,
        60,
        "the apiserver to call this operator's webhook",
        interval=1,
    )
    asyncio.run(_drive(url, body, context, WEBHOOK_RATE, 2))
    results.webhook[label] = _measure_rate(url, body, context, WEBHOOK_RATE, operator.process.pid)
    _log_latency(log, label, results.webhook[label])
    if label == WITH_DEFAULT:
        results.webhook_fast[label] = _measure_rate(
            url, body, context, WEBHOOK_FAST_RATE, operator.process.pid
        )
        _log_latency(log, f"{label}, {WEBHOOK_FAST_RATE}/s", results.webhook_fast[label])
    return True


def _log_latency(log: Log, label: str, figures: dict[str, float]) -> None:
    log(
        f"  {label}: p50 {figures['p50'] * 1000:.1f} ms, p99 {figures['p99'] * 1000:.1f} ms, "
        f"max {figures['max'] * 1000:.0f} ms, {int(figures['errors'])} errors, "
        f"{int(figures['answered by the webhook'])} of {int(figures['requests'])} answered "
        "with the webhook's warnings"
        + (
            f"; driver CPU {figures['driver CPU %']:.0f}%, operator CPU "
            f"{figures.get('operator CPU %', float('nan')):.0f}%, load average "
            f"{figures['load average']:.1f}"
            if "driver CPU %" in figures
            else ""
        )
    )


def wait_idle(pid: int, timeout: float = 240) -> None:
    """Until the process uses under 5% of a core over ten seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(10)
        if cpu_seconds(pid) - before < 0.5:
            return


def run(services: int, log: Log) -> OperatorResults:
    """The whole operator benchmark."""
    results = OperatorResults(services)
    names = [f"svc-{n:04d}" for n in range(services)]
    with tempfile.TemporaryDirectory(prefix="prodready-bench-operator-") as directory:
        work = Path(directory)
        for phase in (measure_floor, measure_operator):
            try:
                phase(results, names, work, log)
            except Exception as error:  # report and go on: the other figures still count
                report_failure(results.problems, phase.__name__, error, work, log)
    return results


def report_failure(problems: list[str], phase: str, error: Exception, work: Path, log: Log) -> None:
    """Record a phase that failed (its error's first lines) and log the operator's last
    lines, so the run goes on to the other phases and still says why."""
    message = str(error).splitlines()
    shown = "\n".join(message[:3]) + (f" (+{len(message) - 3} lines)" * (len(message) > 3))
    problems.append(f"{phase}: {type(error).__name__}: {shown}")
    log(f"  FAILED: {problems[-1]}")
    log_file = work / "operator.log"
    if log_file.exists():
        tail = log_file.read_text(errors="replace").splitlines()[-20:]
        log("  operator log tail:\n    " + "\n    ".join(tail))


def as_dict(results: OperatorResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "services": results.services,
        "floor_seconds": results.floor_seconds,
        "floor_apply_seconds": results.floor_apply_seconds,
        "converge_seconds": results.converge_seconds,
        "converge_apply_seconds": results.converge_apply_seconds,
        "converge_cpu_seconds": results.converge_cpu_seconds,
        "services_apply_alone_seconds": results.services_apply_alone_seconds,
        "ratio": results.ratio,
        "latency_p50_seconds": results.latency_p50,
        "latency_p99_seconds": results.latency_p99,
        "latency_max_seconds": results.latency_max,
        "steady_writes": results.steady_writes,
        "steady_window_seconds": results.steady_window_seconds,
        "steady_detail": results.steady_detail,
        "steady_cpu_percent": results.steady_cpu_percent,
        "converge_writes": results.converge_writes,
        "rss_mib": results.rss,
        "rss_peak_mib": results.rss_peak,
        "webhook": results.webhook,
        "webhook_200_per_second": results.webhook_fast,
        "children_per_service": results.children_per_service,
        "writes_per_service": results.writes_per_service,
        "webhook_note": results.webhook_note,
        "problems": results.problems,
    }

"""Faults, against real processes: the operator SIGKILLed at random points, the apiserver
and etcd frozen or restarted mid-reconcile, users editing fields the operator owns, the
webhook hanging.

What "converged" means here is checked independently of the operator's own drift logic:
every ProductionService's children are exactly what `prodready render` makes of its
latest spec (no child missing, none extra, none left over from an older spec), each is
owned by that ProductionService alone, and contains every rendered field with its
rendered value. `make test` runs the short variants; `-m slow` (run by `make bench`) the
long ones.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from prodready.render import render
from prodready.webhook.configuration import render_webhook_configuration
from tests.cluster.controlplane import ControlPlane, default_bin_dir
from tests.e2e.policy_support import (
    bare_deployment,
    kubectl_apply,
    label_namespace,
    webhook_endpoint,
)
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    condition,
    get,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

CHILD_RESOURCES = ",".join(
    [
        "deployments.apps",
        "services",
        "horizontalpodautoscalers.autoscaling",
        "poddisruptionbudgets.policy",
        "ingresses.networking.k8s.io",
        "servicemonitors.monitoring.coreos.com",
        "prometheusrules.monitoring.coreos.com",
    ]
)
MANAGED = "app.kubernetes.io/managed-by=prodready"
SERVICE_LABEL = "prodready.io/service"


# -- specs and their mutations -----------------------------------------------------------


def service(name: str, namespace: str, generation: int = 0, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "image": f"registry.example.com/team/{name}:1.0.{generation}",
            "environment": "dev",
            "replicas": 1,
        },
    }
    body["spec"].update(spec)
    return body


def mutate(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A new spec: one to three changes that add, change or remove children."""
    spec = json.loads(json.dumps(body["spec"]))
    for change in rng.sample(("image", "replicas", "autoscaling", "metrics", "env", "pdb"), 2):
        if change == "image":
            version = int(spec["image"].rsplit(".", 1)[1]) + 1
            spec["image"] = spec["image"].rsplit(".", 1)[0] + f".{version}"
        elif change == "replicas":
            spec["replicas"] = 2 if spec.get("replicas") == 1 else 1
        elif change == "autoscaling":  # the HPA appears, or is pruned
            if "autoscaling" in spec:
                del spec["autoscaling"]
            else:
                spec["autoscaling"] = {"minReplicas": 1, "maxReplicas": rng.randint(2, 4)}
        elif change == "metrics":  # the ServiceMonitor and PrometheusRule go, or come back
            enabled = spec.get("metrics", {}).get("enabled", True)
            spec["metrics"] = {"enabled": not enabled}
        elif change == "env":
            spec["env"] = [{"name": "FEATURE", "value": f"v{rng.randint(0, 99)}"}]
        else:  # two replicas in staging render a PodDisruptionBudget
            spec["environment"] = "staging" if spec["environment"] == "dev" else "dev"
    return {**body, "spec": spec}


def apply_all(cluster: ControlPlane, namespace: str, bodies: list[dict[str, Any]]) -> None:
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=document, timeout=300)


# -- convergence, checked against `render` -----------------------------------------------


def contained(want: Any, have: Any) -> bool:
    """Every field of `want` is in `have` with the same value (the apiserver adds defaults)."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(
            key in have and contained(value, have[key]) for key, value in want.items()
        )
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(contained(w, h) for w, h in zip(want, have, strict=True))
        )
    return bool(want == have)


def listing(cluster: ControlPlane, namespace: str, resources: str, *args: str) -> list[Any]:
    items = cluster.kubectl_json("get", resources, "-n", namespace, *args).get("items")
    assert isinstance(items, list)
    return items


def rolled_out(deployment: dict[str, Any] | None) -> bool:
    """`kubectl rollout status`'s verdict: the newest spec is out and available."""
    if not deployment:
        return False
    spec, status = deployment["spec"], deployment.get("status") or {}
    replicas = spec.get("replicas", 1)
    return bool(
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == replicas
        and status.get("availableReplicas", 0) == replicas
        and status.get("replicas", 0) == replicas
    )


def divergence(
    cluster: ControlPlane, namespace: str, expected: int, *, ready: bool = True
) -> list[str]:
    """What keeps the namespace from being converged ([] when it is). With `ready` false,
    the Ready condition need only tell the truth about the Deployment's rollout."""
    services = {s["metadata"]["name"]: s for s in listing(cluster, namespace, "productionservices")}
    children = listing(cluster, namespace, CHILD_RESOURCES, "-l", MANAGED)
    problems: list[str] = []
    if len(services) != expected:
        problems.append(f"{len(services)} ProductionServices, expected {expected}")
    by_owner: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
    uids = {s["metadata"]["uid"]: name for name, s in services.items()}
    for child in children:
        metadata = child["metadata"]
        label = (metadata.get("labels") or {}).get(SERVICE_LABEL, "")
        owners = [o for o in metadata.get("ownerReferences") or [] if o.get("controller")]
        where = f"{child['kind']}/{metadata['name']}"
        if metadata.get("deletionTimestamp"):
            continue  # being collected
        if len(owners) != 1 or uids.get(owners[0]["uid"]) != label:
            problems.append(f"orphan or mis-owned {where}: owners {owners}, label {label!r}")
            continue
        key = (child["kind"], metadata["name"])
        if key in by_owner.setdefault(label, {}):
            problems.append(f"duplicate {where}")
        by_owner[label][key] = child
    for name, body in services.items():
        metadata, status = body["metadata"], body.get("status") or {}
        if status.get("observedGeneration") != metadata.get("generation"):
            problems.append(f"{name}: status is for generation {status.get('observedGeneration')}")
        desired = {(o["kind"], o["metadata"]["name"]): o for o in render(body)}
        live = by_owner.get(name, {})
        said = condition(body, "Ready")
        if ready and said.get("status") != "True":
            problems.append(f"{name}: not Ready ({said.get('message')})")
        truth = rolled_out(live.get(("Deployment", name)))
        if not ready and (said.get("status") == "True") != truth:
            problems.append(f"{name}: Ready={said.get('status')} but rolled out={truth}")
        for key in desired.keys() - live.keys():
            problems.append(f"{name}: missing {key[0]}/{key[1]}")
        for key in live.keys() - desired.keys():
            problems.append(f"{name}: stale {key[0]}/{key[1]} (not rendered from the spec)")
        for key in desired.keys() & live.keys():
            if not contained(desired[key], live[key]):
                problems.append(f"{name}: {key[0]}/{key[1]} differs from the rendered object")
    return problems


def wait_converged(
    cluster: ControlPlane, namespace: str, expected: int, timeout: float, *, ready: bool = True
) -> None:
    last: list[list[str]] = [[]]

    def converged() -> bool:
        last[0] = divergence(cluster, namespace, expected, ready=ready)
        return not last[0]

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if converged():
            return
        time.sleep(1.0)
    pytest.fail(
        f"not converged after {timeout:.0f}s: {len(last[0])} problems:\n" + "\n".join(last[0][:30])
    )


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> ControlPlane:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    return cluster


# -- the operator SIGKILLed at random points ---------------------------------------------


def _phase(operator: OperatorProcess) -> str:
    """How far a killed operator had got: starting, watching, or reconciling."""
    messages = {line.get("message") for line in operator.log_lines()}
    if "reconciled" in messages:
        return "reconciling"
    return "watching" if "caches warm" in messages else "starting"


def kill_and_restart(
    cluster: ControlPlane,
    namespace: str,
    log_dir: Path,
    *,
    services: int,
    kills: int,
    seed: int,
    timeout: float,
) -> None:
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    phases: list[str] = []
    bodies: dict[str, dict[str, Any]] = {}
    pending = [f"svc-{n:03d}" for n in range(services)]
    created_per_round = max(1, -(-services // max(1, kills // 2)))
    for round_number in range(kills):
        operator = start_operator(
            cluster,
            log_dir / f"operator-{round_number:03d}.log",
            wait_ready=False,
            env={"PRODREADY_LOG_LEVEL": "INFO"},
        )
        # Create some, update some, while the operator starts, seeds its caches and
        # reconciles; kill it at a random moment of that.
        batch = [service(name, namespace) for name in pending[:created_per_round]]
        del pending[:created_per_round]
        existing = [name for name in bodies if rng.random() < 0.3]
        batch.extend(mutate(bodies[name], rng) for name in existing)
        time.sleep(rng.uniform(0.0, 1.5))
        if batch:
            apply_all(cluster, namespace, batch)
            bodies.update({body["metadata"]["name"]: body for body in batch})
        time.sleep(rng.uniform(0.0, 2.5))
        operator.stop(signal.SIGKILL, timeout=10)
        phases.append(_phase(operator))
    if pending:
        batch = [service(name, namespace) for name in pending]
        apply_all(cluster, namespace, batch)
        bodies.update({body["metadata"]["name"]: body for body in batch})
    # The schedule must hit the operator while it works, not only while it starts.
    print(f"killed while: {dict(Counter(phases))}")
    assert phases.count("reconciling") >= kills // 3, phases
    final = start_operator(cluster, log_dir / "operator-final.log")
    try:
        wait_converged(cluster, namespace, len(bodies), timeout)
        # Each ProductionService's spec is the last one applied.
        for name, body in bodies.items():
            live = get(cluster, "productionservice", name, namespace)
            assert live is not None
            assert contained(body["spec"], live["spec"]), name
    finally:
        final.stop()


def test_operator_sigkilled_at_random_points_converges(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kill_and_restart(crds, namespace, tmp_path, services=20, kills=5, seed=20_240_601, timeout=120)


@pytest.mark.slow
def test_operator_sigkilled_fifty_times_converges(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    kill_and_restart(
        crds, namespace, tmp_path, services=100, kills=50, seed=20_240_602, timeout=300
    )


# -- users editing what the operator owns ------------------------------------------------


def test_user_edit_of_owned_fields_is_reverted_and_their_own_fields_kept(
    crds: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    operator = start_operator(crds, tmp_path / "operator.log")
    try:
        body = service("edited", namespace, replicas=2)
        apply_all(crds, namespace, [body])
        wait_converged(crds, namespace, 1, 60)
        rendered = next(o for o in render(body) if o["kind"] == "Deployment")
        image = rendered["spec"]["template"]["spec"]["containers"][0]["image"]
        probe = rendered["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]

        # `kubectl edit`: read, change, write back the whole object (an update).
        live = get(crds, "deployment", "edited", namespace)
        assert live is not None
        container = live["spec"]["template"]["spec"]["containers"][0]
        container["image"] = "registry.example.com/hijacked:6.6.6"
        container["readinessProbe"]["periodSeconds"] = 300
        live["metadata"].setdefault("labels", {})["team.example.com/owner"] = "alice"
        live["metadata"].setdefault("annotations", {})["example.com/ticket"] = "OPS-1234"
        crds.kubectl("replace", "-f", "-", input=json.dumps(live))
        # Another writer takes ownership with server-side apply and --force-conflicts.
        crds.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=bob",
            "-f",
            "-",
            input=json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {
                        "name": "edited",
                        "namespace": namespace,
                        "annotations": {"example.com/lb": "internal"},
                    },
                    "spec": {"sessionAffinity": "ClientIP"},
                }
            ),
        )

        def reverted() -> bool:
            deployment = get(crds, "deployment", "edited", namespace) or {}
            containers = deployment["spec"]["template"]["spec"]["containers"]
            return bool(
                containers[0]["image"] == image
                and contained(probe, containers[0]["readinessProbe"])
            )

        wait_for(reverted, 30, "the operator to restore the image and the probe")
        # Stable over a resync period, with the users' own fields kept.
        time.sleep(11)
        assert reverted()
        deployment = get(crds, "deployment", "edited", namespace)
        assert deployment is not None
        assert deployment["metadata"]["labels"]["team.example.com/owner"] == "alice"
        assert deployment["metadata"]["annotations"]["example.com/ticket"] == "OPS-1234"
        served = get(crds, "service", "edited", namespace)
        assert served is not None
        assert served["metadata"]["annotations"]["example.com/lb"] == "internal"
        assert served["spec"]["sessionAffinity"] == "ClientIP"
        assert not divergence(crds, namespace, 1)
    finally:
        operator.stop()


# -- the apiserver and etcd stopped mid-reconcile ----------------------------------------


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane of this test's own: stopping it disturbs no other test."""
    plane = ControlPlane(bin_dir=default_bin_dir(), directory=tmp_path / "control-plane")
    plane.start()
    try:
        install_crds(plane, CRD_FILE, *MONITORING_CRDS)
        yield plane
    finally:
        for process in plane.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGCONT)
        plane.stop()


@dataclass
class Outage:
    """How one outage is caused and ended."""

    begin: Callable[[ControlPlane], None]
    end: Callable[[ControlPlane], None]


def _freeze(plane: ControlPlane) -> None:
    for name in ("apiserver", "etcd"):
        os.killpg(plane.processes[name].pid, signal.SIGSTOP)


def _thaw(plane: ControlPlane) -> None:
    for name in ("etcd", "apiserver"):
        os.killpg(plane.processes[name].pid, signal.SIGCONT)


def _crash_apiserver(plane: ControlPlane) -> None:
    process = plane.processes["apiserver"]
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    os.killpg(plane.processes["etcd"].pid, signal.SIGSTOP)


def _restart_apiserver(plane: ControlPlane) -> None:
    os.killpg(plane.processes["etcd"].pid, signal.SIGCONT)
    plane._start_apiserver()  # same flags, certificates and port
    plane._wait(lambda: plane._get("/readyz") == 200, time.monotonic() + 60, "the apiserver")


OUTAGES = {
    # SIGSTOP: sockets stay open and requests hang without an answer, as behind a
    # partition or an overloaded apiserver — the case only the client's own timeouts end.
    "frozen": Outage(_freeze, _thaw),
    # SIGKILL and a restart with the same flags and port: connections are refused, then
    # the apiserver comes back with a new watch cache, as after a crash or an upgrade.
    "restarted": Outage(_crash_apiserver, _restart_apiserver),
}


@pytest.mark.parametrize(
    "kind",
    [
        "frozen",
        # The controller-manager takes a minute to recover from a restart: a slow variant.
        pytest.param("restarted", marks=pytest.mark.slow),
    ],
)
def test_operator_rides_out_an_apiserver_outage(
    own_cluster: ControlPlane, tmp_path: Path, kind: str
) -> None:
    namespace = "outage"
    own_cluster.kubectl("create", "namespace", namespace)
    operator = start_operator(
        own_cluster, tmp_path / "operator.log", env={"PRODREADY_LOG_LEVEL": "INFO"}
    )
    try:
        apply_all(own_cluster, namespace, [service(f"svc-{n:02d}", namespace) for n in range(20)])
        wait_for(
            lambda: any(line.get("message") == "reconciled" for line in operator.log_lines()),
            30,
            "the first reconcile",
            interval=0.05,
        )
        outage = OUTAGES[kind]
        logged_before = len(operator.log_lines())
        outage.begin(own_cluster)
        stopped = time.monotonic()
        wait_for(lambda: operator.status("/readyz") == 503, 12, "/readyz to report unready")
        healthy: list[int] = []
        while time.monotonic() - stopped < 20:
            healthy.append(operator.status("/healthz"))
            time.sleep(1)
        # Alive all along: a liveness probe must not restart an operator that only waits.
        assert set(healthy) == {200}, healthy
        outage.end(own_cluster)
        back = time.monotonic()
        wait_for(lambda: operator.status("/readyz") == 200, 30, "/readyz to report ready again")
        # Within 30 s of the API's return, the operator has caught up: every child as
        # rendered, every status current and true to the Deployment's rollout. (After a
        # restart the controller-manager needs up to a minute more to roll the pods out;
        # that is the control plane's recovery, not the operator's.)
        remaining = max(5.0, 30 - (time.monotonic() - back))
        wait_converged(own_cluster, namespace, 20, remaining, ready=False)
        assert time.monotonic() - back < 30
        wait_converged(own_cluster, namespace, 20, 120)
        during = operator.log_lines()[logged_before:]
        assert operator.process.poll() is None, "the operator exited"
        warnings = [line for line in during if line.get("level") in ("warning", "error")]
        assert warnings, "nothing was logged about the outage"
        # Backing off, not spinning: a handful of attempts per service, not hundreds.
        failures = [line for line in during if line.get("message") == "reconcile failed"]
        assert len(failures) <= 20 * 8, len(failures)
    finally:
        operator.stop()


# -- the webhook hanging -----------------------------------------------------------------


@pytest.mark.parametrize("failure_policy", ["Ignore", "Fail"])
def test_a_hung_webhook_follows_the_failure_policy(
    crds: ControlPlane, namespace: str, tmp_path: Path, failure_policy: str
) -> None:
    """The operator SIGSTOPped: its webhook port still accepts connections, but nothing
    answers, so the apiserver waits out timeoutSeconds (refused connections, the easy
    case, are tested with the webhook itself)."""
    operator = start_operator(crds, tmp_path / "operator.log")
    name = f"prodready-faults-{failure_policy.lower()}"
    label_namespace(crds, namespace, "prodready.io/enforce=true", "prodready.io/faults=true")
    try:
        port, ca_file = webhook_endpoint(operator)
        document = render_webhook_configuration(
            operator_namespace="default",
            url=f"https://127.0.0.1:{port}",
            ca_bundle=ca_file.read_bytes(),
            name=name,
            failure_policy="Fail" if failure_policy == "Fail" else "Ignore",
            timeout_seconds=2,
        )
        for webhook in document["webhooks"]:
            webhook["namespaceSelector"]["matchExpressions"].append(
                {"key": "prodready.io/faults", "operator": "Exists"}
            )
        crds.kubectl("apply", "-f", "-", input=json.dumps(document))

        def denied() -> bool:
            result = kubectl_apply(
                crds, namespace, bare_deployment("probe", namespace), extra=("--dry-run=server",)
            )
            return result.returncode != 0 and "prodready denied" in result.stderr

        wait_for(denied, 30, "the apiserver to call the webhook")
        operator.process.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        result = kubectl_apply(crds, namespace, bare_deployment("while-hung", namespace))
        waited = time.monotonic() - started
        assert waited >= 2, "the apiserver did not wait for the webhook"
        if failure_policy == "Ignore":
            assert result.returncode == 0, result.stderr
            assert get(crds, "deployment", "while-hung", namespace) is not None
        else:
            assert result.returncode != 0
            assert "failed calling webhook" in result.stderr
            assert get(crds, "deployment", "while-hung", namespace) is None
    finally:
        crds.kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")
        operator.process.send_signal(signal.SIGCONT)
        operator.stop()

"""Sharded reconciling (issue 21, goal 5) with real `prodready run` replicas.

Three replicas split the namespaces through one Lease per shard. The apiserver's audit log
names the writer of every request (each replica's User-Agent carries its identity), so it
proves what the replicas' logs could only claim: each namespace's services are written by
the replica holding the namespace's shard, by one replica at a time. A shard holder is then
killed with SIGKILL mid-work; the survivors take its shards over once the Leases expire,
and its services converge.

The default size runs in about two minutes; the issue's full size (300 services in 30
namespaces) is the `slow` variant.
"""

from __future__ import annotations

import datetime
import json
import re
import signal
import ssl
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any, cast

import pytest

from prodready.kube.shards import shard_of
from tests.cluster.controlplane import ControlPlane, default_bin_dir
from tests.e2e.support import (
    CRD_FILE,
    MONITORING_CRDS,
    OperatorProcess,
    condition,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

SHARDS = 8
LEASE_NAME = "sharding-e2e"
LEASE_SECONDS = 15.0
REPLICAS = 3
# The writes a reconcile makes (children and the status), not the audit's Events.
RECONCILE_WRITES = {
    "deployments",
    "services",
    "poddisruptionbudgets",
    "servicemonitors",
    "prometheusrules",
    "productionservices",
}
AGENT = re.compile(r"^prodready \((?P<identity>[^)]+)\)$")


def _service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {"image": f"registry.example.com/team/{name}:1.0.0", "environment": "dev"},
    }


def _apply(cluster: ControlPlane, namespace: str, names: list[str]) -> None:
    items = [_service(name) for name in names]
    document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=document)


def _ready_count(cluster: ControlPlane, namespaces: list[str]) -> int:
    listing = cluster.kubectl_json("get", "productionservices", "-A")
    return sum(
        1
        for item in cast(list[dict[str, Any]], listing["items"])
        if item["metadata"]["namespace"] in namespaces
        and condition(item, "Ready").get("status") == "True"
    )


def _holders(cluster: ControlPlane) -> dict[int, str]:
    """Shard -> holder identity, from the shard Leases."""
    listing = cluster.kubectl_json(
        "get", "leases", "-n", "default", "-l", f"prodready.io/lease-group={LEASE_NAME}"
    )
    holders = {}
    for lease in cast(list[dict[str, Any]], listing["items"]):
        name = lease["metadata"]["name"]
        holder = (lease.get("spec") or {}).get("holderIdentity")
        if name.startswith(f"{LEASE_NAME}-shard-") and holder:
            holders[int(name.rsplit("-", 1)[1])] = str(holder)
    return holders


def _identity(operator: OperatorProcess) -> str:
    for line in operator.log_lines():
        if line.get("message") == "acquired shard" and line.get("identity"):
            return str(line["identity"])
    return ""


def _stamp(event: dict[str, Any]) -> float:
    text = str(event["requestReceivedTimestamp"]).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(text).timestamp()


def _reconcile_writes(cluster: ControlPlane, namespaces: set[str]) -> list[tuple[float, str, str]]:
    """(time, namespace, writer identity) of every reconcile write in `namespaces`."""
    writes = []
    for event in cast(list[dict[str, Any]], cluster.audit_events()):
        found = AGENT.match(str(event.get("userAgent", "")))
        ref = event.get("objectRef") or {}
        if (
            found
            and event.get("stage") == "ResponseComplete"
            and ref.get("namespace") in namespaces
            and ref.get("resource") in RECONCILE_WRITES
        ):
            writes.append((_stamp(event), str(ref["namespace"]), found["identity"]))
    return sorted(writes)


def _runs(writers: list[str]) -> list[str]:
    """The writers of one namespace in order, each run of the same writer once."""
    runs: list[str] = []
    for writer in writers:
        if not runs or runs[-1] != writer:
            runs.append(writer)
    return runs


def _most_at_a_time(by_namespace: dict[str, list[tuple[float, str]]]) -> int:
    """The most writers of one namespace whose spans (first to last write) overlap."""
    most = 0
    for writes in by_namespace.values():
        spans: dict[str, tuple[float, float]] = {}
        for stamp, writer in writes:
            first, _ = spans.get(writer, (stamp, stamp))
            spans[writer] = (first, stamp)
        for _, (start, _) in spans.items():
            most = max(most, sum(1 for s, e in spans.values() if s <= start <= e))
    return most


def _review(replica: OperatorProcess, namespace: str) -> dict[str, Any]:
    """The answer of the replica's own webhook to an audit-mode review of a ConfigMap."""
    port = next(
        line["port"]
        for line in replica.log_lines()
        if line.get("message") == "admission webhook listening"
    )
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "probe", "namespace": namespace},
        "data": {"a": "b"},
    }
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "sharding",
            "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
            "resource": {"group": "", "version": "v1", "resource": "configmaps"},
            "name": "probe",
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "alice"},
            "object": config_map,
        },
    }
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the replica's own self-signed certificate
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/validate/audit",
        data=json.dumps(review).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10, context=context) as answer:  # noqa: S310
        response = json.loads(answer.read())["response"]
    return {"uid": response["uid"], "allowed": response["allowed"]}


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> None:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)


def _start_replicas(cluster: ControlPlane, tmp_path: Path) -> list[OperatorProcess]:
    env = {"PRODREADY_SHARDS": str(SHARDS), "PRODREADY_LEASE_NAME": LEASE_NAME}
    replicas = [
        start_operator(
            cluster, tmp_path / f"replica-{n}.log", env=env, standalone=False, wait_ready=False
        )
        for n in range(REPLICAS)
    ]
    for replica in replicas:
        wait_for(lambda r=replica: r.status("/readyz") == 200, 90, "a replica's /readyz")  # type: ignore[misc]
    return replicas


def _scenario(
    cluster: ControlPlane, tmp_path: Path, namespace_count: int, per_namespace: int
) -> None:
    prefix = f"shard-{namespace_count}-"
    namespaces = [f"{prefix}{n:02d}" for n in range(namespace_count)]
    for namespace in namespaces:
        cluster.kubectl("create", "namespace", namespace)
    replicas = _start_replicas(cluster, tmp_path)
    try:
        # The replicas share the shards out: each holds its fair share, no shard is free.
        def balanced() -> dict[int, str] | None:
            holders = _holders(cluster)
            shares = sorted(Counter(holders.values()).values())
            return holders if len(holders) == SHARDS and shares == [2, 3, 3] else None

        holders = wait_for(balanced, 90, "the shards to be shared out 3/3/2")
        identities = {_identity(r): r for r in replicas}
        assert set(identities) == set(holders.values())

        # Every replica serves the admission webhook, whatever shards it holds.
        for replica in replicas:
            assert _review(replica, namespaces[0]) == {"uid": "sharding", "allowed": True}

        names = [f"svc-{n:03d}" for n in range(per_namespace)]
        applied_at = time.time()
        for namespace in namespaces:
            _apply(cluster, namespace, names)
        # The victim: the holder of the first namespace's shard, killed once it has
        # started on its services (some of them are in flight or still queued).
        victim_identity = holders[shard_of(namespaces[0], SHARDS)]
        victim = identities[victim_identity]
        wait_for(
            lambda: any(line.get("message") == "reconciled" for line in victim.log_lines()),
            60,
            "the victim's first reconcile",
            interval=0.05,
        )
        killed_at = time.time()
        victim.stop(signal.SIGKILL)
        orphaned = {shard for shard, holder in holders.items() if holder == victim_identity}
        survivors = [r for r in replicas if r is not victim]

        # Its shards are taken over once their Leases expire (plus a turn of the loop).
        def taken_over() -> dict[int, str] | None:
            now = _holders(cluster)
            return (
                now
                if all(now.get(s, victim_identity) != victim_identity for s in orphaned)
                else None
            )

        after = wait_for(taken_over, 60, "the survivors to take the victim's shards")
        takeover_seconds = time.time() - killed_at
        takeover_bound = LEASE_SECONDS + 3 * 2.0 + 5.0
        assert takeover_seconds <= takeover_bound, takeover_seconds
        assert set(after.values()) <= {_identity(r) for r in survivors}

        # Its services still converge, and new ones in its namespaces too.
        victim_namespaces = [n for n in namespaces if shard_of(n, SHARDS) in orphaned]
        for namespace in victim_namespaces:
            _apply(cluster, namespace, ["after-kill"])
        total = len(namespaces) * per_namespace + len(victim_namespaces)
        wait_for(
            lambda: (
                _ready_count(cluster, victim_namespaces)
                == len(victim_namespaces) * (per_namespace + 1)
            ),
            240,
            "the killed holder's services Ready",
            interval=1.0,
        )
        victim_ready_seconds = time.time() - killed_at
        wait_for(
            lambda: _ready_count(cluster, namespaces) == total,
            240,
            f"all {total} services Ready",
            interval=2.0,
        )
        ready_at = time.time()

        # The audit log: each namespace written by the holder of its shard, one writer at a
        # time. A namespace of the victim: the victim until the kill, then its new holder.
        writes = _reconcile_writes(cluster, set(namespaces))
        by_namespace: dict[str, list[tuple[float, str]]] = {n: [] for n in namespaces}
        for stamp, namespace, writer in writes:
            by_namespace[namespace].append((stamp, writer))
        for namespace in namespaces:
            shard = shard_of(namespace, SHARDS)
            runs = _runs([writer for _, writer in by_namespace[namespace]])
            if shard in orphaned:
                assert runs[-1] == after[shard], (namespace, runs)
                assert runs in ([after[shard]], [victim_identity, after[shard]]), runs
                assert all(
                    stamp < killed_at + 1.0
                    for stamp, writer in by_namespace[namespace]
                    if writer == victim_identity
                )
                new_writes = [s for s, w in by_namespace[namespace] if w == after[shard]]
                assert min(new_writes) >= killed_at, namespace
            else:
                assert runs == [holders[shard]], (namespace, runs)
        # The victim had written before it died, and its successor after: a handover.
        assert any(
            _runs([w for _, w in by_namespace[n]]) == [victim_identity, after[shard_of(n, SHARDS)]]
            for n in victim_namespaces
        )
        by_writer = Counter(writer for _, _, writer in writes)
        print(  # the details line `make bench` turns into summary rows (benchmarks/report.py)
            f"\nsharding, {REPLICAS} replicas, {total} services in {len(namespaces)} "
            f"namespaces, {SHARDS} shards: writers per namespace at most "
            f"{_most_at_a_time(by_namespace)} at a time, at most "
            f"{max(len(set(w for _, w in by_namespace[n])) for n in namespaces)} in all; "
            f"shards taken over {takeover_seconds:.1f} s after the SIGKILL "
            f"(bound {takeover_bound:.0f} s); the killed holder's services Ready "
            f"{victim_ready_seconds:.1f} s after it"
        )
        print(  # the figures docs/scaling.md quotes
            f"\n{total} services in {len(namespaces)} namespaces, {REPLICAS} replicas, "
            f"{SHARDS} shards: shards taken over {takeover_seconds:.1f} s after the SIGKILL; "
            f"all Ready {ready_at - applied_at:.1f} s after the first apply; reconcile "
            f"writes per replica {sorted(by_writer.values())}"
        )
        # Every replica did its part.
        assert {writer for _, _, writer in writes} == set(identities)
        for replica in survivors:
            assert replica.process.poll() is None
    finally:
        for replica in replicas:
            replica.stop()
        for namespace in namespaces:
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    # A graceful stop hands every shard back.
    assert _holders(cluster) == {}


def test_three_replicas_share_the_namespaces_and_survive_a_kill(
    cluster: ControlPlane, crds: None, tmp_path: Path
) -> None:
    _scenario(cluster, tmp_path, namespace_count=12, per_namespace=5)


@pytest.mark.slow
def test_three_replicas_300_services_in_30_namespaces(tmp_path: Path) -> None:
    # A control plane of its own, sized as the benchmarks' (a /16 service range: the
    # session's /24 holds 254 ClusterIPs, fewer than 300 services need).
    from benchmarks.operator import BenchControlPlane

    plane = BenchControlPlane(bin_dir=default_bin_dir(), directory=tmp_path / "control-plane")
    plane.start()
    try:
        install_crds(plane, CRD_FILE, *MONITORING_CRDS)
        _scenario(plane, tmp_path, namespace_count=30, per_namespace=10)
    finally:
        plane.stop()


def test_the_charts_rbac_and_policy_let_sharded_replicas_write_only_their_leases(
    cluster: ControlPlane,
) -> None:
    """As the chart's ServiceAccount, with the chart's leader-election Role and its
    ValidatingAdmissionPolicy for `operator.shards: 8`: shard and member Leases may be
    written and a member Lease deleted; another Lease, or deleting a shard's, is refused."""
    from tests.generate import documents, helm_template

    release = "shardvap"
    kinds = {"ServiceAccount", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
    rendered = helm_template({"operator": {"shards": 8}}, release=release, namespace=release)
    objects = [
        o
        for o in cast(list[dict[str, Any]], documents(rendered))
        if o["kind"] in kinds or o["metadata"]["name"].endswith("-leader-election")
    ]
    cluster.kubectl("create", "namespace", release)
    applied = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    try:
        cluster.kubectl("apply", "-f", "-", input=applied)
        subject = f"system:serviceaccount:{release}:{release}-prodready"

        def lease(name: str) -> str:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": name, "namespace": release},
                "spec": {"holderIdentity": "replica-a"},
            }
            return json.dumps(body)

        def as_operator(*args: str, body: str | None = None) -> Any:
            return cluster.kubectl("--as", subject, *args, input=body, check=False)

        def create(name: str) -> Any:
            return as_operator("create", "--dry-run=server", "-f", "-", body=lease(name))

        # The policy takes a moment to be enforced once created.
        denied = wait_for(
            lambda: (
                (r := create("elsewhere")).returncode != 0 and "writes only its own" in r.stderr
            ),
            30,
            "the policy to refuse a Lease that is not the operator's",
        )
        assert denied
        # Lease names follow operator.leaseName (default: prodready), not the release.
        for name in ("prodready-shard-3", "prodready-member-pod-1", "prodready"):
            result = create(name)
            assert result.returncode == 0, (name, result.stderr)
        for name in ("prodready-shard-3", "prodready-member-pod-1"):
            cluster.kubectl("create", "-f", "-", input=lease(name))
        delete = ("delete", "lease", "-n", release, "--dry-run=server")
        member = as_operator(*delete, "prodready-member-pod-1")
        assert member.returncode == 0, member.stderr
        shard = as_operator(*delete, "prodready-shard-3")
        assert shard.returncode != 0
        assert "deletes only member Leases" in shard.stderr
    finally:
        cluster.kubectl("delete", "-f", "-", "--wait=false", input=applied, check=False)
        cluster.kubectl("delete", "namespace", release, "--wait=false", check=False)

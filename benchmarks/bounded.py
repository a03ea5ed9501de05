"""Bounded work per object: what one very large workload costs the rules engine and the
webhook, in one process (no cluster needed).

The objects are what an attacker, or a generator gone wrong, would send: one Deployment
with thousands of containers (each with a few variables, two ports and probes) and a
LoadBalancer Service with many ports selecting it; one container with thousands of
variables. `prodready.rules.limits` refuses such objects before the rules run (PR-LM-001);
the "caps lifted" rows evaluate them rule by rule anyway, to show that every rule is
linear in the object's size (1,000 / 2,000 / 4,000 containers took 2 / 9 / 40 s before).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.measure import median

NAMESPACE = "shop"
# High enough that nothing in these objects trips a cap.
LIFTED: dict[str, int] = {
    "containers": 1 << 30,
    "env_per_container": 1 << 30,
    "env_from_per_container": 1 << 30,
    "ports_per_container": 1 << 30,
    "volume_mounts_per_container": 1 << 30,
    "volumes": 1 << 30,
    "entries": 1 << 30,
}


def container(index: int, *, env: int = 4, ports: int = 2) -> dict[str, Any]:
    """A serving container with `env` literal variables (plus a shutdown timeout and a
    Secret reference), `ports` ports, probes, resources and a mount."""
    variables: list[dict[str, Any]] = [{"name": f"VAR_{j}", "value": str(j)} for j in range(env)]
    variables += [
        {"name": "SHUTDOWN_TIMEOUT", "value": "20"},
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
    ]
    return {
        "name": f"c{index}",
        "image": f"registry.example.com/app:1.{index}",
        "ports": [{"name": f"http-{index}-{j}", "containerPort": 8000 + j} for j in range(ports)],
        "env": variables,
        "livenessProbe": {"httpGet": {"path": "/livez", "port": 8000}, "initialDelaySeconds": 5},
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8000}},
        "resources": {"requests": {"cpu": "10m", "memory": "10Mi"}, "limits": {"memory": "20Mi"}},
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def deployment(
    containers: int, *, env: int = 4, ports: int = 2, name: str = "big"
) -> list[dict[str, Any]]:
    """One Deployment with `containers` containers, and a LoadBalancer Service with 50
    ports selecting it (so every container's ports are matched against the Service's)."""
    labels = {"app": name}
    workload = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": labels,
            "annotations": {"prodready.io/dependencies": '[{"name": "db", "type": "postgres"}]'},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        container(index, env=env, ports=ports) for index in range(containers)
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "type": "LoadBalancer",
            "selector": labels,
            "ports": [{"name": f"s{j}", "port": 80 + j, "targetPort": 9000 + j} for j in range(50)],
        },
    }
    return [workload, service]


def small_containers(containers: int, *, name: str = "huge") -> dict[str, Any]:
    """A Deployment of `containers` containers that name only an image: 10,000 of them
    make 0.6 MiB, well within what the apiserver admits (3 MiB), so it would send them."""
    workload, _ = deployment(0, name=name)
    workload["spec"]["template"]["spec"]["containers"] = [
        {"name": f"c{index}", "image": "registry.example.com/shop/api:1.4.2"}
        for index in range(containers)
    ]
    return workload


def review(obj: dict[str, Any], uid: str = "bench") -> bytes:
    """An AdmissionReview of a CREATE of `obj`, as the apiserver sends it."""
    request = {
        "uid": uid,
        "kind": {"group": "apps", "version": "v1", "kind": obj["kind"]},
        "operation": "CREATE",
        "namespace": NAMESPACE,
        "name": obj["metadata"]["name"],
        "object": obj,
        "userInfo": {"username": "bench"},
    }
    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
    return json.dumps(body).encode()


@dataclass
class Row:
    """One measured case: its median seconds over the runs, and what it produced."""

    label: str
    seconds: float
    findings: int
    target_seconds: float | None = None

    @property
    def met(self) -> bool | None:
        return None if self.target_seconds is None else self.seconds < self.target_seconds


@dataclass
class BoundedResults:
    """Every case, in the order measured."""

    rows: list[Row] = field(default_factory=list)


def _timed(action: Callable[[], int], repeat: int) -> tuple[float, int]:
    runs = []
    produced = 0
    for _ in range(repeat):
        started = time.perf_counter()
        produced = action()
        runs.append(time.perf_counter() - started)
    return median(runs), produced


def run(log: Callable[[str], None], *, repeat: int = 5) -> BoundedResults:
    """Measure each case `repeat` times (median)."""
    from prodready import rules
    from prodready.webhook.admission import Mode, decide, parse_review

    lifted = rules.Limits(**LIFTED)

    def evaluate(objects: list[dict[str, Any]], limits: rules.Limits) -> Callable[[], int]:
        return lambda: len(rules.evaluate(objects, limits=limits)[0].findings)

    ten_thousand = deployment(10_000)
    # The largest object within every default cap: 500 containers, 19,501 entries.
    at_caps = deployment(500, env=34, ports=2)
    many_env = deployment(1, env=10_000)
    small = review(small_containers(10_000))
    # About the most the apiserver admits (3 MiB), in containers that each hold something.
    dense = review(deployment(4_000)[0])

    def webhook(body: bytes) -> Callable[[], int]:
        def answer() -> int:
            admission = parse_review(body)
            deadline = rules.Deadline.after(3.0)
            response = decide(admission, Mode.ENFORCE, ten_thousand[1:], deadline=deadline)
            return len(response.get("warnings") or ()) + (not response["allowed"])

        return answer

    cases: list[tuple[str, Callable[[], int], float | None]] = [
        (
            "evaluate one Deployment with 10,000 containers (refused by PR-LM-001)",
            evaluate(ten_thousand, rules.DEFAULT_LIMITS),
            1.0,
        ),
        (
            f"webhook: parse and decide a review of 10,000 containers ({len(small) / 2**20:.1f} "
            "MiB)",
            webhook(small),
            0.1,
        ),
        (
            f"webhook: parse and decide a review of 4,000 containers with variables, ports "
            f"and probes ({len(dense) / 2**20:.1f} MiB)",
            webhook(dense),
            None,
        ),
        (
            "evaluate the largest Deployment within the caps (500 containers, 19,501 entries)",
            evaluate(at_caps, rules.DEFAULT_LIMITS),
            1.0,
        ),
        (
            "evaluate one Deployment with 10,000 containers, caps lifted (rule by rule)",
            evaluate(ten_thousand, lifted),
            None,
        ),
        (
            "evaluate one container with 10,000 env entries, caps lifted",
            evaluate(many_env, lifted),
            None,
        ),
    ]
    results = BoundedResults()
    for label, action, target in cases:
        seconds, produced = _timed(action, repeat)
        results.rows.append(Row(label, seconds, produced, target))
        log(f"  {label}: {seconds * 1000:,.1f} ms ({produced:,} findings or warnings)")
    return results


def as_dict(results: BoundedResults) -> dict[str, Any]:
    """Plain data for results.json."""
    return {
        "rows": [
            {
                "label": row.label,
                "seconds": row.seconds,
                "findings": row.findings,
                "target_seconds": row.target_seconds,
            }
            for row in results.rows
        ]
    }

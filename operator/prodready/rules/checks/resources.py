"""Resources and availability (seed section 8): PR-RS-001 … PR-RS-003.

PR-RS-003 cannot know what an application writes, so it judges by where volumes are
mounted: an `emptyDir` or `hostPath` mounted at a path that conventionally holds data
(`/data`, `/var/lib/…`, `…/db`, `/bitnami/…`) loses that data with the pod (or the node),
and a StatefulSet — stateful by declaration — must not keep anything but scratch space
(`/tmp`, caches, sockets) on an `emptyDir`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import mapping, sequence
from prodready.rules.subject import Outcome, Subject, failed, passed

_DATA_PATH = re.compile(
    r"^/(var/lib|var/opt|bitnami|srv)(/|$)"
    r"|(^|/)(data|db|database|pgdata|storage|uploads|mysql|postgresql|redis|mongodb)(/|$)"
)
_SCRATCH_PATH = re.compile(
    r"^/(tmp|var/tmp|run|var/run|cache|var/cache|dev/shm)(/|$)|(^|/)(cache|tmp)$"
)


def resource_requests(subject: Subject) -> Iterator[Outcome]:
    """PR-RS-001: CPU and memory requests and a memory limit are set."""
    for container in subject.workload.all_containers:
        resources = mapping(container.spec.get("resources"))
        requests = mapping(resources.get("requests"))
        limits = mapping(resources.get("limits"))
        missing = [
            label
            for label, present in (
                ("requests.cpu", "cpu" in requests),
                ("requests.memory", "memory" in requests),
                ("limits.memory", "memory" in limits),
            )
            if not present
        ]
        path = f"{container.path}.resources"
        if missing:
            yield failed(path, f"container {container.name} has no {', '.join(missing)}", container)
        else:
            yield passed(
                path, f"container {container.name} sets requests and a memory limit", container
            )


def _blocks_evictions(budget: Mapping[str, Any], replicas: int) -> bool:
    spec = mapping(budget.get("spec"))
    if "maxUnavailable" in spec:
        return str(spec["maxUnavailable"]).strip() in ("0", "0%")
    minimum = spec.get("minAvailable")
    if isinstance(minimum, int):
        return minimum >= replicas
    return isinstance(minimum, str) and minimum.strip() == "100%"


def replicas_and_budget(subject: Subject) -> Iterator[Outcome]:
    """PR-RS-002: replicas ≥ 2 in prod, with a PodDisruptionBudget that allows evictions."""
    workload = subject.workload
    if workload.kind == "Pod":
        yield failed("metadata", "a bare Pod is a single replica that nothing recreates")
        return
    problems: list[str] = []
    replicas = workload.replicas
    if replicas < 2:
        source = "the HPA's minReplicas" if workload.autoscaler is not None else "replicas"
        problems.append(f"{source} is {replicas}")
    budgets = workload.context.disruption_budgets.match(workload.namespace, workload.pod_labels)
    if not budgets:
        problems.append("no PodDisruptionBudget selects the pods")
    else:
        for budget in budgets:
            if _blocks_evictions(budget, replicas):
                name = mapping(budget.get("metadata")).get("name")
                problems.append(
                    f"PodDisruptionBudget {name} blocks every eviction (node drains hang)"
                )
    if not problems:
        yield passed("spec.replicas", f"{replicas} replicas with a PodDisruptionBudget")
        return
    patch = None
    if replicas < 2 and workload.autoscaler is None and not subject.rendered:
        patch = [{"op": "add", "path": "/spec/replicas", "value": 2}]
    yield failed("spec.replicas", "; ".join(problems), patch=patch)


def persistent_volumes(subject: Subject) -> Iterator[Outcome]:
    """PR-RS-003: persistent data lives on PersistentVolumeClaims, not emptyDir."""
    workload = subject.workload
    volumes: dict[str, tuple[int, Mapping[str, Any]]] = {}
    for index, raw_volume in enumerate(sequence(workload.pod_spec.get("volumes"))):
        volume = mapping(raw_volume)
        if isinstance(volume.get("name"), str):
            volumes[volume["name"]] = (index, volume)
    problems: list[tuple[str, str]] = []
    for container in workload.all_containers:
        for raw_mount in sequence(container.spec.get("volumeMounts")):
            mount = mapping(raw_mount)
            found = volumes.get(str(mount.get("name")))
            if found is None:
                continue
            index, volume = found
            kind = (
                "emptyDir" if "emptyDir" in volume else "hostPath" if "hostPath" in volume else None
            )
            if kind is None:
                continue
            mount_path = str(mount.get("mountPath", ""))
            data = _DATA_PATH.search(mount_path) is not None
            stateful_scratch = (
                workload.kind == "StatefulSet"
                and kind == "emptyDir"
                and not _SCRATCH_PATH.search(mount_path)
            )
            if data or stateful_scratch:
                problems.append(
                    (
                        f"{workload.pod_path}.volumes[{index}]",
                        f"container {container.name} keeps {mount_path} on {kind} volume "
                        f"{volume['name']}, which does not outlive the pod",
                    )
                )
    if problems:
        yield failed(problems[0][0], "; ".join(p[1] for p in problems))
    else:
        yield passed(f"{workload.pod_path}.volumes", "no data path is on an ephemeral volume")

"""Bounded work per object: caps checked before the rules run, and an evaluation deadline.

Every rule is linear in the size of the object it checks, but linear in an unbounded size
is still unbounded: the webhook answers whoever can reach it, and `prodready validate`
reads whatever it is given. So before a workload is evaluated rule by rule, `excess`
compares what its pod template declares with `Limits`; an object over any cap is not
evaluated at all and gets one error finding (PR-LM-001) naming the field and the cap.

Why these caps: Kubernetes sets no count limit on containers, variables or ports, but an
object is at most 3 MiB (etcd's request limit), which allows about 260,000 minimal env
entries. Real pods stay far below the caps: a handful of containers (sidecars included),
tens to a few hundred variables, a few ports and volumes. The caps sit one to two orders of
magnitude above that, so no legitimate workload meets them, while the largest object that
passes them evaluates in a fraction of a second (benchmarks/RESULTS.md).

The deadline is the other half: `Deadline` is a point on a monotonic clock that `evaluate`
checks between objects and between rules (never inside one), raising `DeadlineExceeded`
when it has passed. The clock is injectable, so the engine stays a pure function of its
inputs for tests; callers that need no deadline (the CLI) pass none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prodready.rules.model import ObjectRef

LIMITS_RULE_ID = "PR-LM-001"

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
# Kubernetes' own limit on a container name (a DNS label); an object that is not what the
# apiserver would accept cannot make the message longer than this.
_NAME_CHARS = 63


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The most one workload's pod template may declare and still be evaluated."""

    # containers + initContainers + ephemeralContainers
    containers: int = 500
    env_per_container: int = 5_000
    env_from_per_container: int = 500
    ports_per_container: int = 1_000
    volume_mounts_per_container: int = 1_000
    volumes: int = 1_000
    # env, envFrom, ports and volumeMounts of every container, plus the pod's volumes: what
    # bounds the whole evaluation (500 containers of 5,000 variables each would not be).
    entries: int = 20_000


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Excess:
    """The first cap an object goes over: the field (a path into the object) and why."""

    path: str
    message: str


def _length(value: object) -> int:
    return len(value) if isinstance(value, list) else 0


def excess(pod_spec: Mapping[str, Any], pod_path: str, limits: Limits) -> Excess | None:
    """The first cap `pod_spec` (found at `pod_path` in its object) goes over, or None.

    Only list lengths are read, so this costs time in the number of containers, whatever
    they hold.
    """
    lists = [(field, pod_spec.get(field)) for field in _CONTAINER_LISTS]
    count = sum(_length(value) for _, value in lists)
    if count > limits.containers:
        return Excess(
            f"{pod_path}.containers",
            f"the pod template declares {count:,} containers (containers, initContainers "
            f"and ephemeralContainers together); prodready evaluates at most "
            f"{limits.containers:,} per pod",
        )
    volumes = _length(pod_spec.get("volumes"))
    if volumes > limits.volumes:
        return Excess(
            f"{pod_path}.volumes",
            f"the pod template declares {volumes:,} volumes; prodready evaluates at most "
            f"{limits.volumes:,} per pod",
        )
    entries = volumes
    per_container = (
        ("env", "env entries", limits.env_per_container),
        ("envFrom", "envFrom sources", limits.env_from_per_container),
        ("ports", "ports", limits.ports_per_container),
        ("volumeMounts", "volumeMounts", limits.volume_mounts_per_container),
    )
    for field, containers in lists:
        if not isinstance(containers, list):
            continue
        for index, container in enumerate(containers):
            if not isinstance(container, Mapping):
                continue
            for key, what, cap in per_container:
                length = _length(container.get(key))
                entries += length
                if length > cap:
                    name = str(container.get("name", f"#{index}"))[:_NAME_CHARS]
                    return Excess(
                        f"{pod_path}.{field}[{index}].{key}",
                        f"container {name} declares "
                        f"{length:,} {what}; prodready evaluates at most {cap:,} per container",
                    )
    if entries > limits.entries:
        return Excess(
            pod_path,
            f"the pod template declares {entries:,} env, envFrom, port, volumeMount and "
            f"volume entries in all; prodready evaluates at most {limits.entries:,} per pod",
        )
    return None


class DeadlineExceeded(Exception):  # noqa: N818 - a deadline is exceeded, not an error of ours
    """Evaluation did not finish before its deadline; nothing partial is returned."""

    def __init__(self, seconds: float, ref: ObjectRef | None) -> None:
        where = f" {ref.display()}" if ref is not None else ""
        super().__init__(
            f"prodready could not finish evaluating{where} within {seconds:g} s; "
            "the object is too large or complex to check in time"
        )
        self.seconds = seconds
        self.ref = ref


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on `clock` (monotonic seconds) after which evaluation stops."""

    at: float
    seconds: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(
        cls,
        seconds: float,
        *,
        start: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> Deadline:
        """`seconds` from `start` (default: now, on `clock`)."""
        begin = clock() if start is None else start
        return cls(begin + seconds, seconds, clock)

    def check(self, ref: ObjectRef | None) -> None:
        """Raise `DeadlineExceeded` (naming `ref`) if the deadline has passed."""
        if self.clock() >= self.at:
            raise DeadlineExceeded(self.seconds, ref)

"""Seed section 2, graceful shutdown: PR-GS-001 … PR-GS-003."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import Container, mapping, sequence
from prodready.rules.envvars import ValueState
from prodready.rules.model import JsonPatch
from prodready.rules.subject import Outcome, Subject, failed, passed

# Kubernetes' default grace period, and the checklist's floor when no timeout is declared.
DEFAULT_GRACE_SECONDS = 30
DEFAULT_SHUTDOWN_SECONDS = 30
# The preStop delay we suggest: long enough for kube-proxy and ingress controllers to drop
# the endpoint (they act within a few seconds), short enough not to slow rollouts.
SUGGESTED_PRESTOP_SECONDS = 5

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SLEEP_COMMAND = re.compile(r"\bsleep\s+(\d+(?:\.\d+)?)")
_SHUTDOWN_FLAGS = frozenset(
    {"--timeout-graceful-shutdown", "--graceful-timeout", "--shutdown-timeout"}
)


def parse_duration(value: str) -> float | None:
    """Seconds in `30`, `30s`, `1m30s`, `1500ms`; None if it is not a duration."""
    text = value.strip().lower()
    if not text:
        return None
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return total if position == len(text) else None


def prestop_seconds(container: Container) -> float:
    """How long the container's preStop hook delays SIGTERM (0 when it does not sleep)."""
    pre_stop = mapping(mapping(container.spec.get("lifecycle")).get("preStop"))
    sleep = mapping(pre_stop.get("sleep")).get("seconds")
    if isinstance(sleep, int | float):
        return float(sleep)
    command = " ".join(str(p) for p in sequence(mapping(pre_stop.get("exec")).get("command")))
    match = _SLEEP_COMMAND.search(command)
    return float(match.group(1)) if match else 0.0


def _grace(subject: Subject) -> int:
    grace = subject.workload.pod_spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
    return grace if isinstance(grace, int) else DEFAULT_GRACE_SECONDS


def declared_shutdown_timeout(subject: Subject, container: Container) -> tuple[float, str] | None:
    """(seconds, where) of the container's declared shutdown timeout, if it declares one.

    Read from the shutdown-timeout variable (SHUTDOWN_TIMEOUT) or from the common server
    flags (`--timeout-graceful-shutdown` of uvicorn, `--graceful-timeout` of gunicorn,
    `--shutdown-timeout`).
    """
    name = subject.settings.shutdown_timeout
    value = subject.env(container, name)
    if value.state is ValueState.LITERAL and value.value is not None:
        seconds = parse_duration(value.value)
        if seconds is not None:
            return seconds, f"{name}={value.value} in {container.name}"
    words = [
        str(w)
        for w in (*sequence(container.spec.get("command")), *sequence(container.spec.get("args")))
    ]
    for position, word in enumerate(words):
        flag, _, inline = word.partition("=")
        if flag not in _SHUTDOWN_FLAGS:
            continue
        text = inline or (words[position + 1] if position + 1 < len(words) else "")
        seconds = parse_duration(text)
        if seconds is not None:
            return seconds, f"{flag} {text} in {container.name}"
    return None


def required_grace(subject: Subject, *, extra_delay: float = 0.0) -> tuple[int, str]:
    """The grace period the pod needs, and why.

    A container that declares its shutdown timeout needs that long *after* SIGTERM, and
    SIGTERM only comes once its preStop delay is over; both come out of the same grace
    period. A container that declares nothing needs the checklist's 30 s. Computed once per
    workload (PR-GS-002 asks for each container that lacks a preStop delay).
    """
    return subject.fact(
        ("required_grace", extra_delay), lambda: _required_grace(subject, extra_delay)
    )


def _required_grace(subject: Subject, extra_delay: float) -> tuple[int, str]:
    required = 0.0
    reason = f"the checklist's default of {DEFAULT_SHUTDOWN_SECONDS} s"
    for container in subject.workload.containers:
        declared = declared_shutdown_timeout(subject, container)
        if declared is None:
            need, why = float(DEFAULT_SHUTDOWN_SECONDS), reason
        else:
            need, why = declared
            delay = prestop_seconds(container) + extra_delay
            if delay:
                need += delay
                why += f" plus a {delay:g} s preStop delay"
        if need > required:
            required, reason = need, why
    if required == 0.0:
        required = float(DEFAULT_SHUTDOWN_SECONDS)
    return int(-(-required // 1)), reason  # round up to whole seconds


def grace_period(subject: Subject) -> Iterator[Outcome]:
    """PR-GS-001: terminationGracePeriodSeconds covers the declared shutdown timeout."""
    workload = subject.workload
    path = f"{workload.pod_path}.terminationGracePeriodSeconds"
    grace = _grace(subject)
    required, reason = required_grace(subject)
    if grace >= required:
        yield passed(path, f"terminationGracePeriodSeconds is {grace} s (needs {required} s)")
        return
    patch: JsonPatch | None = [
        {
            "op": "add",
            "path": f"{workload.pod_pointer}/terminationGracePeriodSeconds",
            "value": required,
        }
    ]
    yield failed(
        path,
        f"terminationGracePeriodSeconds is {grace} s but shutdown needs {required} s ({reason})",
        patch=None if subject.rendered else patch,
    )


def _prestop_patch(subject: Subject, container: Container) -> JsonPatch:
    lifecycle = container.spec.get("lifecycle")
    hook = {"sleep": {"seconds": SUGGESTED_PRESTOP_SECONDS}}
    patch: JsonPatch
    if isinstance(lifecycle, Mapping):
        patch = [{"op": "add", "path": f"{container.pointer}/lifecycle/preStop", "value": hook}]
    else:
        patch = [
            {"op": "add", "path": f"{container.pointer}/lifecycle", "value": {"preStop": hook}}
        ]
    # The delay comes out of the grace period: keep a declared shutdown budget intact.
    required, _ = required_grace(subject, extra_delay=SUGGESTED_PRESTOP_SECONDS)
    if _grace(subject) < required:
        patch.append(
            {
                "op": "add",
                "path": f"{subject.workload.pod_pointer}/terminationGracePeriodSeconds",
                "value": required,
            }
        )
    return patch


def prestop_delay(subject: Subject) -> Iterator[Outcome]:
    """PR-GS-002: a preStop delay lets endpoints drain before SIGTERM."""
    for container in subject.workload.serving_containers:
        path = f"{container.path}.lifecycle.preStop"
        pre_stop = mapping(mapping(container.spec.get("lifecycle")).get("preStop"))
        if prestop_seconds(container) > 0 or "httpGet" in pre_stop:
            yield passed(path, f"container {container.name} drains before SIGTERM", container)
        else:
            yield failed(
                path,
                f"container {container.name} gets SIGTERM while its endpoint is still "
                "receiving traffic: no preStop delay",
                container,
                None if subject.rendered else _prestop_patch(subject, container),
            )


def _is_zero(value: Any) -> bool:
    return value == 0 or (isinstance(value, str) and value.strip() in ("0", "0%"))


def _scaled(value: Any, replicas: int, *, round_up: bool) -> int | None:
    """An int-or-percent as the controller resolves it against `replicas` (None: unknown)."""
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text.endswith("%") or not text[:-1].isdigit():
        return None
    scaled = replicas * int(text[:-1])
    return -(-scaled // 100) if round_up else scaled // 100


def _peak_replicas(subject: Subject) -> int:
    """The most replicas the workload runs: its HPA's maxReplicas, else its replicas."""
    autoscaler = subject.workload.autoscaler
    if autoscaler is not None:
        peak = mapping(autoscaler.get("spec")).get("maxReplicas")
        if isinstance(peak, int):
            return peak
    return subject.workload.replicas


def rolling_update(subject: Subject) -> Iterator[Outcome]:
    """PR-GS-003: rolling updates never drop below desired capacity (maxUnavailable 0).

    A percentage is resolved as the Deployment controller does (maxUnavailable rounded
    down, maxSurge up, and 1 unavailable when both come to 0), at the most replicas the
    workload runs: the default 25 % takes no pod out of a Deployment of 1 to 3 replicas."""
    workload = subject.workload
    field = "strategy" if workload.kind == "Deployment" else "updateStrategy"
    strategy = mapping(workload.spec.get(field))
    kind = strategy.get("type", "RollingUpdate")
    rolling = mapping(strategy.get("rollingUpdate"))
    path = f"spec.{field}"
    default_unavailable = "25%" if workload.kind == "Deployment" else 1
    unavailable = rolling.get("maxUnavailable", default_unavailable)
    if kind == "RollingUpdate" and _is_zero(unavailable):
        yield passed(f"{path}.rollingUpdate.maxUnavailable", "rolling updates keep full capacity")
        return
    if kind == "RollingUpdate" and workload.kind == "Deployment":
        peak = _peak_replicas(subject)
        down = _scaled(unavailable, peak, round_up=False)
        up = _scaled(rolling.get("maxSurge", "25%"), peak, round_up=True)
        if down == 0 and up is not None and up > 0:
            yield passed(
                f"{path}.rollingUpdate.maxUnavailable",
                f"maxUnavailable {unavailable} of {peak} replica(s) rounds down to 0: rolling "
                "updates keep full capacity",
            )
            return
    surge = rolling.get("maxSurge", "25%" if workload.kind == "Deployment" else 0)
    if _is_zero(surge):
        surge = "25%" if workload.kind == "Deployment" else 1
    patch: JsonPatch = [
        {
            "op": "add",
            "path": f"/spec/{field}",
            "value": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": surge},
            },
        }
    ]
    if kind != "RollingUpdate":
        message = f"the {kind} strategy stops every pod before starting new ones"
        path = f"{path}.type"
    else:
        message = f"rolling updates may take {unavailable} of the pods out of service"
        path = f"{path}.rollingUpdate.maxUnavailable"
    yield failed(path, message, patch=None if subject.rendered else patch)

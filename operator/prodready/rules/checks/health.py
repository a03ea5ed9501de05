"""Seed section 1, health checks: PR-HC-001 … PR-HC-004.

Every long-running container needs a liveness probe (a deadlocked worker is as stuck as a
deadlocked server); a readiness probe, probe quality and dependency checks are about the
containers that serve traffic (rules.context: "Serving containers").

A probe fix never guesses an endpoint: it is offered only when the health path is
declared, by the `prodready.io/health-path` annotation (workload or pod template) or the
policy's `health_path`, on a port named for HTTP (or the container's only port).
Otherwise the finding says what to set and carries no patch: a guessed `/health` on the
first port of a stock image would put its pods in a restart loop.

Declared dependencies (PR-HC-004) are the names in the `prodready.io/dependencies`
annotation (what the renderer writes) plus connection variables such as DATABASE_URL,
REDIS_URL, KAFKA_BROKERS or PAYMENTS_API_URL in the container's own `env`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import (
    DEPENDENCIES_KEY,
    HEALTH_PATH_KEY,
    Container,
    mapping,
    sequence,
    serves_by_name,
)
from prodready.rules.envvars import env_entries
from prodready.rules.model import JsonPatch
from prodready.rules.subject import Outcome, Subject, failed, judged, passed

# Kubernetes' defaults for unset probe fields.
DEFAULT_PERIOD_SECONDS = 10

# The seed's probe timings: liveness (10 s delay, every 30 s), readiness (5 s, every 10 s).
_SEED_TIMINGS = {"livenessProbe": (10, 30), "readinessProbe": (5, 10)}

_NO_OP_COMMANDS = frozenset({"true", "/bin/true", "/usr/bin/true", ":", "exit 0", "exit", ""})
_SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "/bin/sh", "/bin/bash", "/bin/ash"})

# Variables that declare a dependency the pod needs to serve (seed §1: database, Redis,
# external services). A dependency name plus a connection-ish suffix.
_DEPENDENCY_NAME = re.compile(
    r"(^|_)(DATABASE|DB|POSTGRES|POSTGRESQL|PG|MYSQL|MARIADB|MONGO|MONGODB|REDIS|MEMCACHED"
    r"|RABBITMQ|AMQP|KAFKA|NATS|ELASTICSEARCH|OPENSEARCH|CASSANDRA|CLICKHOUSE)"
    r"(_[A-Z0-9]+)*_(URL|URI|DSN|HOST|ADDR|ADDRESS|SERVERS|BROKERS)$"
    r"|_(API|SERVICE)_(URL|URI|ENDPOINT)$"
)
# Words that mark a probe endpoint as one that checks dependencies.
_DEPENDENCY_PATH = re.compile(r"ready|readiness|deps|dependenc|database|\bdb\b|redis", re.I)


def _probe(container: Container, field: str) -> Mapping[str, Any] | None:
    probe = container.spec.get(field)
    return probe if isinstance(probe, Mapping) and probe else None


def declared_health_path(subject: Subject) -> str | None:
    """The health path the workload declares (annotation), else the policy's default."""
    workload = subject.workload
    for metadata in (workload.metadata, workload.template_metadata):
        value = mapping(metadata.get("annotations")).get(HEALTH_PATH_KEY)
        if isinstance(value, str) and value.startswith("/") and not any(c.isspace() for c in value):
            return value
    return subject.settings.health_path


def _health_port(container: Container) -> object:
    """The port a probe fix may use: one named for HTTP, or the only port; else None."""
    ports = container.ports()
    named = [p for p in ports if serves_by_name(p)]
    chosen = named[0] if named else (ports[0] if len(ports) == 1 else None)
    if chosen is None:
        return None
    return chosen.get("name") or chosen.get("containerPort")


def _probe_fix(subject: Subject, container: Container, field: str) -> tuple[JsonPatch | None, str]:
    """(patch, advice): an httpGet probe on the declared health path, or what to declare."""
    path = declared_health_path(subject)
    port = _health_port(container)
    if path is None:
        return None, (
            f"; add a {field} on its health endpoint (declare it in the annotation "
            f"{HEALTH_PATH_KEY} to get a fix)"
        )
    if port is None:
        return None, f"; add a {field} (httpGet {path} on the port that serves it)"
    delay, period = _SEED_TIMINGS[field]
    patch: JsonPatch = [
        {
            "op": "add",
            "path": f"{container.pointer}/{field}",
            "value": {
                "httpGet": {"path": path, "port": port},
                "initialDelaySeconds": delay,
                "periodSeconds": period,
            },
        }
    ]
    return patch, ""


def _require_probe(subject: Subject, field: str, containers: list[Container]) -> Iterator[Outcome]:
    for container in containers:
        path = f"{container.path}.{field}"
        if _probe(container, field) is not None:
            yield passed(path, f"container {container.name} has a {field}", container)
            continue
        does = "serves traffic" if container.serving else "runs continuously"
        patch, advice = (None, "") if subject.rendered else _probe_fix(subject, container, field)
        yield failed(
            path, f"container {container.name} {does} but has no {field}{advice}", container, patch
        )


def liveness_probe(subject: Subject) -> Iterator[Outcome]:
    """PR-HC-001: every long-running container has a liveness probe."""
    yield from _require_probe(subject, "livenessProbe", subject.workload.containers)


def readiness_probe(subject: Subject) -> Iterator[Outcome]:
    """PR-HC-002: every serving container has a readiness probe."""
    yield from _require_probe(subject, "readinessProbe", subject.workload.serving_containers)


def _is_no_op(command: object) -> bool:
    parts = [str(p).strip() for p in sequence(command)]
    if not parts:
        return True
    if len(parts) >= 3 and parts[0] in _SHELLS and parts[1] in ("-c", "-ec", "-ce"):
        script = parts[2].strip().rstrip(";").strip()
        return script in _NO_OP_COMMANDS or script.startswith("echo ")
    joined = " ".join(parts)
    return joined in _NO_OP_COMMANDS or parts[0].rsplit("/", 1)[-1] == "echo"


def _handler_problem(probe: Mapping[str, Any]) -> tuple[str, str] | None:
    """(field, problem) when the probe does not check a health endpoint."""
    if "httpGet" in probe or "grpc" in probe:
        return None
    if "exec" in probe:
        if _is_no_op(mapping(probe.get("exec")).get("command")):
            return "exec", "is an exec no-op that always succeeds"
        return None
    if "tcpSocket" in probe:
        return "tcpSocket", "only checks that the port accepts connections"
    return "", "has no handler (httpGet, grpc, exec or tcpSocket)"


def _period(probe: Mapping[str, Any]) -> int:
    period = probe.get("periodSeconds", DEFAULT_PERIOD_SECONDS)
    return period if isinstance(period, int) else DEFAULT_PERIOD_SECONDS


def probe_quality(subject: Subject) -> Iterator[Outcome]:
    """PR-HC-003: probes are HTTP/gRPC health checks with sane timings."""
    for container in subject.workload.containers:
        liveness = _probe(container, "livenessProbe")
        readiness = _probe(container, "readinessProbe")
        if liveness is None and readiness is None:
            continue  # PR-HC-001/002 report the missing probes
        problems: list[tuple[str, str]] = []
        for field, probe in (("livenessProbe", liveness), ("readinessProbe", readiness)):
            if probe is None:
                continue
            problem = _handler_problem(probe)
            if problem is not None:
                suffix = f".{problem[0]}" if problem[0] else ""
                problems.append((f"{field}{suffix}", f"the {field} {problem[1]}"))
        if (
            liveness is not None
            and readiness is not None
            and _period(readiness) > _period(liveness)
        ):
            problems.append(
                (
                    "readinessProbe.periodSeconds",
                    f"readiness is checked less often ({_period(readiness)} s) than liveness "
                    f"({_period(liveness)} s)",
                )
            )
        if (
            liveness is not None
            and not liveness.get("initialDelaySeconds")
            and _probe(container, "startupProbe") is None
        ):
            problems.append(
                (
                    "livenessProbe.initialDelaySeconds",
                    "the livenessProbe has no initialDelaySeconds and there is no startupProbe, "
                    "so a slow start is killed",
                )
            )
        yield judged(
            container,
            problems,
            container.path,
            f"container {container.name} probes are sane health checks",
        )


def declared_dependencies(subject: Subject) -> list[str]:
    """Dependency names from the `prodready.io/dependencies` annotation (workload or pods).

    The renderer writes it as a JSON list of `{"name", "type"}`; a malformed value declares
    nothing rather than failing the object. Parsed once per workload, not per container.
    """
    return subject.fact("declared_dependencies", lambda: _declared_dependencies(subject))


def _declared_dependencies(subject: Subject) -> list[str]:
    names: dict[str, None] = {}  # ordered and deduplicated in one pass
    workload = subject.workload
    for metadata in (workload.metadata, workload.template_metadata):
        raw = mapping(metadata.get("annotations")).get(DEPENDENCIES_KEY)
        if not isinstance(raw, str):
            continue
        try:
            parsed = json.loads(raw)
        except ValueError:
            continue
        for item in sequence(parsed):
            name = mapping(item).get("name")
            if isinstance(name, str):
                names.setdefault(name)
    return list(names)


def _dependencies(subject: Subject, container: Container) -> list[str]:
    from_env = [
        str(entry["name"])
        for _, entry in env_entries(container)
        if _DEPENDENCY_NAME.search(str(entry["name"]).upper())
    ]
    return [*declared_dependencies(subject), *from_env]


def _same_check(first: Mapping[str, Any], second: Mapping[str, Any]) -> bool:
    for handler in ("httpGet", "grpc", "exec", "tcpSocket"):
        if handler in first or handler in second:
            return first.get(handler) == second.get(handler)
    return False


def dependencies_in_readiness(subject: Subject) -> Iterator[Outcome]:
    """PR-HC-004: declared dependencies are checked by readiness, not liveness."""
    for container in subject.workload.serving_containers:
        dependencies = _dependencies(subject, container)
        if not dependencies:
            continue
        named = ", ".join(dependencies)
        liveness = _probe(container, "livenessProbe")
        readiness = _probe(container, "readinessProbe")
        if readiness is None:
            yield failed(
                f"{container.path}.readinessProbe",
                f"container {container.name} depends on {named} but no readinessProbe "
                "takes it out of the Service when they fail",
                container,
            )
            continue
        if liveness is not None and _same_check(liveness, readiness):
            yield failed(
                f"{container.path}.livenessProbe",
                f"container {container.name} depends on {named} and its livenessProbe is the "
                "same check as its readinessProbe: a dependency outage restarts every pod",
                container,
            )
            continue
        path = str(mapping(liveness.get("httpGet")).get("path", "")) if liveness else ""
        if _DEPENDENCY_PATH.search(path):
            yield failed(
                f"{container.path}.livenessProbe.httpGet.path",
                f"container {container.name}: the livenessProbe endpoint {path} looks like a "
                "dependency check: a dependency outage restarts every pod",
                container,
            )
            continue
        yield passed(
            f"{container.path}.readinessProbe",
            f"container {container.name}: dependencies ({named}) are left to readiness",
            container,
        )

"""Seed sections 3 and 4, logging and error handling: PR-LG-001 … PR-LG-003, PR-ER-001."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prodready.rules.checks.conventions import third_party
from prodready.rules.context import Container
from prodready.rules.envvars import EnvValue, ValueState, env_entries
from prodready.rules.model import JsonPatch
from prodready.rules.subject import Outcome, Subject, failed, passed

# Level names at INFO or above, in the spellings common logging libraries accept.
_QUIET_LEVELS = frozenset(
    {"info", "notice", "warn", "warning", "error", "err", "critical", "crit", "fatal", "panic"}
)
_VERBOSE_LEVELS = frozenset({"debug", "trace", "all", "verbose", "silly", "fine", "finest"})
# Python's numeric INFO.
_INFO_NUMBER = 20
_TRUE = frozenset({"1", "true", "yes", "y", "on", "t"})


def _set_patch(container: Container, value: EnvValue, name: str, wanted: str) -> JsonPatch | None:
    """Set `name=wanted` in the container's env, when the manifest itself holds the value."""
    if value.state is ValueState.MISSING and value.env_index is None:
        entry = {"name": name, "value": wanted}
        if isinstance(container.spec.get("env"), list):
            return [{"op": "add", "path": f"{container.pointer}/env/-", "value": entry}]
        return [{"op": "add", "path": f"{container.pointer}/env", "value": [entry]}]
    if value.patchable:
        pointer = f"{container.pointer}/env/{value.env_index}/value"
        return [{"op": "replace", "path": pointer, "value": wanted}]
    return None


def _where(container: Container, value: EnvValue) -> str:
    if value.env_index is not None:
        suffix = ".value" if value.source == "env" else ""
        return f"{container.path}.env[{value.env_index}]{suffix}"
    if value.state is ValueState.MISSING:
        return f"{container.path}.env"
    return f"{container.path}.envFrom"


def _unknown(container: Container, name: str, value: EnvValue) -> Outcome:
    return passed(
        _where(container, value),
        f"container {container.name}: {name} comes from {value.source}; its value is not "
        "visible here and is taken as set",
        container,
    )


Judge = Callable[[Container, EnvValue, str], Outcome]


def _own_variable(subject: Subject, name: str, judge: Judge) -> Iterator[Outcome]:
    """`judge(container, value, where)` for each container's value of the app's own
    variable `name`; a third-party container, or a value not visible here, is an outcome
    already (a note, a pass)."""
    for container in subject.workload.containers:
        note = third_party(subject, container, name)
        if note is not None:
            yield note
            continue
        value = subject.env(container, name)
        if value.state is ValueState.UNKNOWN:
            yield _unknown(container, name, value)
        else:
            yield judge(container, value, _where(container, value))


def json_logs(subject: Subject) -> Iterator[Outcome]:
    """PR-LG-001: logs are JSON (the log-format setting is `json`)."""
    name = subject.settings.log_format

    def judge(container: Container, value: EnvValue, where: str) -> Outcome:
        if value.state is ValueState.LITERAL and (value.value or "").strip().lower() == "json":
            return passed(where, f"container {container.name} logs JSON", container)
        shown = "not set" if value.state is ValueState.MISSING else f"{value.value!r}"
        return failed(
            where,
            f"container {container.name}: {name} is {shown}, not 'json'",
            container,
            None if subject.rendered else _set_patch(container, value, name, "json"),
        )

    return _own_variable(subject, name, judge)


def _level_ok(level: str) -> bool | None:
    text = level.strip().lower()
    if text in _QUIET_LEVELS:
        return True
    if text in _VERBOSE_LEVELS:
        return False
    if text.isdigit():
        return int(text) >= _INFO_NUMBER
    return None


def log_level(subject: Subject) -> Iterator[Outcome]:
    """PR-LG-002: the log level is INFO or above in prod."""
    name = subject.settings.log_level

    def judge(container: Container, value: EnvValue, where: str) -> Outcome:
        if value.state is ValueState.MISSING:
            return passed(
                where,
                f"container {container.name}: {name} not set (the default is INFO)",
                container,
            )
        verdict = _level_ok(value.value or "")
        if verdict:
            return passed(where, f"container {container.name} logs at {value.value}", container)
        reason = "below INFO" if verdict is False else "not a recognised level"
        return failed(
            where,
            f"container {container.name}: {name}={value.value} is {reason}",
            container,
            None if subject.rendered else _set_patch(container, value, name, "INFO"),
        )

    return _own_variable(subject, name, judge)


def no_literal_secrets(subject: Subject) -> Iterator[Outcome]:
    """PR-LG-003: no sensitive-looking variable carries a literal value (never echo it)."""
    settings = subject.settings
    for container in subject.workload.all_containers:
        found = False
        for index, entry in env_entries(container):
            if "valueFrom" in entry:
                continue
            value = entry.get("value")
            reason = settings.secret_reason(str(entry["name"]), "" if value is None else str(value))
            if reason is not None:
                found = True
                yield failed(
                    f"{container.path}.env[{index}].value",
                    f"container {container.name}: {reason}",
                    container,
                )
        if not found:
            yield passed(
                f"{container.path}.env",
                f"container {container.name} has no literal secret-looking values",
                container,
            )


def debug_off(subject: Subject) -> Iterator[Outcome]:
    """PR-ER-001: DEBUG (stack traces in responses) is off in prod."""
    name = subject.settings.debug

    def judge(container: Container, value: EnvValue, where: str) -> Outcome:
        if value.state is ValueState.LITERAL and (value.value or "").strip().lower() in _TRUE:
            return failed(
                where,
                f"container {container.name}: {name}={value.value} shows stack traces to clients",
                container,
                None if subject.rendered else _set_patch(container, value, name, "false"),
            )
        return passed(where, f"container {container.name}: {name} is off", container)

    return _own_variable(subject, name, judge)

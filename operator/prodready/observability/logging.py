"""One log setup for the operator and the libraries under it (kopf, aiohttp, asyncio).

structlog renders every line, whoever logged it: the operator's own structlog loggers and
the stdlib loggers of kopf, aiohttp and asyncio all end in one handler whose
`ProcessorFormatter` adds the level, a UTC timestamp, the logger name, the reconcile
context (`namespace`, `name`, `uid`, `reconcile_id`) and kopf's object reference, masks
anything that looks secret, and renders JSON (or console text for local runs).

Redaction is a safety net for what looks secret by its key (`password: ...`, an EnvVar
named `DB_TOKEN`, `user:pass@` in a URL): a workload may carry a literal password in its
env, and kopf logs object bodies at DEBUG. It does not mask known values: the one place
that reads a Secret keeps its key names and drops the values on the spot, so no value can
reach a line, and masking values would turn ordinary words ("team-a") into
***REDACTED***.
"""

from __future__ import annotations

import logging
import re
import secrets
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Final, TextIO, cast

# structlog's development renderer formats with `rich` whenever it is importable, and rich is
# installed only as a dependency of the CEL library's own command line: imported with
# structlog it would hold rich and pygments (3 MiB) in every process for a console renderer
# configured below to print plainly. So structlog is imported with rich hidden, once.
if "structlog" not in sys.modules and "rich" not in sys.modules:
    sys.modules["rich"] = None  # type: ignore[assignment]
    try:
        import structlog
    finally:
        del sys.modules["rich"]
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from prodready.api.sensitive import SENSITIVE_WORDS, sensitive_names

__all__ = [
    "REDACTED",
    "configure_logging",
    "get_logger",
    "is_sensitive_key",
    "reconcile_context",
    "redact",
]

REDACTED: Final = "***REDACTED***"

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR")
FORMATS: Final = ("json", "console")

# Libraries whose stdlib loggers are routed through the one handler at the chosen level.
LIBRARY_LOGGERS: Final = ("kopf", "aiohttp", "asyncio")

# Keys are judged as variable names are (api.sensitive: whole words, qualifiers such as
# `secret_name`, `token_file`, `password_ref` stay readable, which is what an operator
# debugging a missing Secret reference needs to see), with the PR-LG-003 words plus words
# that only show up as log keys (HTTP headers, sessions, cards).
_SENSITIVE_KEYS: Final = sensitive_names(
    (
        *SENSITIVE_WORDS,
        "pwd",
        "secrets",
        "tokens",
        "card_number",
        "cvv",
        "cookie",
        "cookies",
        "session_id",
        "bearer",
    )
)

# The same idea inside free text (kopf's DEBUG dumps of bodies and patches, messages built
# with %-formatting): a sensitive-looking key followed by `=` or `:` and a value, in
# logfmt, query-string, JSON or Python-repr spelling. Substring matching here: text has
# no reliable word boundaries (`DB_PASSWORD`, `dbPassword`).
_SENSITIVE_FRAGMENT: Final = (
    r"pass(?:word|wd|phrase)|secret|token|api[-_]?key|authorization|credit[-_]?card"
    r"|private[-_]?key|access[-_]?key|credentials?|cookie|session[-_]?id"
)
_KEY_VALUE_IN_TEXT: Final = re.compile(
    # The look-behind starts a key only at a word start: without it a long unbroken word
    # would be rescanned from every position (quadratic time).
    r"(?P<key>(?<![\w.-])(?P<quote>[\"']?)[\w.-]*(?:" + _SENSITIVE_FRAGMENT + r")[\w.-]*(?P=quote)"
    r"\s*[:=]\s*)"
    r"(?P<value>\"[^\"]*\"|'[^']*'|(?:(?:bearer|basic|token)\s+)?[^\s,;&'\"}\])]+)",
    re.IGNORECASE,
)
# A Kubernetes EnvVar in repr or JSON text: {'name': 'DB_PASSWORD', 'value': 'hunter2'}.
_ENV_VAR_IN_TEXT: Final = re.compile(
    r"(?P<head>[\"']name[\"']\s*:\s*[\"'][^\"']*(?:" + _SENSITIVE_FRAGMENT + r")[^\"']*[\"']"
    r"\s*,\s*[\"']value[\"']\s*:\s*)(?P<value>\"[^\"]*\"|'[^']*')",
    re.IGNORECASE,
)
# Credentials in a URL: scheme://user:password@host.
_URL_PASSWORD: Final = re.compile(
    r"(?P<head>(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^\s:/@]+:)[^\s@/]+(?=@)", re.I
)


def is_sensitive_key(key: str) -> bool:
    """True when a mapping key looks like it holds a secret (`password`, `apiKey`, …)."""
    return _SENSITIVE_KEYS.matches(key)


def _mask_quoted_or_bare(value: str) -> str:
    if value[:1] in {'"', "'"}:
        return f"{value[0]}{REDACTED}{value[0]}"
    return REDACTED


def _redact_text(text: str) -> str:
    text = _ENV_VAR_IN_TEXT.sub(
        lambda match: match["head"] + _mask_quoted_or_bare(match["value"]), text
    )
    text = _KEY_VALUE_IN_TEXT.sub(
        lambda match: match["key"] + _mask_quoted_or_bare(match["value"]), text
    )
    return _URL_PASSWORD.sub(lambda match: match["head"] + REDACTED, text)


def _is_sensitive_env_var(mapping: Mapping[Any, Any]) -> bool:
    # The Kubernetes EnvVar shape: the secret is in "value", its nature in "name".
    name = mapping.get("name")
    return "value" in mapping and isinstance(name, str) and is_sensitive_key(name)


def redact(obj: Any) -> Any:
    """A copy of `obj` with secrets masked as `***REDACTED***`.

    Masks the values of sensitive-looking keys (at any depth of dicts, lists and tuples),
    the `value` of Kubernetes EnvVars with a sensitive name, and `key=value` /
    `"key": "value"` / URL-password patterns inside strings. Other objects are turned into
    their (masked) string form, which is how they would be logged anyway.
    """
    if isinstance(obj, str):
        return _redact_text(obj)
    if obj is None or isinstance(obj, bool | int | float):
        return obj
    if isinstance(obj, Mapping):
        env_var = _is_sensitive_env_var(obj)
        result: dict[Any, Any] = {}
        for key, value in obj.items():
            sensitive = (isinstance(key, str) and is_sensitive_key(key)) or (
                env_var and key == "value"
            )
            result[key] = REDACTED if sensitive else redact(value)
        return result
    if isinstance(obj, list | tuple | set | frozenset):
        return [redact(item) for item in obj]
    return _redact_text(str(obj))


def _redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: mask secrets in every value of the event, the message included."""
    return cast(EventDict, redact(event_dict))


# kopf's object context (ObjectLogger `extra`) and bookkeeping attributes on its records.
_KOPF_RECORD_ATTRIBUTES: Final = frozenset({"k8s_ref", "k8s_skip", "settings"})
# Attributes every LogRecord has, plus those formatters and structlog set on it.
_STANDARD_RECORD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__
) | {"message", "asctime", "taskName", "_logger", "_name"}


def _add_record_context(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor for stdlib records: kopf's object reference and any other `extra` fields."""
    # Always present here: ProcessorFormatter puts the record in before the foreign chain.
    record: logging.LogRecord = event_dict["_record"]
    reference = getattr(record, "k8s_ref", None)
    if isinstance(reference, Mapping):
        for field in ("namespace", "name", "uid", "kind"):
            value = reference.get(field)
            # setdefault: inside reconcile_context the same object is already named.
            if value is not None:
                event_dict.setdefault(field, value)
    stack = event_dict.pop("stack_info", None)
    if stack:
        # Already text for stdlib records; StackInfoRenderer would render our own stack.
        event_dict["stack"] = stack
    for key, value in record.__dict__.items():
        if key not in _STANDARD_RECORD_ATTRIBUTES and key not in _KOPF_RECORD_ATTRIBUTES:
            event_dict.setdefault(key, value)
    return event_dict


_LEADING_KEYS: Final = ("timestamp", "level", "logger", "message")


def _leading_keys_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Processor: the keys a person scans for come first in every JSON line."""
    ordered = {key: event_dict.pop(key) for key in _LEADING_KEYS if key in event_dict}
    ordered.update(event_dict)
    return ordered


class _OperatorHandler(logging.StreamHandler[TextIO]):
    """The one handler this module installs; its type lets a second setup find it."""


_PLAIN_FORMATTER: Final = logging.Formatter()


class _RedactingFilter(logging.Filter):
    """Masks kopf object-logger messages before any handler sees them.

    kopf posts INFO+ lines of its object loggers as Kubernetes Events through its own
    handler, outside our formatter; masking the record itself covers both paths.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed %-format: leave it for the handler's own error reporting.
            return True
        record.msg = _redact_text(message)
        record.args = ()
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text, so kopf's event poster sends this one.
            record.exc_text = _redact_text(_PLAIN_FORMATTER.formatException(record.exc_info))
        return True


def _is_replaceable_handler(handler: logging.Handler) -> bool:
    # Ours from an earlier call, kopf's CLI handler, and basicConfig-style console handlers;
    # capture handlers (pytest's caplog) are subclasses and stay.
    if isinstance(handler, _OperatorHandler) or type(handler).__name__ == "_KopfStreamHandler":
        return True
    return type(handler) is logging.StreamHandler and getattr(handler, "stream", None) in (
        sys.stdout,
        sys.stderr,
    )


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str, fmt: str = "json", stream: TextIO | None = None) -> None:
    """Route all logging (structlog and stdlib: kopf, aiohttp, asyncio) to one handler.

    `level` is DEBUG, INFO, WARNING or ERROR; `fmt` is "json" (one object per line) or
    "console". Output goes to `stream` (default: standard output). Calling it again
    replaces the previous setup, so there is never more than one copy of a line.
    """
    level_name = level.upper()
    if level_name not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)} (got {level!r})")
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    numeric_level = logging.getLevelNamesMapping()[level_name]

    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        final: list[Processor] = [
            structlog.processors.EventRenamer("message"),
            _leading_keys_first,
            renderer,
        ]
    else:
        output = stream if stream is not None else sys.stdout
        renderer = structlog.dev.ConsoleRenderer(
            colors=output.isatty(),
            # Tracebacks are already text (format_exc_info) so they pass through redaction;
            # pretty formatters would re-render them from exc_info, locals included.
            exception_formatter=structlog.dev.plain_traceback,
        )
        final = [renderer]

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared_processors(), _add_record_context],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_event,
            *final,
        ],
    )
    handler = _OperatorHandler(stream if stream is not None else sys.stdout)
    handler.setFormatter(formatter)
    # Also on the handler: a library that lowers its own logger's level must still not
    # get DEBUG lines out of a process configured for INFO.
    handler.setLevel(numeric_level)

    root = logging.getLogger()
    for old in [h for h in root.handlers if _is_replaceable_handler(h)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)

    for name in LIBRARY_LOGGERS:
        library_logger = logging.getLogger(name)
        library_logger.setLevel(logging.NOTSET)
        library_logger.propagate = True
    # kopf's CLI silences asyncio with a NullHandler and no propagation; undo that, since
    # "Task exception was never retrieved" is exactly what production logs must show.
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.handlers = [
        h for h in asyncio_logger.handlers if not isinstance(h, logging.NullHandler)
    ]
    # One line per HTTP request (probes every few seconds, webhook calls) would drown the
    # operator's own lines; errors of the servers are logged by "aiohttp.server".
    logging.getLogger("aiohttp.access").setLevel(max(logging.WARNING, numeric_level))

    kopf_objects = logging.getLogger("kopf.objects")
    for old_filter in [f for f in kopf_objects.filters if isinstance(f, _RedactingFilter)]:
        kopf_objects.removeFilter(old_filter)
    kopf_objects.addFilter(_RedactingFilter())

    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: loggers created at import time must follow a later reconfiguration.
        cache_logger_on_first_use=False,
    )


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    """A structlog logger named `name` (use the module's `__name__`)."""
    return structlog.stdlib.get_logger(name)


@contextmanager
def reconcile_context(namespace: str, name: str, uid: str | None) -> Iterator[str]:
    """Tag every line logged inside (by anyone, kopf included) with the object and a
    fresh short `reconcile_id`; yields that id. Nested contexts restore the outer one."""
    reconcile_id = secrets.token_hex(4)
    # uid is bound even when None, so a nested context never inherits the outer object's.
    with structlog.contextvars.bound_contextvars(
        namespace=namespace, name=name, uid=uid, reconcile_id=reconcile_id
    ):
        yield reconcile_id

"""Structured logging: one JSON setup for structlog and stdlib (kopf) loggers, redaction."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
import structlog

from prodready.observability.logging import (
    REDACTED,
    configure_logging,
    get_logger,
    is_sensitive_key,
    reconcile_context,
    redact,
)

_WATCHED_LOGGERS = ("kopf", "kopf.objects", "aiohttp", "aiohttp.access", "asyncio")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Give every test a clean slate and leave the process as it found it."""
    root = logging.getLogger()
    saved_root = (list(root.handlers), root.level)
    saved = {
        name: (
            logging.getLogger(name).level,
            logging.getLogger(name).propagate,
            list(logging.getLogger(name).handlers),
            list(logging.getLogger(name).filters),
        )
        for name in _WATCHED_LOGGERS
    }
    yield
    root.handlers[:] = saved_root[0]
    root.setLevel(saved_root[1])
    for name, (level, propagate, handlers, filters) in saved.items():
        library_logger = logging.getLogger(name)
        library_logger.setLevel(level)
        library_logger.propagate = propagate
        library_logger.handlers[:] = handlers
        library_logger.filters[:] = filters
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def stream() -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", buffer)
    return buffer


def test_json_line_has_level_timestamp_logger_and_message(stream: io.StringIO) -> None:
    get_logger("prodready.test").info("reconciled", children=3)
    (line,) = _lines(stream)
    assert list(line)[:4] == ["timestamp", "level", "logger", "message"]
    assert line["level"] == "info"
    assert line["logger"] == "prodready.test"
    assert line["message"] == "reconciled"
    assert line["children"] == 3
    assert line["timestamp"].endswith("Z")
    assert "T" in line["timestamp"]


def test_positional_arguments_are_interpolated(stream: io.StringIO) -> None:
    get_logger("prodready.test").info("applied %d children", 4)
    assert _lines(stream)[0]["message"] == "applied 4 children"


def test_reconcile_context_tags_lines_with_object_and_id(stream: io.StringIO) -> None:
    log = get_logger("prodready.controller")
    with reconcile_context("shop", "web", "uid-1") as first:
        log.info("inside")
    with reconcile_context("shop", "api", None) as second:
        log.info("other")
    log.info("outside")
    inside, other, outside = _lines(stream)
    assert inside["namespace"] == "shop"
    assert inside["name"] == "web"
    assert inside["uid"] == "uid-1"
    assert inside["reconcile_id"] == first
    assert len(first) == 8
    assert first != second
    assert other["reconcile_id"] == second
    assert other["uid"] is None
    assert "reconcile_id" not in outside
    assert "namespace" not in outside


def test_nested_reconcile_context_restores_the_outer_one(stream: io.StringIO) -> None:
    log = get_logger("prodready.controller")
    with reconcile_context("a", "outer", "u-outer") as outer:
        with reconcile_context("b", "inner", None):
            log.info("inner")
        log.info("outer")
    inner_line, outer_line = _lines(stream)
    assert inner_line["uid"] is None
    assert outer_line["name"] == "outer"
    assert outer_line["reconcile_id"] == outer


def test_stdlib_loggers_of_kopf_aiohttp_asyncio_are_json_too(stream: io.StringIO) -> None:
    logging.getLogger("kopf.activities.startup").info("Activity %r succeeded.", "login")
    logging.getLogger("aiohttp.server").error("Error handling request")
    logging.getLogger("asyncio").warning("Executing took 1.2 seconds")
    kopf_line, aiohttp_line, asyncio_line = _lines(stream)
    assert kopf_line["logger"] == "kopf.activities.startup"
    assert kopf_line["message"] == "Activity 'login' succeeded."
    assert kopf_line["level"] == "info"
    assert aiohttp_line["level"] == "error"
    assert asyncio_line["logger"] == "asyncio"


def test_kopf_object_logger_carries_the_object(stream: io.StringIO) -> None:
    body = kopf.Body(
        {
            "apiVersion": "prodready.io/v1alpha1",
            "kind": "ProductionService",
            "metadata": {"namespace": "shop", "name": "web", "uid": "uid-9"},
        }
    )
    object_logger = kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings())
    object_logger.info("Handler 'reconcile' succeeded.", extra={"attempt": 2})
    (line,) = _lines(stream)
    assert line["logger"] == "kopf.objects"
    assert line["namespace"] == "shop"
    assert line["name"] == "web"
    assert line["uid"] == "uid-9"
    assert line["kind"] == "ProductionService"
    assert line["attempt"] == 2
    # kopf's bookkeeping (the whole OperatorSettings) never reaches the log line.
    assert "settings" not in line
    assert "k8s_ref" not in line
    assert "k8s_skip" not in line


def test_reconcile_context_applies_to_kopf_lines(stream: io.StringIO) -> None:
    with reconcile_context("shop", "web", "uid-1") as reconcile_id:
        logging.getLogger("kopf.objects").info("Patching with: {}")
    assert _lines(stream)[0]["reconcile_id"] == reconcile_id


def test_stdlib_exceptions_and_stacks_are_rendered(stream: io.StringIO) -> None:
    try:
        raise RuntimeError("handler failed")
    except RuntimeError:
        logging.getLogger("kopf").exception("Handler crashed", stack_info=True)
    (line,) = _lines(stream)
    assert "RuntimeError: handler failed" in line["exception"]
    assert line["stack"].startswith("Stack (most recent call last)")


def test_structlog_exceptions_are_rendered(stream: io.StringIO) -> None:
    try:
        raise ValueError("bad spec")
    except ValueError:
        get_logger("prodready.test").exception("reconcile failed")
    (line,) = _lines(stream)
    assert line["level"] == "error"
    assert "ValueError: bad spec" in line["exception"]


def test_level_filters_structlog_and_stdlib_lines() -> None:
    buffer = io.StringIO()
    configure_logging("WARNING", "json", buffer)
    get_logger("prodready.test").info("hidden")
    logging.getLogger("kopf").info("hidden too")
    get_logger("prodready.test").warning("shown")
    logging.getLogger("kopf").error("shown too")
    assert [line["message"] for line in _lines(buffer)] == ["shown", "shown too"]


def test_access_logs_are_silenced(stream: io.StringIO) -> None:
    logging.getLogger("aiohttp.access").info('127.0.0.1 "GET /healthz HTTP/1.1" 200')
    assert _lines(stream) == []


def test_a_library_lowering_its_level_cannot_leak_debug_lines() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "json", buffer)
    logging.getLogger("kopf.clients").setLevel(logging.DEBUG)
    logging.getLogger("kopf.clients").debug("request body")
    assert _lines(buffer) == []
    logging.getLogger("kopf.clients").setLevel(logging.NOTSET)


def test_configuring_twice_keeps_one_handler_and_one_line() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", first)
    logger = get_logger("prodready.test")  # created before the second setup on purpose
    configure_logging("INFO", "json", second)
    logger.info("once")
    logging.getLogger("kopf").info("once too")
    assert first.getvalue() == ""
    assert [line["message"] for line in _lines(second)] == ["once", "once too"]
    filters = logging.getLogger("kopf.objects").filters
    assert sum(type(f).__name__ == "_RedactingFilter" for f in filters) == 1


def test_replaces_kopf_cli_logging_but_keeps_capture_handlers() -> None:
    kopf.configure(log_format=kopf.LogFormat.FULL)
    capture = logging.NullHandler()
    logging.getLogger().addHandler(capture)
    buffer = io.StringIO()
    configure_logging("INFO", "json", buffer)
    names = [type(h).__name__ for h in logging.getLogger().handlers]
    assert "_KopfStreamHandler" not in names
    assert capture in logging.getLogger().handlers
    # kopf's CLI silenced asyncio; task errors must be visible again.
    assert logging.getLogger("asyncio").propagate
    logging.getLogger("asyncio").error("Task exception was never retrieved")
    assert _lines(buffer)[0]["logger"] == "asyncio"


def test_warnings_are_logged(stream: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old API", DeprecationWarning, stacklevel=1)
    (line,) = _lines(stream)
    assert line["logger"] == "py.warnings"
    assert "old API" in line["message"]


def test_console_format_is_human_readable_and_redacted() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", "console", buffer)
    get_logger("prodready.test").info("reconciled", token="abc123", children=2)
    try:
        raise KeyError("spec")
    except KeyError:
        logging.getLogger("kopf").exception("crash")
    text = buffer.getvalue()
    first_line = text.splitlines()[0]
    assert "reconciled" in first_line
    assert "[prodready.test]" in first_line
    assert "children=2" in first_line
    assert f"token={REDACTED}" in first_line
    assert "abc123" not in text
    assert "KeyError: 'spec'" in text
    assert "\x1b[" not in text  # no colour codes into a non-terminal
    with pytest.raises(json.JSONDecodeError):
        json.loads(first_line)


@pytest.mark.parametrize(
    ("level", "fmt", "message"),
    [("verbose", "json", "log level"), ("INFO", "xml", "log format")],
)
def test_invalid_level_or_format_is_refused(level: str, fmt: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        configure_logging(level, fmt, io.StringIO())


def test_lowercase_level_is_accepted() -> None:
    buffer = io.StringIO()
    configure_logging("debug", "json", buffer)
    get_logger("prodready.test").debug("fine")
    assert _lines(buffer)[0]["level"] == "debug"


def test_sensitive_keys_are_masked_at_any_depth(stream: io.StringIO) -> None:
    get_logger("prodready.test").info(
        "connecting",
        password="hunter2",
        Authorization="Bearer abc",
        config={"database": {"DB_PASSWORD": "p", "host": "db"}, "apiKey": "k"},
        headers=[{"Cookie": "session=1"}, {"X-Api-Key": "k2"}],
        credit_card="4111",
        secret_name="db-credentials",
    )
    (line,) = _lines(stream)
    assert line["password"] == REDACTED
    assert line["Authorization"] == REDACTED
    assert line["config"] == {
        "database": {"DB_PASSWORD": REDACTED, "host": "db"},
        "apiKey": REDACTED,
    }
    assert line["headers"] == [{"Cookie": REDACTED}, {"X-Api-Key": REDACTED}]
    assert line["credit_card"] == REDACTED
    # The name of a Secret is what a person debugging a missing reference needs.
    assert line["secret_name"] == "db-credentials"


def test_log_lines_keep_their_own_words(stream: io.StringIO) -> None:
    """Words that a tenant's Secret may also hold ("admission denied", "team-a") are the
    operator's own words too: nothing masks values, so its lines stay readable. (A Secret
    value never reaches a line because the one reader drops it: test_controller_security.)
    """
    log = get_logger("prodready.webhook")
    log.info("admission denied", namespace="team-a", reason="team-a may not do this")
    logging.getLogger("kopf").warning("admission denied for %s", "team-a")
    first, second = _lines(stream)
    assert first["message"] == "admission denied"
    assert (first["namespace"], first["reason"]) == ("team-a", "team-a may not do this")
    assert second["message"] == "admission denied for team-a"
    assert REDACTED not in stream.getvalue()


def test_the_logging_module_keeps_no_registry_of_values() -> None:
    """The registry of values to mask is gone for good (it rebuilt one regex of every value
    on each new one, on the event loop: minutes for a Secret of 3,000 keys)."""
    import prodready.observability.logging as logging_module

    assert not hasattr(logging_module, "register_sensitive_value")
    assert not any("sensitive_value" in name for name in logging_module.__all__)


def test_kopf_object_messages_are_masked_before_any_handler() -> None:
    """kopf posts object-logger lines as Kubernetes Events through its own handler."""
    configure_logging("INFO", "json", io.StringIO())
    seen: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    capture = Capture()
    objects_logger = logging.getLogger("kopf.objects")
    objects_logger.addHandler(capture)
    try:
        try:
            raise RuntimeError("password=hunter2")
        except RuntimeError:
            objects_logger.exception("value %s", "token=hunter2")
    finally:
        objects_logger.removeHandler(capture)
    record = seen[0]
    assert record.getMessage() == f"value token={REDACTED}"
    assert "hunter2" not in logging.Formatter().format(record)
    assert record.exc_text is not None
    assert "hunter2" not in record.exc_text


def test_malformed_kopf_messages_are_left_to_the_handlers() -> None:
    configure_logging("INFO", "json", io.StringIO())
    (redacting_filter,) = logging.getLogger("kopf.objects").filters
    record = logging.LogRecord("kopf.objects", logging.INFO, "", 0, "broken %s %s", ("one",), None)
    assert redacting_filter.filter(record)
    assert (record.msg, record.args) == ("broken %s %s", ("one",))


def test_env_vars_with_sensitive_names_have_their_value_masked() -> None:
    env = [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "apiToken", "value": "t"},
        {"name": "LOG_LEVEL", "value": "INFO"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]
    assert redact(env) == [
        {"name": "DB_PASSWORD", "value": REDACTED},
        {"name": "apiToken", "value": REDACTED},
        {"name": "LOG_LEVEL", "value": "INFO"},
        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2 user=bob", f"password={REDACTED} user=bob"),
        ("GET /cb?access_token=abc&state=1", f"GET /cb?access_token={REDACTED}&state=1"),
        ('{"apiKey": "k-1", "ok": 1}', f'{{"apiKey": "{REDACTED}", "ok": 1}}'),
        ("{'client_secret': 'zz', 'a': 'b'}", f"{{'client_secret': '{REDACTED}', 'a': 'b'}}"),
        ("Authorization: Bearer eyJhbGciOi", f"Authorization: {REDACTED}"),
        (
            "{'env': [{'name': 'DB_PASSWORD', 'value': 'hunter2'}]}",
            f"{{'env': [{{'name': 'DB_PASSWORD', 'value': '{REDACTED}'}}]}}",
        ),
        ("postgres://app:hunter2@db:5432/x", f"postgres://app:{REDACTED}@db:5432/x"),
        ("nothing to hide here", "nothing to hide here"),
        ("tokenizer ready", "tokenizer ready"),
    ],
)
def test_secrets_inside_text_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_returns_a_masked_copy() -> None:
    original: dict[str, Any] = {"token": "t", "items": ("a", {"passwd": "p"}), "n": 1.5}
    result = redact(original)
    assert result == {"token": REDACTED, "items": ["a", {"passwd": REDACTED}], "n": 1.5}
    assert original["token"] == "t"
    assert redact(None) is None
    assert redact(True) is True
    assert redact(7) == 7


def test_redact_stringifies_other_objects() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "Opaque(password=hunter2)"

    assert redact(Opaque()) == f"Opaque(password={REDACTED})"
    assert redact({1: "x"}) == {1: "x"}


def test_redaction_of_huge_strings_is_linear() -> None:
    """Regex redaction must not become quadratic on long unbroken words (a base64 blob)."""
    import time

    blob = "A" * 200_000
    started = time.perf_counter()
    redact(blob)
    redact("s://" + blob)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "dbPassword",
        "passwd",
        "token",
        "access_token",
        "accessToken",
        "secret",
        "client-secret",
        "api_key",
        "apikey",
        "apiKey",
        "X-API-KEY",
        "authorization",
        "Authorization",
        "credit_card",
        "creditCard",
        "private_key",
        "privateKey",
        "cookie",
        "Set-Cookie",
        "aws_access_key_id",
        "credentials",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "namespace",
        "name",
        "uid",
        "reconcile_id",
        "tokenizer",
        "secretary",
        "secret_name",
        "secretRef",
        "token_file",
        "author",
        "key",
        "",
        "password_count",
    ],
)
def test_non_sensitive_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_get_logger_names_the_logger(stream: io.StringIO) -> None:
    get_logger("prodready.somewhere").warning("x")
    assert _lines(stream)[0]["logger"] == "prodready.somewhere"


def test_stdlib_extra_fields_are_included(stream: io.StringIO) -> None:
    logging.getLogger("kopf").info("with extra", extra={"request_id": "r-1", "token": "t"})
    (line,) = _lines(stream)
    assert line["request_id"] == "r-1"
    assert line["token"] == REDACTED


def test_the_operator_loads_no_console_formatting_library() -> None:
    """structlog would import rich (installed for the CEL library's command line) and rich
    pygments: 3 MiB held by every operator process for a renderer configured to print
    plainly."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, prodready.app.process, prodready.observability.logging as l; "
            "l.configure_logging(level='INFO', fmt='console'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'pygments'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout.strip() == "[]"

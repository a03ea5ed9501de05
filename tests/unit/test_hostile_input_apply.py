"""Server-side apply bodies: the apiserver reads them as YAML, so whatever text a user puts
in a ProductionService (emoji, control characters, line separators) must reach it as the
same text. json.dumps alone escapes an emoji as a UTF-16 surrogate pair, which no YAML
parser accepts: the operator could then never apply that service's children."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings, strategies as st

from prodready.kube.client import APPLY_PATCH, MERGE_PATCH, encode_body

SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
NASTY = [
    "hello 🚀",
    "\U0001f600\U00010000\U0010ffff",
    "tab\there, newline\nthere, return\r",
    "\x00\x01\x1f\x7f",
    "\x80\x84\x85\x9f",
    "line\u2028separator\u2029paragraph",
    "\ufeffbom\ufffe\uffff",
    '"quoted" \\backslash\\ \u00e9\u4e2d',
]


def deployment_with(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": {"note": value}},
        "spec": {"template": {"spec": {"containers": [{"env": [{"name": "X", "value": value}]}]}}},
    }


def test_every_nasty_string_reads_back_as_yaml() -> None:
    for value in NASTY:
        body = deployment_with(value)
        text = encode_body(body, APPLY_PATCH)
        assert yaml.load(text, Loader=SAFE_LOADER) == body, value  # noqa: S506 - safe loader
        assert json.loads(text) == body, value


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_any_text_reads_back_as_yaml_and_json(value: str) -> None:
    body = deployment_with(value)
    text = encode_body(body, APPLY_PATCH)
    assert yaml.load(text, Loader=SAFE_LOADER) == body  # noqa: S506 - safe loader
    assert json.loads(text) == body


def test_other_bodies_stay_plain_ascii_json() -> None:
    body = deployment_with("hello 🚀")
    text = encode_body(body, MERGE_PATCH)
    assert text.isascii()
    assert json.loads(text) == body

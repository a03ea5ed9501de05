"""The validate loader builds YAML documents itself (for speed): whatever the input, it must
give exactly what PyYAML's safe loader gives — the same values, the same sharing, the same
errors — and leave no garbage behind for the cyclic collector."""

from __future__ import annotations

import gc
import io
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from prodready.rules.loader import LoadResult, load_bytes, load_inputs

SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def reference(text: str) -> list[Any]:
    """What PyYAML's own safe loader makes of a stream."""
    return list(yaml.load_all(text, Loader=SAFE_LOADER))


def loaded(text: str) -> LoadResult:
    result = LoadResult()
    load_bytes(text.encode(), "input.yaml", result)
    return result


def as_object(document: Any) -> Any:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": document}


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "off", "~", "0x1f", "0o17", "1_000", "1e3", ".inf", ""]),
    st.sampled_from(["2001-12-14t21:59:43.10-05:00", "2002-12-14", "12:30:45", "<<", "="]),
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(), st.booleans()), children),
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=documents, flow=st.booleans())
def test_any_document_loads_as_pyyaml_loads_it(document: Any, flow: bool) -> None:
    text = yaml.safe_dump(as_object(document), default_flow_style=flow, allow_unicode=True)
    result = loaded(text)
    assert not result.errors
    assert [item.obj for item in result.objects] == reference(text)


FEATURES = {
    "merge keys": """
base: &base {a: 1, b: 2}
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  <<: *base
  b: 3
  list: [*base, *base]
""",
    "merge of a list of maps": """
x: &x {a: 1}
y: &y {b: 2}
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {<<: [*x, *y], c: 3}
""",
    "timestamps, binary, sets and omaps": """
apiVersion: v1
kind: ConfigMap
metadata: {name: x, created: 2001-12-14t21:59:43.10-05:00}
data:
  day: 2002-12-14
  blob: !!binary aGVsbG8=
  set: !!set {a, b}
  ordered: !!omap [{a: 1}, {b: 2}]
  pairs: !!pairs [{a: 1}]
  explicit: !!str 123
  float: !!float 1
""",
    "complex keys": """
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  ? [a, b]
  : value
""",
    "duplicate keys (the last wins)": """
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
metadata: {name: y}
""",
    "value key": """
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data: {=: 1, a: 2}
""",
    "several documents, empty ones, and a List": """
---
---
apiVersion: v1
kind: List
items:
  - {apiVersion: v1, kind: Service, metadata: {name: a}}
  - {apiVersion: v1, kind: Service, metadata: {name: b}}
---
apiVersion: v1
kind: Service
metadata: {name: c}
""",
}


@pytest.mark.parametrize("text", FEATURES.values(), ids=FEATURES.keys())
def test_yaml_features_load_as_pyyaml_loads_them(text: str) -> None:
    result = loaded(text)
    refusal: str | None = None
    try:
        expected = reference(text)
    except yaml.YAMLError as error:
        refusal = str(getattr(error, "problem", error))
    if refusal is not None:
        # What PyYAML refuses is refused, with its reason, naming the file and line.
        assert not result.objects
        (problem,) = result.errors
        assert problem.file == "input.yaml"
        assert problem.line is not None
        assert refusal in problem.message
        return
    assert not result.errors
    flat: list[Any] = []
    for document in expected:
        if isinstance(document, dict) and document.get("kind") == "List":
            flat.extend(document["items"])
        elif document is not None:
            flat.append(document)
    assert [item.obj for item in result.objects] == flat


def test_aliases_stay_shared_as_pyyaml_shares_them() -> None:
    text = """
apiVersion: v1
kind: ConfigMap
metadata: {name: x}
data:
  first: &shared {a: [1, 2]}
  second: *shared
"""
    (item,) = loaded(text).objects
    assert item.obj["data"]["first"] is item.obj["data"]["second"]


@pytest.mark.parametrize(
    "text",
    [
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &loop [*loop]\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: &loop {a: {b: *loop}}\n",
        "- &a [1, &b [2, *a]]\n",
    ],
)
def test_a_document_that_contains_itself_is_refused(text: str) -> None:
    # PyYAML builds a recursive structure, which no manifest is and nothing downstream
    # (rules, JSON output) could walk; before this was caught, the alias-bomb check
    # looped forever on it, growing its stack until memory ran out.
    result = loaded(text)
    assert not result.objects
    (problem,) = result.errors
    assert "contains it" in problem.message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("apiVersion: v1\nkind: X\nmetadata: {name: x}\ndata: !custom 1\n", "could not determine"),
        ("apiVersion: v1\nkind: X\nspec: {a: 1\n", "invalid YAML"),
        # PyYAML raises plain ValueErrors for these; they once escaped as a traceback.
        ("apiVersion: v1\nkind: X\nbad: !!int notanumber\n", "does not fit its tag"),
        ("apiVersion: v1\nkind: X\nbad: !!timestamp 2020-13-45\n", "does not fit its tag"),
        ("apiVersion: v1\nkind: X\nbad: !!float nope\n", "does not fit its tag"),
        ("apiVersion: v1\nkind: X\nspec:\n  <<: 1\n", "invalid YAML"),
    ],
)
def test_bad_yaml_is_an_error_naming_file_and_line(text: str, problem: str) -> None:
    result = loaded(text)
    assert result.errors, result.objects
    error = result.errors[0]
    assert error.file == "input.yaml"
    assert error.line is not None
    assert problem in str(error) or problem in error.message


def test_loading_leaves_no_cyclic_garbage(tmp_path: Any) -> None:
    # The loader takes what it loaded out of the cyclic collector's scans (gc.freeze):
    # that is only free of leaks if loading itself creates no reference cycles.
    (tmp_path / "a.yaml").write_text(FEATURES["merge keys"] + "---\n" + FEATURES["value key"])
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "Service", "metadata": {}}')
    gc.collect()
    gc.disable()
    try:
        result = load_inputs([str(tmp_path)], io.BytesIO())
        assert len(result.objects) == 3
        assert gc.collect() == 0
    finally:
        gc.enable()
        gc.unfreeze()

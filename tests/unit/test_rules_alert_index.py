"""PR-MO-002's index of alerting rules answers exactly what a scan of every rule answers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings, strategies as st

from prodready.rules.checks.monitoring import INSTANCE_LABEL, NAME_LABEL, AlertIndex

NAMES = st.sampled_from(["web", "web-api", "api", "web-", "we", "", "x'y", 'x"y'])


def _scan(
    rules: list[Mapping[str, Any]], name: str, app: str | None, instance: str | None
) -> str | None:
    """The rule as written in the module docstring, one PrometheusRule at a time."""
    for rule in rules:
        items = [i for g in rule["spec"]["groups"] for i in g["rules"] if "alert" in i]
        if not items:
            continue
        labels, rule_name = rule["metadata"]["labels"], rule["metadata"]["name"]
        by_labels = app is not None and labels.get(NAME_LABEL) == app
        if by_labels and instance and labels.get(INSTANCE_LABEL, instance) != instance:
            by_labels = False
        by_name = rule_name == name or rule_name.startswith(f"{name}-")
        quoted = (f'"{name}"', f"'{name}'")
        mentions = any(q in str(i.get("expr", "")) for i in items for q in quoted)
        if by_labels or by_name or mentions:
            return rule_name
    return None


expressions = st.lists(
    st.sampled_from(['up{job="web"}', "x{a='api'}", 'rate(y{d="web-api",e="z"})', '"""', "1"]),
    max_size=3,
).map("".join)
items = st.fixed_dictionaries(
    {"expr": expressions}, optional={"alert": st.just("Down"), "record": st.just("r")}
)
rules = st.lists(
    st.builds(
        lambda name, labels, groups: {
            "metadata": {"name": name, "labels": labels},
            "spec": {"groups": [{"rules": group} for group in groups]},
        },
        NAMES,
        st.dictionaries(st.sampled_from([NAME_LABEL, INSTANCE_LABEL]), NAMES),
        st.lists(st.lists(items, max_size=3), max_size=2),
    ),
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(rules, NAMES, st.none() | NAMES, st.none() | NAMES)
def test_the_index_agrees_with_a_scan(
    rules: list[Mapping[str, Any]], name: str, app: str | None, instance: str | None
) -> None:
    assert AlertIndex(rules).first_match(name, app, instance) == _scan(rules, name, app, instance)

"""The README: its generated tables are current, and the documentation they need exists."""

from __future__ import annotations

import re

import pytest
import yaml

from prodready.config import Settings, env_name
from prodready.rules import RULES
from tests.generate import CHART, README, readme_file, readme_sections, values_reference

SECTIONS = [
    "## Quick start (a fresh machine)",
    "## Install with Helm",
    "## Install with kubectl",
    "## Your first ProductionService",
    "## Reading status and reports",
    "## Rule catalogue",
    "## Configuration reference",
    "### Chart values",
    "## Upgrading",
    "## Uninstalling",
]


def test_readme_generated_tables_are_current() -> None:
    assert README.read_text() == readme_file()[README], "README.md is stale: run `make generate`"


def test_readme_has_every_section_in_order() -> None:
    text = README.read_text()
    positions = [text.find(f"\n{heading}\n") for heading in SECTIONS]
    assert all(p >= 0 for p in positions), [
        s for s, p in zip(SECTIONS, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)


def test_rule_catalogue_lists_every_rule() -> None:
    table = readme_sections()["rules"]
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == [r.id for r in RULES]


def test_configuration_reference_lists_every_setting() -> None:
    table = readme_sections()["settings"]
    listed = re.findall(r"^\| `(PRODREADY_[A-Z_]+)` \|", table, re.M)
    assert listed == [env_name(name) for name in Settings.model_fields]


def test_every_chart_value_is_documented() -> None:
    text = (CHART / "values.yaml").read_text()
    rows = values_reference(text)
    undocumented = [row.path for row in rows if not row.comment]
    assert undocumented == [], "values.yaml: give each of these a comment"
    listed = {row.path.split(".")[0] for row in rows}
    assert listed == set(yaml.safe_load(text))


@pytest.mark.parametrize(
    "command", ["make generate", "make test", "helm install", "kubectl apply -k manifests/"]
)
def test_readme_names_the_commands_people_run(command: str) -> None:
    assert command in README.read_text()

"""`prodready validate` starts fast: the rules engine does not build the pydantic models."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_the_rules_engine_loads_without_the_api_models() -> None:
    script = (
        "import sys, prodready.rules, prodready.rules.config;"
        "print('prodready.api.models' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_the_api_package_still_offers_everything_it_names() -> None:
    from prodready import api

    for name in api.__all__:
        assert getattr(api, name) is not None
    assert api.KIND == "ProductionService"
    with pytest.raises(AttributeError, match="not_a_name"):
        _ = api.not_a_name  # type: ignore[attr-defined]


def test_the_rules_package_imports_a_name_only_when_asked() -> None:
    script = (
        "import sys, prodready.rules as r;"
        "before = 'prodready.rules.engine' in sys.modules;"
        "r.evaluate; r.RulesConfig;"
        "print(before, 'prodready.rules.engine' in sys.modules, 'pydantic' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "True", "False"]


def test_the_rules_package_offers_everything_it_names() -> None:
    from prodready import rules

    assert sorted(rules._HOMES) == sorted(rules.__all__)
    for name in rules.__all__:
        assert getattr(rules, name) is not None
    with pytest.raises(AttributeError, match="not_a_name"):
        _ = rules.not_a_name  # type: ignore[attr-defined]


# What `prodready validate` on a small file must not import: the operator's layers, the
# custom rules' CEL engine (only for a policy with custom rules), the report pages'
# templates, the fixer's YAML round-tripper, the process pool (only for a large input),
# SARIF's locator, the ProductionService models, the custom rules' own module (only for
# a policy that has some), pydantic (only to validate a --config
# or --policy file), what only SARIF, JUnit or the admission output use (hashes, UUIDs,
# XML) and what only rendering a chart or kustomization uses (subprocess).
NOT_FOR_A_SMALL_VALIDATE = (
    "kopf",
    "aiohttp",
    "kubernetes",
    "cel",
    "prompt_toolkit",
    "jinja2",
    "ruamel",
    "multiprocessing",
    "prodready.rules.locate",
    "prodready.rules.fixes",
    "prodready.api.models",
    "pydantic",
    "pydantic_core",
    "prodready.rules.config_file",
    "hashlib",
    "uuid",
    "xml",
    "subprocess",
    "importlib.metadata",
    "pickle",
    "prodready.rules.custom",
)


def test_the_version_is_the_package_metadata_s() -> None:
    """`prodready.__version__` is a literal, as pyproject.toml's (test_chart_image holds
    those equal): the installed package says the same."""
    from importlib.metadata import version

    import prodready

    assert prodready.__version__ == version("prodready")


@pytest.mark.parametrize("output", ["table", "json"])
def test_validate_of_a_small_file_imports_nothing_it_does_not_use(
    tmp_path: Path, output: str
) -> None:
    manifest = tmp_path / "web.yaml"
    manifest.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n"
        "spec: {template: {spec: {containers: [{name: web, image: nginx}]}}}\n"
    )
    script = (
        "import sys, io\n"
        "from contextlib import redirect_stderr as err, redirect_stdout as out\n"
        "from prodready.cli import main\n"
        "with out(io.StringIO()), err(io.StringIO()):\n"
        f"    code = main(['validate', {str(manifest)!r}, '-o', {output!r}])\n"
        "assert code == 1, code\n"
        "print(' '.join(sorted(m for m in sys.modules)))\n"
    )
    # Without coverage's subprocess measurement (`make test` turns it on through this
    # variable), which loads multiprocessing in every Python process it starts.
    environment = {k: v for k, v in os.environ.items() if k != "COVERAGE_PROCESS_CONFIG"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=environment,
    )
    loaded = set(result.stdout.split())
    assert "prodready.rules.engine" in loaded  # it did check the file
    unwanted = {
        name
        for name in loaded
        if any(name == m or name.startswith(m + ".") for m in NOT_FOR_A_SMALL_VALIDATE)
    }
    assert unwanted == set()

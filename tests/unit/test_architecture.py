"""The import layers of docs/architecture.md hold, and an import against them fails lint.

`make lint` runs `lint-imports` with the contracts in pyproject.toml; these tests run the
same contracts on the package and on a copy with one forbidden import added, so a contract
that stopped checking anything would fail here too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "prodready"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter not installed")


def contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def lint(package_parent: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    shutil.copy(ROOT / "pyproject.toml", cwd / "pyproject.toml")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(package_parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_package(tmp_path: Path) -> Path:
    parent = tmp_path / "src"
    shutil.copytree(PACKAGE, parent / "prodready", ignore=shutil.ignore_patterns("__pycache__"))
    return parent


def test_the_package_keeps_every_contract(tmp_path: Path) -> None:
    result = lint(ROOT / "operator", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_contract_ignores_an_import() -> None:
    for contract in contracts():
        assert "ignore_imports" not in contract, contract["id"]


def test_controller_webhook_and_audit_are_independent_siblings() -> None:
    (layers,) = [c for c in contracts() if c["type"] == "layers"]
    assert "controller | webhook | audit" in layers["layers"]  # type: ignore[operator]
    assert layers["exhaustive"] is True


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a sibling import: the webhook reading the audit's module
        ("webhook/server.py", "import prodready.audit.auditor", "prodready.webhook is not allowed"),
        # an upward import: the controller reaching for the composition root
        ("controller/reconciler.py", "import prodready.app.policy", "prodready.controller is not"),
        # the pure core reaching for I/O
        ("rules/engine.py", "import aiohttp", "prodready.rules is not allowed to import aiohttp"),
        ("render/pdb.py", "import prodready.kube.client", "prodready.render is not allowed"),
    ],
)
def test_an_import_against_the_layers_fails(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    parent = copy_package(tmp_path)
    path = parent / "prodready" / module
    path.write_text(path.read_text() + f"\n{line}  # added by the test\n")
    result = lint(parent, tmp_path)
    assert result.returncode == 1, result.stdout
    assert broken in result.stdout

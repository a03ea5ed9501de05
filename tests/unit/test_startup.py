"""`prodready validate` starts fast: the rules engine does not build the pydantic models."""

from __future__ import annotations

import subprocess
import sys

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

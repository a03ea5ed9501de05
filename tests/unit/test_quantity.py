"""The one quantity parser agrees with Kubernetes, and drift compares quantities only there.

Kubernetes' own answer comes from `quantity/main.go`, which runs apimachinery's
resource.ParseQuantity (the apiserver's parser) on the same generated strings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from prodready.api.quantity import (
    QUANTITY_PATTERN,
    parse_quantity,
    same_quantity,
    stored_quantity,
)
from prodready.controller.drift import contains

QUANTITY_MODULE = Path(__file__).parent / "quantity"
GoAnswer = list[str] | None
Kubernetes = Callable[[list[str]], list[GoAnswer]]


@pytest.fixture(scope="module")
def kubernetes(tmp_path_factory: pytest.TempPathFactory) -> Kubernetes:
    """Parse with resource.ParseQuantity (skipped without Go or apimachinery offline)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain is not installed")
    binary = tmp_path_factory.mktemp("quantity") / "quantity"
    built = subprocess.run(
        [go, "build", "-o", str(binary), "."],
        check=False,
        cwd=QUANTITY_MODULE,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=readonly", "GOTOOLCHAIN": "local"},
    )
    if built.returncode != 0:
        pytest.skip(f"k8s.io/apimachinery is not in the Go module cache: {built.stderr[-300:]}")

    def run(texts: list[str]) -> list[GoAnswer]:
        done = subprocess.run(
            [str(binary)],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        answers: list[GoAnswer] = json.loads(done.stdout)
        return answers

    return run


_DIGITS = st.text("0123456789", min_size=1, max_size=6)


@st.composite
def quantities(draw: st.DrawFn) -> str:
    """Strings near the grammar: valid quantities of every form, and near misses."""
    sign = draw(st.sampled_from(["", "", "+", "-"]))
    whole, fraction = draw(_DIGITS), draw(_DIGITS)
    number = draw(st.sampled_from([whole, f"{whole}.{fraction}", f".{fraction}", f"{whole}."]))
    exponent = draw(st.integers(-12, 12))
    suffix = draw(
        st.sampled_from(
            [
                "", "n", "u", "m", "k", "M", "G", "T", "P", "E",
                "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
                f"e{exponent}", f"E{exponent}", f"e+{abs(exponent)}",
                # Refused by Kubernetes: a fractional exponent, unknown or doubled suffixes.
                f"e{exponent}.5", "K", "mi", "kk", "Gi1", "e", " ",
            ]
        )
    )  # fmt: skip
    return f"{sign}{number}{suffix}"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(quantities() | st.text("0123456789.+-eEKMGTPiunmk", max_size=8), min_size=50))
def test_the_parser_agrees_with_kubernetes(kubernetes: Kubernetes, batch: list[str]) -> None:
    for text, answer in zip(batch, kubernetes(batch), strict=True):
        if answer is None:
            with pytest.raises(ValueError, match="not a Kubernetes quantity"):
                parse_quantity(text)
            continue
        if not re.match(r"[+-]?\.?[0-9]", text):
            # ParseQuantity reads a number without digits ("m", "+", "E2") as 0; the OpenAPI
            # pattern, a CRD's schema and our models refuse it, and so does the parser.
            assert not re.match(QUANTITY_PATTERN, text)
            with pytest.raises(ValueError, match="not a Kubernetes quantity"):
                parse_quantity(text)
            continue
        value, canonical = answer
        assert stored_quantity(text) == Decimal(value), text
        # What the apiserver stores compares equal to what was rendered, and back. (Its
        # canonical text breaks down at 2**63 and above, where nothing is rendered.)
        if abs(Decimal(value)) < 2**63 - 1:
            assert same_quantity(text, canonical), (text, canonical)
            assert contains({"limits": {"cpu": canonical}}, {"limits": {"cpu": text}}), text


@pytest.mark.parametrize(
    ("rendered", "stored"),
    [
        ("1Gi", "1073741824"),
        ("1024Mi", "1Gi"),
        ("500m", "0.5"),
        ("1e3", "1k"),
        ("1E", "1e18"),
        ("1Ei", "1152921504606846976"),
        ("0.1n", "1n"),  # precision below 1n is rounded up, away from zero
        ("-0.1n", "-1n"),
        ("10000Pi", "9223372036854775807"),  # a binary value is capped at the largest int64
        (2, "2"),
    ],
)
def test_canonical_forms_are_the_same_quantity(rendered: str | int, stored: str) -> None:
    assert same_quantity(rendered, stored)


@pytest.mark.parametrize(
    ("a", "b"),
    [("1G", "1Gi"), ("1e1.5", "1e1.5"), ("abc", "abc"), (True, "1"), (None, "0"), ("1m", "1")],
)
def test_different_or_invalid_quantities_are_not_the_same(a: Any, b: Any) -> None:
    assert not same_quantity(a, b)


def test_a_huge_exponent_is_compared_without_expanding_it() -> None:
    assert stored_quantity("1e999999999") == Decimal("1e999999999")
    assert not same_quantity("1e999999999", "1e999999998")
    assert stored_quantity("1.0000000001e-999999") == Decimal("1e-9")


@pytest.mark.parametrize(
    ("live", "desired", "expected"),
    [
        # Quantity fields: a container's (or claim's) requests and limits, sizeLimit.
        ({"requests": {"cpu": "500m"}}, {"requests": {"cpu": "0.5"}}, True),
        ({"limits": {"memory": "1Gi"}}, {"limits": {"memory": "1024Mi"}}, True),
        ({"limits": {"nvidia.com/gpu": "1"}}, {"limits": {"nvidia.com/gpu": 1}}, True),
        ({"requests": {"storage": "1G"}}, {"requests": {"storage": "1Gi"}}, False),
        ({"emptyDir": {"sizeLimit": "64Mi"}}, {"emptyDir": {"sizeLimit": "65536Ki"}}, True),
        (
            {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1"}}}]},
            {"containers": [{"name": "app", "resources": {"limits": {"cpu": "1000m"}}}]},
            True,
        ),
        # Anywhere else a string is a string, whatever it looks like.
        ({"n": "1e3"}, {"n": "1k"}, False),
        (
            {"env": [{"name": "MEMORY", "value": "1Gi"}]},
            {"env": [{"name": "MEMORY", "value": "1024Mi"}]},
            False,
        ),
        ({"value": "1Gi"}, {"value": "1024Mi"}, False),
        ({"annotations": {"limits": "0.5"}}, {"annotations": {"limits": "500m"}}, False),
        ({"port": 8000}, {"port": "8000"}, False),
        ({"requests": {"cpu": "1"}}, {"requests": {"cpu": "1"}}, True),
    ],
)  # fmt: skip
def test_drift_compares_quantities_only_in_quantity_fields(
    live: Any, desired: Any, expected: bool
) -> None:
    assert contains(live, desired) is expected

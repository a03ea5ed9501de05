"""Kubernetes resource quantities (`100m`, `128Mi`, `1.5`, `2e3`): validate and compare.

The one quantity parser of the package: the models check limits against requests with
it, and drift detection compares a rendered quantity with the apiserver's canonical form.
"""

from __future__ import annotations

import re
from decimal import MAX_EMAX, MIN_EMIN, ROUND_UP, Decimal, DecimalException, localcontext
from typing import Final

QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
"""The pattern Kubernetes' own OpenAPI schema gives `resource.Quantity`."""

# What resource.ParseQuantity accepts, which is narrower than the OpenAPI pattern above: an
# exponent is a whole number (`1e3`, `1E-2`; `1e1.5` is refused).
_QUANTITY_RE: Final = re.compile(
    r"^(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$"
)
_BINARY: Final = {"Ki": 1, "Mi": 2, "Gi": 3, "Ti": 4, "Pi": 5, "Ei": 6}
_DECIMAL: Final = {"n": -9, "u": -6, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_NANO: Final = Decimal("1e-9")
_MAX_INT64: Final = Decimal(2**63 - 1)


def parse_quantity(text: str) -> Decimal:
    """The exact value of a quantity string; ValueError when Kubernetes would refuse it."""
    return _parse(text)[0]


def _parse(text: str) -> tuple[Decimal, bool]:
    """The exact value, and whether its suffix is binary (Ki … Ei)."""
    match = _QUANTITY_RE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 100m, 128Mi, 1)")
    number = Decimal(match["number"])
    suffix = match["suffix"] or ""
    # Enough digits for the number times 1024**6, and any exponent Kubernetes takes
    # (1e999999999 is a quantity): the value is exact, never rounded, never expanded.
    with localcontext(prec=len(text) + 32, Emax=MAX_EMAX, Emin=MIN_EMIN):
        try:
            if suffix in _BINARY:
                return number * (Decimal(1024) ** _BINARY[suffix]), True
            if suffix in _DECIMAL:
                return number.scaleb(_DECIMAL[suffix]), False
            if suffix:
                return number.scaleb(int(suffix[1:])), False
        except DecimalException:
            raise ValueError(f"{text!r} is out of range for a quantity") from None
        return number, False


def stored_quantity(text: str) -> Decimal:
    """The value the apiserver keeps for `text`, as resource.ParseQuantity computes it.

    What lies below 1n is rounded away from zero (`0.1n` is stored as `1n`), and a value
    with a binary suffix is capped at the largest int64 (`10000Pi` is 9223372036854775807).
    """
    value, binary = _parse(text)
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -9:
        # Digits below 1n come from the text itself, so the precision needed is bounded by it.
        with localcontext(prec=len(text) + 32, Emax=MAX_EMAX, Emin=MIN_EMIN):
            value = value.quantize(_NANO, rounding=ROUND_UP)
    if binary and abs(value) > _MAX_INT64:
        return _MAX_INT64.copy_sign(value)
    return value


def same_quantity(a: object, b: object) -> bool:
    """Whether `a` and `b` are one quantity once stored (`0.5` and `500m`, `1Gi` and
    `1073741824`, `1e3` and `1k`); False when either is no quantity."""
    texts = []
    for value in (a, b):
        if isinstance(value, bool) or not isinstance(value, str | int):
            return False
        texts.append(str(value))
    try:
        return stored_quantity(texts[0]) == stored_quantity(texts[1])
    except ValueError:
        return False

"""Status conditions in the metav1.Condition shape, as kstatus, Flux and Argo CD read them.

Pure functions: the reconciler computes the wanted conditions, `merge_conditions` keeps
`lastTransitionTime` where the status did not change, and the status is written only when
the result differs from what the object already has (no write, no event, no loop).
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prodready.api import (
    CONDITION_MONITORING_READY as MONITORING,
    CONDITION_POLICY_COMPLIANT as POLICY_COMPLIANT,
    CONDITION_READY as READY,
    CONDITION_RECONCILING as RECONCILING,
    CONDITION_STALLED as STALLED,
)

__all__ = [
    "CONDITION_ORDER",
    "MONITORING",
    "POLICY_COMPLIANT",
    "READY",
    "RECONCILING",
    "STALLED",
    "Condition",
    "find",
    "merge_conditions",
    "now_rfc3339",
]

# Order in which conditions are written: the summary first, as `kubectl get -o wide` users
# and kstatus expect.
CONDITION_ORDER = (READY, RECONCILING, STALLED, POLICY_COMPLIANT, MONITORING)


@dataclass(frozen=True)
class Condition:
    """One wanted condition; `merge_conditions` turns it into the wire shape."""

    type: str
    status: bool | None  # None = Unknown
    reason: str
    message: str

    @property
    def status_text(self) -> str:
        return {True: "True", False: "False", None: "Unknown"}[self.status]


def now_rfc3339() -> str:
    """The current time as metav1.Time (RFC 3339, seconds, UTC)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    existing: Sequence[Mapping[str, Any]] | None,
    wanted: Iterable[Condition],
    *,
    generation: int,
    now: str,
) -> list[dict[str, Any]]:
    """Wanted conditions in wire shape; lastTransitionTime kept unless the status changed.

    Conditions not in `wanted` are dropped: kstatus reads the absence of Reconciling and
    Stalled as "neither", which is what an idle, healthy object should say.
    """
    previous = {str(c.get("type")): c for c in existing or () if isinstance(c, Mapping)}
    result = []
    for condition in sorted(wanted, key=lambda c: _order(c.type)):
        before = previous.get(condition.type)
        transition = now
        if before is not None and before.get("status") == condition.status_text:
            transition = str(before.get("lastTransitionTime") or now)
        result.append(
            {
                "type": condition.type,
                "status": condition.status_text,
                "reason": condition.reason,
                "message": condition.message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": transition,
            }
        )
    return result


def _order(condition_type: str) -> int:
    try:
        return CONDITION_ORDER.index(condition_type)
    except ValueError:
        return len(CONDITION_ORDER)


def find(conditions: Sequence[Mapping[str, Any]] | None, condition_type: str) -> Mapping[str, Any]:
    """The condition of a type, or an empty mapping."""
    for condition in conditions or ():
        if condition.get("type") == condition_type:
            return condition
    return {}

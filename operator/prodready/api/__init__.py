"""The ProductionService API: pydantic models, the CRD generated from them, and SpecError.

`parse_production_service` is the one way in: it validates a whole object (schema and the
cross-field rules the CRD's CEL rules also enforce) and raises a SpecError naming the
field and the checklist rule.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from prodready.api.errors import SCHEMA_RULE, SpecError

if TYPE_CHECKING:
    from prodready.api.models import (
        API_VERSION,
        CATEGORIES,
        CONDITION_MONITORING_READY,
        CONDITION_POLICY_COMPLIANT,
        CONDITION_READY,
        CONDITION_RECONCILING,
        CONDITION_STALLED,
        GROUP,
        KIND,
        LIST_KIND,
        PLURAL,
        SHORT_NAMES,
        SINGULAR,
        VERSION,
        Environment,
        ProductionService,
        ProductionServiceSpec,
        ProductionServiceStatus,
    )
    from prodready.api.parse import parse_production_service

__all__ = [
    "API_VERSION",
    "CATEGORIES",
    "CONDITION_MONITORING_READY",
    "CONDITION_POLICY_COMPLIANT",
    "CONDITION_READY",
    "CONDITION_RECONCILING",
    "CONDITION_STALLED",
    "GROUP",
    "KIND",
    "LIST_KIND",
    "PLURAL",
    "SCHEMA_RULE",
    "SHORT_NAMES",
    "SINGULAR",
    "VERSION",
    "Environment",
    "ProductionService",
    "ProductionServiceSpec",
    "ProductionServiceStatus",
    "SpecError",
    "parse_production_service",
]

# Building the pydantic models takes a tenth of a second, a fifth of `prodready validate`'s
# start-up, and the rules engine needs only the label keys and sensitive words from this
# package: the models load on first use.
_EAGER = frozenset({"SCHEMA_RULE", "SpecError"})
_LAZY = {
    name: "prodready.api.parse" if name == "parse_production_service" else "prodready.api.models"
    for name in __all__
    if name not in _EAGER
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

"""The ProductionService API: pydantic models, the CRD generated from them, and SpecError.

`parse_production_service` is the one way in: it validates a whole object (schema and the
cross-field rules the CRD's CEL rules also enforce) and raises a SpecError naming the
field and the checklist rule.
"""

from prodready.api.errors import SCHEMA_RULE, SpecError
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

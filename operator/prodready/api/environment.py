"""The environments a workload runs in, one enum for the CRD and the rules engine.

A module of its own, free of pydantic, so that the rules engine (and `prodready validate`'s
start-up) can use it without building the CRD's models.
"""

from __future__ import annotations

from enum import StrEnum


class Environment(StrEnum):
    """An environment: what a workload declares (PR-CF-003) and the checklist's profile.

    The profile decides which rules apply and how strictly; `spec.environment` of a
    ProductionService and the rules engine (`rules.Environment`) use this same enum.
    """

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"

"""A policy's mode and what a workload's own exemption annotation may exempt.

A module of its own, free of pydantic (like `api.environment`), so the rules engine and
`prodready validate`'s start-up can use the enums without building the policy models.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    """What a policy does with the workloads it selects.

    Enforce: admission denies a workload that fails an error-severity rule. Audit:
    admission warns and reports record. Off: the selected workloads are not checked.
    """

    ENFORCE = "Enforce"
    AUDIT = "Audit"
    OFF = "Off"


class AnnotationAllowance(StrEnum):
    """Which rules a workload's own `prodready.io/exempt` annotation may exempt."""

    ALL = "All"
    WARNINGS = "Warnings"
    NONE = "None"

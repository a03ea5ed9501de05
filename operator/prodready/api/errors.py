"""A user's mistake in a ProductionService, as one value that names field, rule and problem."""

from __future__ import annotations

SCHEMA_RULE = "schema"
"""The `rule` of a SpecError that is a plain schema violation, not a checklist rule."""


class SpecError(ValueError):
    """A ProductionService the renderer refuses.

    `field` is a path into the object (`spec.env[2].value`), `rule` a checklist ID
    (`PR-LG-003`) or `schema`, `message` says what is wrong and how to fix it.
    """

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(field, rule, message)
        self.field = field
        self.rule = rule
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message} [{self.rule}]"

    def __repr__(self) -> str:
        return f"SpecError(field={self.field!r}, rule={self.rule!r}, message={self.message!r})"

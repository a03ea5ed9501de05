"""CEL validation rules as pydantic's `json_schema_extra`: the CRD generator turns them into
`x-kubernetes-validations`, so the apiserver checks what the pydantic validator beside
each one checks in Python (the ProductionService and the policy models both use these)."""

from __future__ import annotations

from pydantic.config import JsonDict, JsonValue


def cel(rule: str, message: str, *, field_path: str | None = None) -> JsonDict:
    """One `x-kubernetes-validations` entry; `field_path` points the error below `self`."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    return entry


def validations(*rules: JsonDict) -> JsonDict:
    """The `json_schema_extra` that attaches CEL rules to a model or field."""
    entries: list[JsonValue] = [*rules]
    return {"x-kubernetes-validations": entries}

"""Turn a ProductionService dict into the model, or into one SpecError naming the field."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from prodready.api.errors import SCHEMA_RULE, SpecError
from prodready.api.models import ProductionService

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Friendlier wording for the errors users hit most; anything else keeps pydantic's text.
# Pydantic's messages never include the input value, which matters here: it may be a secret.
_MESSAGES = {
    "missing": "required field is missing",
    "extra_forbidden": "unknown field: not part of the ProductionService schema",
}


def format_path(location: Sequence[int | str]) -> str:
    """`('spec', 'env', 2, 'value')` -> `spec.env[2].value`; odd keys go in brackets."""
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _IDENTIFIER.match(part):
            text += f".{part}" if text else part
        else:
            text += f"[{part}]"
    return text or "(object)"


def spec_error_from(error: ErrorDetails) -> SpecError:
    """One pydantic error as a SpecError."""
    path = format_path(error["loc"])
    context = error.get("ctx") or {}
    if error["type"] == "prodready_rule":
        field = str(context["field"])
        return SpecError(
            f"{path}.{field}" if path != "(object)" else field,
            str(context["rule"]),
            str(context["message"]),
        )
    return SpecError(path, SCHEMA_RULE, _MESSAGES.get(error["type"], error["msg"]))


def spec_errors(exc: ValidationError) -> list[SpecError]:
    """Every problem pydantic found, as SpecErrors."""
    return [spec_error_from(error) for error in exc.errors(include_url=False, include_input=False)]


def parse_production_service(obj: Mapping[str, Any]) -> ProductionService:
    """Validate a whole ProductionService dict; a SpecError names the first bad field.

    When there are several problems, the message of the first mentions the others.
    """
    if not isinstance(obj, Mapping):
        raise SpecError("(object)", SCHEMA_RULE, "a ProductionService must be a mapping")
    try:
        return ProductionService.model_validate(dict(obj))
    except ValidationError as exc:
        errors = spec_errors(exc)
        first = errors[0]
        if len(errors) == 1:
            raise first from None
        others = "; ".join(str(error) for error in errors[1:])
        more = f"{first.message} (and {len(errors) - 1} more: {others})"
        raise SpecError(first.field, first.rule, more) from None

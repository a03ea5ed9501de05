"""The JSON Schema of `.prodready.yaml`, generated from the model that validates it.

Editors that speak JSON Schema (VS Code's YAML extension, JetBrains IDEs) complete and
check the file when it starts with

    # yaml-language-server: $schema=https://.../schemas/prodready-config.schema.json

The schema is written by `make generate` to `schemas/prodready-config.schema.json`; a test
proves the committed file is current. It describes the same `RulesConfig` that
`prodready validate --config` and the operator load, so an edit to the model is an edit
to the schema.
"""

from __future__ import annotations

import json
from typing import Any

from prodready.rules.config_file import ConfigFile
from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.registry import RULES

SCHEMA_ID = "https://github.com/prodready/prodready/blob/main/schemas/prodready-config.schema.json"
SCHEMA_PATH = "schemas/prodready-config.schema.json"


def config_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the rules configuration file."""
    schema = ConfigFile.model_json_schema(mode="validation")
    rule_ids = [rule.id for rule in RULES if rule.id != LIMITS_RULE_ID]
    # Rule IDs are checked by a validator pydantic cannot express: list them for editors.
    rule_id = {"type": "string", "enum": rule_ids}
    properties = schema["properties"]
    properties["severity"]["propertyNames"] = rule_id
    properties["disabled"]["items"] = rule_id
    exemption = schema.get("$defs", {}).get("Exemption")
    if exemption is not None:
        exemption["properties"]["rules"]["items"] = rule_id
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **{key: value for key, value in schema.items() if key not in ("title", "description")},
        "title": ".prodready.yaml",
        "description": "prodready's rules configuration: `prodready validate --config FILE`, "
        "or the first .prodready.yaml found from the working directory upward.",
    }


def config_schema_json() -> str:
    """The schema as the committed file holds it."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"

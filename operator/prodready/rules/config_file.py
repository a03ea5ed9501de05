"""The pydantic model that validates a rules configuration file (`.prodready.yaml`).

Imported only when a file is given (`rules.config.parse_config`): building pydantic's
validators is most of what a small `prodready validate` would otherwise spend starting up.
What the engine reads are `rules.config`'s plain dataclasses; `to_config` converts a
validated file into them. The class names are the JSON Schema's definitions
(`rules.schema`), so they match the dataclasses they validate.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from prodready.rules import config
from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.model import Severity
from prodready.rules.registry import RULES_BY_ID

_ENV_VARS = config.EnvVarNames()
_CONFIG = config.RulesConfig()


def _known_rule(rule_id: str) -> str:
    if rule_id not in RULES_BY_ID:
        raise ValueError(f"unknown rule ID {rule_id!r} (see `prodready rules`)")
    if rule_id == LIMITS_RULE_ID:
        raise ValueError(
            f"{LIMITS_RULE_ID} cannot be disabled, exempted or given another severity: it is "
            "what bounds the work one object may cost (see `prodready rules`)"
        )
    return rule_id


KnownRuleId = Annotated[str, AfterValidator(_known_rule)]


class EnvVarNames(BaseModel):
    """Names of the container environment variables the rules read."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_format: str = Field(default=_ENV_VARS.log_format, min_length=1)
    log_level: str = Field(default=_ENV_VARS.log_level, min_length=1)
    debug: str = Field(default=_ENV_VARS.debug, min_length=1)
    cors_allowed_origins: str = Field(default=_ENV_VARS.cors_allowed_origins, min_length=1)
    rate_limit: str = Field(default=_ENV_VARS.rate_limit, min_length=1)
    environment: str = Field(default=_ENV_VARS.environment, min_length=1)
    shutdown_timeout: str = Field(default=_ENV_VARS.shutdown_timeout, min_length=1)


class Exemption(BaseModel):
    """Exempt the matching objects from the listed rules, for a stated reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[KnownRuleId] = Field(min_length=1)
    namespace: str = "*"
    name: str = "*"
    kind: str = "*"
    image: str = "*"
    reason: str = Field(min_length=1, pattern=r"\S")


class ConfigFile(BaseModel):
    """Severity overrides, disabled rules, env-var names, exemptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: dict[KnownRuleId, Severity] = Field(default_factory=dict)
    disabled: list[KnownRuleId] = Field(default_factory=list)
    env_vars: EnvVarNames = Field(default_factory=EnvVarNames)
    exemptions: list[Exemption] = Field(default_factory=list)
    sensitive_names: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: list(_CONFIG.sensitive_names), min_length=1
    )
    secrets_complete: bool = _CONFIG.secrets_complete
    third_party_images: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    health_path: str | None = Field(default=_CONFIG.health_path, pattern=r"^/[^\s]*$")

    def to_config(self) -> config.RulesConfig:
        """The validated file as the engine reads it."""
        return config.RulesConfig(
            severity=dict(self.severity),
            disabled=list(self.disabled),
            env_vars=config.EnvVarNames(**self.env_vars.model_dump()),
            exemptions=[config.Exemption(**e.model_dump()) for e in self.exemptions],
            sensitive_names=list(self.sensitive_names),
            secrets_complete=self.secrets_complete,
            third_party_images=list(self.third_party_images),
            health_path=self.health_path,
        )

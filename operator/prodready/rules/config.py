"""The rules configuration file (`prodready validate --config FILE`, the operator's settings).

Still read as it always was; a `ReadinessPolicy` (`prodready.api.policy`, `validate --policy
FILE`) says everything this file says, per selected namespace and workload, plus a mode
(`rules.policy.compile_policy` maps a policy onto a `RulesConfig`). A policy file given to
`--config` is refused with a message naming `--policy`.

```yaml
severity:                 # override a rule's severity in every environment
  PR-SC-005: error
disabled: [PR-MO-002]     # rules not evaluated at all (no finding, not even `skip`)
env_vars:                 # the container environment variables the rules read
  log_format: APP_LOG_FORMAT
exemptions:               # reported as `skip` with the reason, never dropped
  - rules: [PR-RS-002]
    namespace: "preview-*"  # shell-style globs; "*" (the default) matches anything
    name: "*"
    kind: Deployment
    image: "*"              # matches when every container's image matches
    reason: preview environments run one replica
sensitive_names: [password, token]   # replaces the default list (PR-LG-003, PR-CF-001)
secrets_complete: false   # true: a referenced Secret absent from the input is missing
third_party_images: ["docker.io/library/*", "quay.io/prometheus/*"]  # not the app's conventions
health_path: /healthz     # what a probe fix points at when the workload declares none
```

pydantic validates the file once at load; the engine turns it into plain lookups so
nothing here runs per object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.loader import alias_expansion
from prodready.rules.model import Severity
from prodready.rules.registry import RULES_BY_ID
from prodready.rules.subject import DEFAULT_SENSITIVE_NAMES, RuleSettings

# A config file is a few lines; anything this large is a mistake, not a config.
MAX_CONFIG_BYTES = 1 << 20

_DEFAULTS = RuleSettings()


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


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

    log_format: str = Field(default=_DEFAULTS.log_format, min_length=1)
    log_level: str = Field(default=_DEFAULTS.log_level, min_length=1)
    debug: str = Field(default=_DEFAULTS.debug, min_length=1)
    cors_allowed_origins: str = Field(default=_DEFAULTS.cors_allowed_origins, min_length=1)
    rate_limit: str = Field(default=_DEFAULTS.rate_limit, min_length=1)
    environment: str = Field(default=_DEFAULTS.environment, min_length=1)
    shutdown_timeout: str = Field(default=_DEFAULTS.shutdown_timeout, min_length=1)


class Exemption(BaseModel):
    """Exempt the matching objects from the listed rules, for a stated reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[KnownRuleId] = Field(min_length=1)
    namespace: str = "*"
    name: str = "*"
    kind: str = "*"
    image: str = "*"
    reason: str = Field(min_length=1, pattern=r"\S")


class RulesConfig(BaseModel):
    """Severity overrides, disabled rules, env-var names, exemptions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    severity: dict[KnownRuleId, Severity] = Field(default_factory=dict)
    disabled: list[KnownRuleId] = Field(default_factory=list)
    env_vars: EnvVarNames = Field(default_factory=EnvVarNames)
    exemptions: list[Exemption] = Field(default_factory=list)
    sensitive_names: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=lambda: list(DEFAULT_SENSITIVE_NAMES), min_length=1
    )
    secrets_complete: bool = False
    # Images the team does not build (shell-style globs, e.g. "docker.io/library/*"): the
    # rules reading the app's own variables (LOG_FORMAT, LOG_LEVEL, DEBUG, CORS) note them
    # as not applicable instead of failing them.
    third_party_images: list[Annotated[str, Field(min_length=1)]] = Field(default_factory=list)
    # The health endpoint a probe fix points at when a workload declares none (annotation
    # prodready.io/health-path); unset, a missing probe is reported without a patch.
    health_path: str | None = Field(default=None, pattern=r"^/[^\s]*$")


def _format_validation_error(source: str, error: ValidationError) -> str:
    lines = [f"{source}: invalid rules configuration:"]
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


def parse_config(data: object, *, source: str = "<config>") -> RulesConfig:
    """Validate already-parsed configuration data; raises `ConfigError`."""
    if data is None:
        return RulesConfig()
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: the configuration must be a mapping, not {type(data).__name__}"
        )
    if data.get("kind") in ("ReadinessPolicy", "ReadinessException"):
        raise ConfigError(
            f"{source}: holds a {data['kind']}, not a rules configuration: use --policy {source}"
        )
    try:
        return RulesConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def _safe_load(raw: bytes, source: str) -> object:
    """One YAML document, refusing alias bombs like the manifest loader does."""
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _, problem = alias_expansion(node)
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def load_config(path: str | Path) -> RulesConfig:
    """Read and validate a YAML (or JSON) configuration file; raises `ConfigError`."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"{source}: cannot read the configuration: {error.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: the configuration is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = _safe_load(raw, source)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}{where}: not valid YAML: {error.problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None
    return parse_config(data, source=source)

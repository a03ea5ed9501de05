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

The file is validated once at load by a pydantic model (`rules.config_file`, imported only
when a file is given); the engine reads the plain dataclasses below and turns them into
plain lookups so nothing here runs per object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from prodready.rules.loader import alias_expansion
from prodready.rules.model import Severity
from prodready.rules.subject import DEFAULT_SENSITIVE_NAMES, RuleSettings

if TYPE_CHECKING:
    from pydantic import ValidationError

# A config file is a few lines; anything this large is a mistake, not a config.
MAX_CONFIG_BYTES = 1 << 20

_DEFAULTS = RuleSettings()


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file and the field."""


@dataclass(frozen=True, kw_only=True)
class EnvVarNames:
    """Names of the container environment variables the rules read."""

    log_format: str = _DEFAULTS.log_format
    log_level: str = _DEFAULTS.log_level
    debug: str = _DEFAULTS.debug
    cors_allowed_origins: str = _DEFAULTS.cors_allowed_origins
    rate_limit: str = _DEFAULTS.rate_limit
    environment: str = _DEFAULTS.environment
    shutdown_timeout: str = _DEFAULTS.shutdown_timeout


@dataclass(frozen=True, kw_only=True)
class Exemption:
    """Exempt the matching objects from the listed rules, for a stated reason."""

    rules: list[str]
    namespace: str = "*"
    name: str = "*"
    kind: str = "*"
    image: str = "*"
    reason: str


@dataclass(frozen=True, kw_only=True)
class RulesConfig:
    """Severity overrides, disabled rules, env-var names, exemptions.

    Built from a validated file (`load_config`, `parse_config`) or a validated policy
    (`rules.policy.compile_policy`); the constructor itself checks nothing.
    """

    severity: dict[str, Severity] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    env_vars: EnvVarNames = field(default_factory=EnvVarNames)
    exemptions: list[Exemption] = field(default_factory=list)
    sensitive_names: list[str] = field(default_factory=lambda: list(DEFAULT_SENSITIVE_NAMES))
    secrets_complete: bool = False
    # Images the team does not build (shell-style globs, e.g. "docker.io/library/*"): the
    # rules reading the app's own variables (LOG_FORMAT, LOG_LEVEL, DEBUG, CORS) note them
    # as not applicable instead of failing them.
    third_party_images: list[str] = field(default_factory=list)
    # The health endpoint a probe fix points at when a workload declares none (annotation
    # prodready.io/health-path); unset, a missing probe is reported without a patch.
    health_path: str | None = None


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
    from pydantic import ValidationError

    from prodready.rules.config_file import ConfigFile

    try:
        return ConfigFile.model_validate(data).to_config()
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

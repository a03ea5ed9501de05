"""What a rule function receives (`Subject`) and returns (`Outcome`s).

A rule is `def check(subject: Subject) -> Iterable[Outcome]`: it yields one outcome per
thing it judged (a container, or the workload as a whole) and nothing when it has nothing
to judge (a worker has no probes to check). The engine adds the rule's metadata, the
effective severity, exemptions and the object reference, so rules stay small.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from prodready.api.sensitive import SENSITIVE_WORDS, SensitiveNames, sensitive_names
from prodready.rules.context import ENVIRONMENT_KEY, Container, Workload
from prodready.rules.envvars import EnvValue, resolve
from prodready.rules.model import Environment, JsonPatch
from prodready.rules.secrets import secret_kind

_URL_WITH_PASSWORD = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#@\s:]*:[^/?#@\s]+@")
_ONLY_REFERENCES = re.compile(r"^(\$\([A-Za-z_][A-Za-z0-9_]*\))+$")

# The same vocabulary the ProductionService API rejects in plain env vars, so the renderer
# and the rules agree on what looks like a secret.
DEFAULT_SENSITIVE_NAMES: tuple[str, ...] = tuple(SENSITIVE_WORDS)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RuleSettings:
    """The run-wide knobs rules read (built once from `RulesConfig`)."""

    log_format: str = "LOG_FORMAT"
    log_level: str = "LOG_LEVEL"
    debug: str = "DEBUG"
    cors_allowed_origins: str = "CORS_ALLOWED_ORIGINS"
    rate_limit: str = "RATE_LIMIT"
    environment: str = "ENVIRONMENT"
    shutdown_timeout: str = "SHUTDOWN_TIMEOUT"
    sensitive_names: Sequence[str] = DEFAULT_SENSITIVE_NAMES
    secrets_complete: bool = False
    # True in Enforce: a ConfigMap absent from the input does not exist (rules.envvars).
    config_maps_complete: bool = False
    # Image globs of software the team does not write (RulesConfig.third_party_images): the
    # rules that read the app's own variables (LOG_FORMAT, CORS…) do not apply to them.
    third_party_images: Sequence[str] = ()
    # The health endpoint a probe fix may point at (RulesConfig.health_path); none: no patch.
    health_path: str | None = None
    # The deciding policy's own rule IDs (customRules): PR-EX-001 knows them too.
    custom_rule_ids: frozenset[str] = frozenset()
    _names: SensitiveNames = field(init=False, repr=False, compare=False)
    _third_party: re.Pattern[str] | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_names", sensitive_names(tuple(self.sensitive_names)))
        globs = "|".join(fnmatch.translate(glob) for glob in self.third_party_images)
        object.__setattr__(self, "_third_party", re.compile(globs) if globs else None)

    def third_party_glob(self, image: object) -> str | None:
        """The configured glob marking `image` third-party, or None."""
        if self._third_party is None or not isinstance(image, str):
            return None
        image = image.strip()
        if not self._third_party.match(image):
            return None
        return next(g for g in self.third_party_images if fnmatch.fnmatchcase(image, g))

    def is_sensitive_name(self, name: str) -> bool:
        """True if an env var name looks like it holds a secret (`api.sensitive`'s verdict).

        `SECRETARY` is not sensitive while `dbPassword` is; a qualifier as the last word
        (`DB_PASSWORD_FILE`, `TOKEN_TTL`, `SECRET_NAME`) makes it about a secret, not one.
        """
        return self._names.matches(name)

    def secret_reason(self, name: str, value: str) -> str | None:
        """Why a literal `name=value` is a secret in plain sight, or None. Never the value."""
        if not value or _ONLY_REFERENCES.match(value):
            return None
        if self.is_sensitive_name(name):
            return f"{name} looks sensitive and carries a literal value"
        if _URL_WITH_PASSWORD.match(value):
            return f"{name} embeds a password in a URL"
        kind = secret_kind(value)
        if kind is not None:
            return f"{name} holds a literal {kind}"
        return None


# Where an environment declaration was found, for messages.
SOURCE_NAMES = {
    "spec": "ProductionService spec.environment",
    "label": f"label {ENVIRONMENT_KEY}",
    "annotation": f"annotation {ENVIRONMENT_KEY}",
    "template-label": f"pod template label {ENVIRONMENT_KEY}",
    "template-annotation": f"pod template annotation {ENVIRONMENT_KEY}",
    "container-env": "container environment variable",
    "namespace": f"Namespace label {ENVIRONMENT_KEY}",
    "policy": "ReadinessPolicy environment",
    "argument": "caller's default (--env)",
    "default": "default (prod)",
}


@dataclass(frozen=True, slots=True)
class EnvironmentDecision:
    """The profile a workload is evaluated under, and what declared it.

    `declared` lists every (source, raw value) found, so PR-CF-003 can report unknown
    values and disagreements; `source` is where the winning value came from.
    """

    environment: Environment
    source: str
    declared: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Subject:
    """One workload under evaluation: the object, its context, its profile and the settings."""

    workload: Workload
    environment: EnvironmentDecision
    settings: RuleSettings
    rendered: bool = False
    _env_cache: dict[tuple[bool, int, str], EnvValue] = field(default_factory=dict)
    _facts: dict[Hashable, Any] = field(default_factory=dict)

    @property
    def prod(self) -> bool:
        """Evaluated under the prod profile."""
        return self.environment.environment is Environment.PROD

    def fact(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()` once per workload: a fact about the whole workload that a rule needs
        for each container (its required grace period, its declared dependencies) is
        computed once, so the rule stays linear in the number of containers."""
        if key not in self._facts:
            self._facts[key] = compute()
        return cast("T", self._facts[key])

    def env(self, container: Container, name: str) -> EnvValue:
        """The resolved value of variable `name` in `container` (cached per run)."""
        key = (container.init, container.index, name)
        value = self._env_cache.get(key)
        if value is None:
            value = resolve(
                container,
                name,
                self.workload.context,
                self.workload.namespace,
                config_maps_complete=self.settings.config_maps_complete,
            )
            self._env_cache[key] = value
        return value


@dataclass(frozen=True, slots=True)
class Outcome:
    """One verdict of a rule: passed or not, where, why, and optionally a JSON patch."""

    passed: bool
    path: str
    message: str
    container: str | None = None
    patch: JsonPatch | None = None


def passed(path: str, message: str, container: Container | None = None) -> Outcome:
    """A passing outcome."""
    return Outcome(True, path, message, container.name if container else None)


def failed(
    path: str, message: str, container: Container | None = None, patch: JsonPatch | None = None
) -> Outcome:
    """A failing outcome, with a patch when one can be derived safely."""
    return Outcome(False, path, message, container.name if container else None, patch)


def judged(
    container: Container, problems: list[tuple[str, str]], path: str, message: str
) -> Outcome:
    """A container with `(field, what is wrong)` problems fails at the first one's field,
    naming them all; without problems it passes at `path` with `message`."""
    if problems:
        return failed(
            f"{container.path}.{problems[0][0]}",
            f"container {container.name}: " + "; ".join(p[1] for p in problems),
            container,
        )
    return passed(path, message, container)


def escape_pointer(token: str) -> str:
    """Escape one JSON-pointer reference token (RFC 6901)."""
    return token.replace("~", "~0").replace("/", "~1")

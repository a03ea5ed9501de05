"""Policies as data the rules evaluate: which policy decides for a workload, and with what.

Pure: no I/O, no clock (the caller passes `now`), no Kubernetes client. The same
functions serve `prodready validate --policy FILE` (objects from a file), the admission
webhook and the audit (objects from the operator's store).

```python
from prodready.rules.policy import PolicySet, compile_policy, compile_exception, resolve

policies = PolicySet(
    policies=[compile_policy(obj) for obj in readiness_policy_objects],     # PolicyError
    exceptions=[compile_exception(obj) for obj in readiness_exception_objects],
    default=default_policy(rules_config),     # when nothing selects a workload
)
effective = resolve(
    policies,
    kind="Deployment", namespace="shop", name="api", labels=deployment_labels,
    namespace_labels=namespace_labels, now=datetime.now(UTC),
)
effective.mode          # Mode.ENFORCE | AUDIT | OFF: deny, warn, or do not check
effective.policy        # name of the ReadinessPolicy that decided (None: no policy did)
effective.source        # "ReadinessPolicy production", "namespace label prodready.io/enforce",
                        # or "default"
reports = evaluate(objects, policies=policies, now=now)   # resolves per workload itself
reports[0].policy, reports[0].mode                        # the same decision, reported
```

**Which policy decides.** A ReadinessPolicy selects a workload when its
`namespaceSelector` matches the labels of the workload's Namespace and its
`objectSelector` matches the workload's own labels (an absent selector matches
everything). A namespace labelled `prodready.io/enforce: "true"` (or `prodready.io/audit:
"true"`) counts as one more candidate: a policy with default settings in mode Enforce (or
Audit); with both labels, Enforce. Among the candidates the **strictest mode wins**
(Enforce over Audit over Off); at equal mode a ReadinessPolicy beats the namespace label,
and among ReadinessPolicies the **first by name** wins. Only the deciding policy's
settings apply (they are never merged), and reports name it. With no candidate the
set's `default` decides (offline: Audit with the `--config` settings or the built-in ones;
in the cluster: whatever the operator passes, e.g. Off).

**Environment: a floor.** The deciding policy's `environment.value`, or the value of its
`environment.namespaceLabel` on the Namespace (by default, and without a policy, the
Namespace's `prodready.io/environment` label or annotation) is the least strict profile a
workload is checked under. A workload may declare a stricter one (a `prod` label in a
`staging` namespace is checked as prod), never a laxer one (a `dev` label in a `prod`
namespace is still prod).

**Exemption annotations.** A workload's own `prodready.io/exempt` annotation exempts a
rule only where the deciding policy's `annotationExemptions` allows it: `All`,
`Warnings` (rules at warning severity under this policy) or `None`, plus the rules it
lists; the default is Warnings in Enforce and All in Audit and Off. Each rule needs its
own reason (`exemption_reasons`): `prodready.io/exempt-reason` holds `RULE: reason`
entries separated by `;` (what a ProductionService's `spec.exemptions` renders), or, when
one rule alone is listed, plain text. A rule without its own reason is not exempted.

**Exceptions.** A ReadinessException applies to the workloads of its own namespace that
its `match` covers (names, kinds, label selector: all the given ones), while `now` is
before its `expires` and provided it lasts (from its creation, or from `now` when it has
no creation time, as in a file) no longer than the deciding policy's
`maxExceptionDays`. An excepted rule is reported as `skip` naming the exception, who
approved it and until when. `exception_state` gives its status (Active or Expired).

**Enforce and values nobody can see.** In Enforce a variable set from a ConfigMap that is
not in the input counts as missing (the caller passes every ConfigMap of the namespace as
context), so `envFrom` of an optional ConfigMap that does not exist cannot hide a
missing `LOG_FORMAT`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from prodready.api.enforcement import AnnotationAllowance, Mode
from prodready.api.labels import DOMAIN
from prodready.rules.config import EnvVarNames, Exemption, RulesConfig
from prodready.rules.context import ENVIRONMENT_KEY, normalise_environment
from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.model import Environment, Severity
from prodready.rules.registry import RULES_BY_ID
from prodready.rules.selectors import Selector

if TYPE_CHECKING:
    from prodready.rules.custom import CompiledCustomRule

POLICY_KIND: Final = "ReadinessPolicy"
EXCEPTION_KIND: Final = "ReadinessException"
ENFORCE_LABEL: Final = f"{DOMAIN}/enforce"
AUDIT_LABEL: Final = f"{DOMAIN}/audit"
DEFAULT_MAX_EXCEPTION_DAYS: Final = 90

_STRICTNESS: Final = {Mode.ENFORCE: 2, Mode.AUDIT: 1, Mode.OFF: 0}
_ENVIRONMENT_ORDER: Final = {Environment.DEV: 0, Environment.STAGING: 1, Environment.PROD: 2}
_REASON_ENTRY = re.compile(
    r"^\s*([A-Z][A-Z0-9]{1,9}-[A-Z0-9]{1,10}(?:-[A-Z0-9]{1,10})?)\s*:\s*(.*?)\s*$", re.DOTALL
)
_RESERVED_PREFIX: Final = "PR-"


class PolicyError(ValueError):
    """A policy or exception object cannot be used; the message names the object and field."""


def stricter(a: Environment, b: Environment) -> Environment:
    """The stricter of two environments (prod > staging > dev)."""
    return a if _ENVIRONMENT_ORDER[a] >= _ENVIRONMENT_ORDER[b] else b


def label_mode(namespace_labels: Mapping[str, str]) -> Mode | None:
    """The mode the namespace's `prodready.io/enforce|audit` labels ask for (both: Enforce)."""
    if namespace_labels.get(ENFORCE_LABEL) == "true":
        return Mode.ENFORCE
    if namespace_labels.get(AUDIT_LABEL) == "true":
        return Mode.AUDIT
    return None


@dataclass(frozen=True, kw_only=True)
class ExceptionGrant:
    """One rule excepted for one workload by one ReadinessException."""

    exception: str  # namespace/name
    reason: str
    approved_by: str
    expires: datetime

    def describe(self) -> str:
        """What a `skip` finding says about it."""
        until = self.expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f"ReadinessException {self.exception} (approved by {self.approved_by}, "
            f"until {until}): {self.reason}"
        )


@dataclass(frozen=True, kw_only=True)
class EffectivePolicy:
    """What applies to one workload: the decision `resolve` reaches, as plain data.

    `environment` is the floor (None: no floor) and `environment_source` where it came
    from (`policy` or `namespace`); `excepted` maps rule IDs to the exception that
    excepts them; `refused_exceptions` says why exceptions covering the workload do not
    apply (expired, too long).
    """

    mode: Mode
    policy: str | None
    source: str
    config: RulesConfig
    environment: Environment | None = None
    environment_source: str = ""
    environment_declared: str | None = None
    annotation_allow: AnnotationAllowance = AnnotationAllowance.ALL
    annotation_rules: frozenset[str] = frozenset()
    excepted: Mapping[str, ExceptionGrant] = field(default_factory=dict)
    refused_exceptions: tuple[str, ...] = ()
    custom_rules: tuple[CompiledCustomRule, ...] = ()

    def annotation_may_exempt(self, rule_id: str, severity: Severity) -> bool:
        """True if a workload's own annotation may exempt `rule_id` at `severity`."""
        if rule_id in self.annotation_rules or self.annotation_allow is AnnotationAllowance.ALL:
            return True
        return self.annotation_allow is AnnotationAllowance.WARNINGS and (
            severity is Severity.WARNING
        )

    def describe(self) -> str:
        """`ReadinessPolicy production (Enforce)` and the like, for messages."""
        return f"{self.source} ({self.mode.value})"


@dataclass(frozen=True, kw_only=True)
class CompiledPolicy:
    """A ReadinessPolicy as plain lookups (`compile_policy`)."""

    name: str
    generation: int | None
    mode: Mode
    namespace_selector: Selector | None
    object_selector: Selector | None
    environment_value: Environment | None
    environment_label: str | None
    config: RulesConfig
    annotation_allow: AnnotationAllowance | None
    annotation_rules: frozenset[str]
    max_exception: timedelta
    problems: tuple[str, ...] = ()
    custom_rules: tuple[CompiledCustomRule, ...] = ()
    custom_rule_ids: frozenset[str] = frozenset()
    """Every custom ID the policy declares, compiled or not (a broken one is a problem)."""

    def selects(self, labels: Mapping[str, str], namespace_labels: Mapping[str, str]) -> bool:
        """True if the policy covers a workload with these labels in such a namespace."""
        if self.namespace_selector is not None and not self.namespace_selector.matches(
            namespace_labels
        ):
            return False
        return self.object_selector is None or self.object_selector.matches(labels)


@dataclass(frozen=True, kw_only=True)
class CompiledException:
    """A ReadinessException as plain lookups (`compile_exception`)."""

    namespace: str
    name: str
    reasons: Mapping[str, str]
    names: frozenset[str] | None
    kinds: frozenset[str] | None
    selector: Selector | None
    expires: datetime
    created: datetime | None
    approved_by: str
    problems: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """namespace/name."""
        return f"{self.namespace}/{self.name}"

    def covers(self, *, kind: str, name: str, labels: Mapping[str, str]) -> bool:
        """True if `match` covers this workload of the exception's namespace."""
        if self.names is not None and name not in self.names:
            return False
        if self.kinds is not None and kind not in self.kinds:
            return False
        return self.selector is None or self.selector.matches(labels)

    def refusal(self, now: datetime, max_duration: timedelta, policy: str) -> str | None:
        """Why the exception does not apply now under `policy`, or None if it does."""
        if now >= self.expires:
            return f"ReadinessException {self.ref} expired at {_stamp(self.expires)}"
        start = self.created or now
        if self.expires - start > max_duration:
            return (
                f"ReadinessException {self.ref} lasts longer than the {max_duration.days} "
                f"day(s) {policy} allows"
            )
        return None


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def exception_state(exception: CompiledException, now: datetime) -> str:
    """`Active` or `Expired`: what the operator writes to the exception's status."""
    return "Expired" if now >= exception.expires else "Active"


def default_policy(config: RulesConfig | None = None, mode: Mode = Mode.AUDIT) -> EffectivePolicy:
    """What applies when no policy selects a workload: `config` (or the built-in settings)."""
    return EffectivePolicy(mode=mode, policy=None, source="default", config=config or RulesConfig())


class PolicySet:
    """Every policy and exception in force, and the default for unselected workloads.

    The policies are kept in the order that decides (strictest mode first, then by name),
    so `resolve` takes the first that selects. `namespace_labels_select`: whether the
    `prodready.io/enforce|audit` namespace labels count as candidates.
    """

    __slots__ = ("_by_namespace", "default", "exceptions", "namespace_labels_select", "policies")

    def __init__(
        self,
        *,
        policies: Iterable[CompiledPolicy] = (),
        exceptions: Iterable[CompiledException] = (),
        default: EffectivePolicy | None = None,
        namespace_labels_select: bool = True,
    ) -> None:
        self.policies = tuple(sorted(policies, key=lambda p: (-_STRICTNESS[p.mode], p.name)))
        self.exceptions = tuple(sorted(exceptions, key=lambda e: (e.namespace, e.name)))
        self.default = default or default_policy()
        self.namespace_labels_select = namespace_labels_select
        by_namespace: dict[str, list[CompiledException]] = {}
        for exception in self.exceptions:
            by_namespace.setdefault(exception.namespace, []).append(exception)
        self._by_namespace = {ns: tuple(items) for ns, items in by_namespace.items()}

    def exceptions_in(self, namespace: str) -> tuple[CompiledException, ...]:
        """The exceptions of one namespace, by name."""
        return self._by_namespace.get(namespace, ())

    @property
    def custom_rule_ids(self) -> frozenset[str]:
        """The custom rule IDs any policy of the set declares."""
        return frozenset().union(*(policy.custom_rule_ids for policy in self.policies))

    @property
    def problems(self) -> list[str]:
        """What makes a policy or exception not Ready (unknown rule IDs, custom rules that
        do not compile), one line each."""
        found = [
            f"{POLICY_KIND} {policy.name}: {problem}"
            for policy in self.policies
            for problem in policy.problems
        ]
        found += [
            f"{EXCEPTION_KIND} {exception.ref}: {problem}"
            for exception in self.exceptions
            for problem in exception.problems
        ]
        found += [
            f"{EXCEPTION_KIND} {exception.ref}: {problem}"
            for exception in self.exceptions
            for problem in self.exception_problems(exception)
        ]
        return found

    def exception_problems(self, exception: CompiledException) -> list[str]:
        """Custom rule IDs `exception` names that no policy of the set declares."""
        declared = self.custom_rule_ids
        return [
            f"spec.rules: unknown rule ID {rule_id} (no ReadinessPolicy declares it in customRules)"
            for rule_id in sorted(exception.reasons)
            if rule_id not in RULES_BY_ID and rule_id not in declared
        ]


def _environment_floor(
    policy: CompiledPolicy | None,
    namespace_labels: Mapping[str, str],
    namespace_annotations: Mapping[str, str],
) -> tuple[Environment | None, str, str | None]:
    """(floor, source, raw value) from the deciding policy or the Namespace."""
    if policy is not None and policy.environment_value is not None:
        value = policy.environment_value
        return value, "policy", value.value
    if policy is not None and policy.environment_label is not None:
        raw = namespace_labels.get(policy.environment_label)
        return normalise_environment(raw), "policy", raw
    for metadata in (namespace_labels, namespace_annotations):
        raw = metadata.get(ENVIRONMENT_KEY)
        if isinstance(raw, str) and raw:
            return normalise_environment(raw), "namespace", raw
    return None, "", None


def resolve(
    policies: PolicySet,
    *,
    kind: str,
    namespace: str,
    name: str,
    labels: Mapping[str, str],
    namespace_labels: Mapping[str, str],
    now: datetime,
    namespace_annotations: Mapping[str, str] | None = None,
) -> EffectivePolicy:
    """The policy that decides for one workload, with its exceptions (see the docstring)."""
    deciding: CompiledPolicy | None = None
    for candidate in policies.policies:
        if candidate.selects(labels, namespace_labels):
            deciding = candidate
            break
    from_label = label_mode(namespace_labels) if policies.namespace_labels_select else None
    annotations = namespace_annotations or {}
    if deciding is not None and (
        from_label is None or _STRICTNESS[deciding.mode] >= _STRICTNESS[from_label]
    ):
        floor, floor_source, raw = _environment_floor(deciding, namespace_labels, annotations)
        allow = deciding.annotation_allow or (
            AnnotationAllowance.WARNINGS
            if deciding.mode is Mode.ENFORCE
            else AnnotationAllowance.ALL
        )
        base = EffectivePolicy(
            mode=deciding.mode,
            policy=deciding.name,
            source=f"{POLICY_KIND} {deciding.name}",
            config=deciding.config,
            environment=floor,
            environment_source=floor_source,
            environment_declared=raw,
            annotation_allow=allow,
            annotation_rules=deciding.annotation_rules,
            custom_rules=deciding.custom_rules,
        )
        max_duration, policy_text = deciding.max_exception, f"{POLICY_KIND} {deciding.name}"
    else:
        floor, floor_source, raw = _environment_floor(None, namespace_labels, annotations)
        template = policies.default
        if from_label is not None:
            label = ENFORCE_LABEL if from_label is Mode.ENFORCE else AUDIT_LABEL
            mode, source = from_label, f"namespace label {label}"
        else:
            mode, source = template.mode, template.source
        base = EffectivePolicy(
            mode=mode,
            policy=None,
            source=source,
            config=template.config,
            environment=floor,
            environment_source=floor_source,
            environment_declared=raw,
            annotation_allow=(
                AnnotationAllowance.WARNINGS if mode is Mode.ENFORCE else AnnotationAllowance.ALL
            ),
        )
        max_duration = timedelta(days=DEFAULT_MAX_EXCEPTION_DAYS)
        policy_text = "the default policy"
    excepted: dict[str, ExceptionGrant] = {}
    refused: list[str] = []
    for exception in policies.exceptions_in(namespace):
        if not exception.covers(kind=kind, name=name, labels=labels):
            continue
        refusal = exception.refusal(now, max_duration, policy_text)
        if refusal is not None:
            refused.append(refusal)
            continue
        for rule_id, reason in exception.reasons.items():
            excepted.setdefault(
                rule_id,
                ExceptionGrant(
                    exception=exception.ref,
                    reason=reason,
                    approved_by=exception.approved_by,
                    expires=exception.expires,
                ),
            )
    if not excepted and not refused:
        return base
    return dataclasses.replace(base, excepted=excepted, refused_exceptions=tuple(refused))


def exemption_reasons(listed: str, reason_text: str) -> dict[str, str | None]:
    """Each rule an exemption annotation lists, with its own reason (None: it has none).

    `reason_text` is `RULE: reason` entries separated by `;` (a ProductionService's
    `spec.exemptions` render so); plain text is the reason of the listed rule only when a
    single rule is listed. Unknown rule IDs are kept (PR-EX-001 reports them).
    """
    rule_ids: list[str] = []
    for part in listed.split(","):
        rule_id = part.strip()
        if rule_id and rule_id not in rule_ids:
            rule_ids.append(rule_id)
    own: dict[str, str] = {}
    plain: list[str] = []
    for segment in reason_text.split(";"):
        entry = _REASON_ENTRY.match(segment)
        if entry is not None:
            reason = entry.group(2).strip()
            if reason:
                own.setdefault(entry.group(1), reason)
        elif segment.strip():
            plain.append(segment.strip())
    shared = "; ".join(plain) if len(rule_ids) == 1 and plain else None
    return {rule_id: own.get(rule_id, shared) for rule_id in rule_ids}


# -- compiling the API objects ---------------------------------------------------------


def _format_error(what: str, error: Exception) -> str:
    from pydantic import ValidationError

    from prodready.api.parse import format_path

    if not isinstance(error, ValidationError):
        return f"{what}: {error}"
    lines = [f"{what}: invalid:"]
    for item in error.errors(include_url=False, include_input=False):
        message = item["msg"].removeprefix("Value error, ")
        if message == "String should match pattern '\\S'":
            message = "must not be blank"
        lines.append(f"  {format_path(item['loc'])}: {message}")
    return "\n".join(lines)


def _describe(obj: Mapping[str, Any], kind: str) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    namespace = metadata.get("namespace") if isinstance(metadata, Mapping) else None
    if isinstance(name, str) and name:
        return f"{kind} {namespace}/{name}" if isinstance(namespace, str) else f"{kind} {name}"
    return kind


def _known(
    rule_ids: Iterable[str],
    where: str,
    problems: list[str],
    custom: frozenset[str] = frozenset(),
) -> list[str]:
    """The rule IDs the registry knows, or `custom` declares; the others become one problem
    each."""
    known: list[str] = []
    for rule_id in rule_ids:
        if rule_id in custom:
            known.append(rule_id)
        elif rule_id not in RULES_BY_ID:
            problems.append(f"{where}: unknown rule ID {rule_id} (see `prodready rules`)")
        elif rule_id != LIMITS_RULE_ID:
            known.append(rule_id)
    return known


def _selector(selector: Any) -> Selector | None:
    if selector is None:
        return None
    return Selector(
        dict(selector.match_labels),
        tuple(
            {"key": e.key, "operator": e.operator, "values": list(e.values)}
            for e in selector.match_expressions
        ),
    )


def compile_policy(obj: Mapping[str, Any]) -> CompiledPolicy:
    """Validate a ReadinessPolicy object and turn it into lookups; raises `PolicyError`.

    An unknown rule ID does not make the policy invalid (the registry may be older or
    newer than the object): it is left out and listed in `problems`, which the operator
    reports as the policy's Ready condition and `validate --policy` as an error.
    """
    from pydantic import ValidationError

    from prodready.api.policy import ReadinessPolicy
    from prodready.rules.custom import compile_custom_rules

    try:
        model = ReadinessPolicy.model_validate(dict(obj))
    except ValidationError as error:
        raise PolicyError(_format_error(_describe(obj, POLICY_KIND), error)) from None
    spec = model.spec
    problems: list[str] = []
    custom_rules, custom_problems = compile_custom_rules(spec.custom_rules)
    problems += custom_problems
    custom = frozenset(rule.id for rule in spec.custom_rules)
    severity = {
        rule_id: Severity(spec.severity[rule_id])
        for rule_id in _known(spec.severity, "spec.severity", problems, custom)
    }
    disabled = _known(spec.disabled, "spec.disabled", problems, custom)
    exemptions = []
    custom_exemptions = []
    for index, exemption in enumerate(spec.exemptions):
        rules = _known(exemption.rules, f"spec.exemptions[{index}].rules", problems, custom)
        globs = {
            "namespace": exemption.namespace,
            "name": exemption.name,
            "kind": exemption.kind,
            "image": exemption.image,
            "reason": exemption.reason,
        }
        builtin = [rule_id for rule_id in rules if rule_id not in custom]
        if builtin:
            exemptions.append(Exemption(rules=builtin, **globs))
        if len(builtin) < len(rules):
            # The registry does not know this policy's own rules: they were checked against
            # spec.customRules above.
            own = [rule_id for rule_id in rules if rule_id in custom]
            custom_exemptions.append(Exemption(rules=own, **globs))
    annotation_rules = _known(
        spec.annotation_exemptions.rules, "spec.annotationExemptions.rules", problems, custom
    )
    config_fields: dict[str, Any] = {
        "severity": {k: v for k, v in severity.items() if k not in custom},
        "disabled": [rule_id for rule_id in disabled if rule_id not in custom],
        "env_vars": EnvVarNames(**spec.env_vars.model_dump()),
        "exemptions": exemptions,
        "secrets_complete": spec.secrets_complete,
        "third_party_images": list(spec.third_party_images),
        "health_path": spec.health_path,
    }
    if spec.sensitive_names is not None:
        config_fields["sensitive_names"] = list(spec.sensitive_names)
    config = RulesConfig(**config_fields)
    if custom:
        config = dataclasses.replace(
            config,
            severity=severity,
            disabled=disabled,
            exemptions=[*exemptions, *custom_exemptions],
        )
    environment = spec.environment
    return CompiledPolicy(
        name=model.metadata.name,
        generation=model.metadata.generation,
        mode=spec.mode,
        namespace_selector=_selector(spec.namespace_selector),
        object_selector=_selector(spec.object_selector),
        environment_value=environment.value if environment is not None else None,
        environment_label=environment.namespace_label if environment is not None else None,
        config=config,
        annotation_allow=spec.annotation_exemptions.allow,
        annotation_rules=frozenset(annotation_rules),
        max_exception=timedelta(days=spec.max_exception_days),
        problems=tuple(problems),
        custom_rules=tuple(custom_rules),
        custom_rule_ids=custom,
    )


def compile_exception(obj: Mapping[str, Any]) -> CompiledException:
    """Validate a ReadinessException object and turn it into lookups; raises `PolicyError`."""
    from pydantic import ValidationError

    from prodready.api.policy import ReadinessException

    try:
        model = ReadinessException.model_validate(dict(obj))
    except ValidationError as error:
        raise PolicyError(_format_error(_describe(obj, EXCEPTION_KIND), error)) from None
    spec = model.spec
    problems: list[str] = []
    # A custom ID is kept here: whether a policy declares it is the PolicySet's question
    # (`PolicySet.exception_problems`), since the exception does not name a policy.
    custom = frozenset(
        entry.rule for entry in spec.rules if not entry.rule.startswith(_RESERVED_PREFIX)
    )
    known = set(_known((entry.rule for entry in spec.rules), "spec.rules", problems, custom))
    match = spec.match
    return CompiledException(
        namespace=model.namespace,
        name=model.metadata.name,
        reasons={entry.rule: entry.reason for entry in spec.rules if entry.rule in known},
        names=frozenset(match.names) if match.names is not None else None,
        kinds=frozenset(match.kinds) if match.kinds is not None else None,
        selector=_selector(match.selector),
        expires=spec.expires,
        created=model.metadata.creation_timestamp,
        approved_by=spec.approved_by,
        problems=tuple(problems),
    )


def policy_set_from_objects(
    objects: Iterable[Mapping[str, Any]],
    *,
    default: EffectivePolicy | None = None,
    source: str = "<policy>",
) -> PolicySet:
    """Offline (`validate --policy`): every object must be a valid policy or exception.

    Strict where the operator is lenient: an unknown rule ID is an error here, because a
    CI run is where a typo should be caught. Raises `PolicyError` listing every problem.
    """
    policies: list[CompiledPolicy] = []
    exceptions: list[CompiledException] = []
    problems: list[str] = []
    for obj in objects:
        kind = obj.get("kind")
        try:
            if kind == POLICY_KIND:
                policies.append(compile_policy(obj))
            elif kind == EXCEPTION_KIND:
                exceptions.append(compile_exception(obj))
            else:
                problems.append(
                    f"{_describe(obj, str(kind))}: a policy file holds only {POLICY_KIND} "
                    f"and {EXCEPTION_KIND} objects"
                )
        except PolicyError as error:
            problems.append(str(error))
    names = [policy.name for policy in policies]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{POLICY_KIND} {name}: defined more than once")
    result = PolicySet(policies=policies, exceptions=exceptions, default=default)
    problems += result.problems
    if problems:
        raise PolicyError(f"{source}: " + f"\n{source}: ".join(problems))
    return result


def with_disabled(policies: PolicySet, rule_ids: Iterable[str]) -> PolicySet:
    """The same set with `rule_ids` disabled in every policy (`validate --only/--disable`)."""
    extra = set(rule_ids) - {LIMITS_RULE_ID}
    if not extra:
        return policies

    def disable(config: RulesConfig) -> RulesConfig:
        return dataclasses.replace(config, disabled=sorted(set(config.disabled) | extra))

    return PolicySet(
        policies=[
            dataclasses.replace(policy, config=disable(policy.config))
            for policy in policies.policies
        ],
        exceptions=policies.exceptions,
        default=dataclasses.replace(policies.default, config=disable(policies.default.config)),
        namespace_labels_select=policies.namespace_labels_select,
    )


def load_policy_file(path: str, *, default: EffectivePolicy | None = None) -> PolicySet:
    """Read a file of ReadinessPolicy and ReadinessException documents (`--policy FILE`).

    The one function here that reads a file: through the manifest loader, so the same
    limits hold (size, alias expansion, regular files only). Raises `PolicyError`.
    """
    import io

    from prodready.rules.loader import load_inputs

    loaded = load_inputs([path], io.BytesIO())
    if loaded.errors:
        raise PolicyError("\n".join(str(error) for error in loaded.errors))
    if not loaded.objects:
        raise PolicyError(f"{path}: holds no {POLICY_KIND} or {EXCEPTION_KIND}")
    return policy_set_from_objects(
        [item.obj for item in loaded.objects], default=default, source=path
    )


__all__ = [
    "AUDIT_LABEL",
    "ENFORCE_LABEL",
    "AnnotationAllowance",
    "CompiledException",
    "CompiledPolicy",
    "EffectivePolicy",
    "ExceptionGrant",
    "Mode",
    "PolicyError",
    "PolicySet",
    "compile_exception",
    "compile_policy",
    "default_policy",
    "exception_state",
    "exemption_reasons",
    "label_mode",
    "load_policy_file",
    "policy_set_from_objects",
    "resolve",
    "stricter",
    "with_disabled",
]

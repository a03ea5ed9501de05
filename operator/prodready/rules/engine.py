"""`evaluate`: run the registry over workloads, with context, profiles and exemptions.

Environment, in order of precedence (the first valid declaration wins):
ProductionService `spec.environment`; the workload's `prodready.io/environment` label,
then annotation; the same on the pod template; the container variable named by
`env_vars.environment` (ENVIRONMENT); then the caller's `environment` argument (the CLI's
`--env`), which is a *default* for objects that declare none, never an override — a
manifest that says `dev` is checked as dev even in a prod pipeline, and PR-CF-003 still
reports that the object itself declares nothing. With no declaration and no argument the
workload is checked as **prod**: an undeclared workload may well be a production one, and
checking it leniently would let production workloads pass by omission; PR-CF-003 warns
so the fix is one label away. The deciding policy's environment, or the Namespace's
label or annotation (when the Namespace object is in the input), is a **floor** over all
of these: a workload may declare a stricter environment, never a laxer one
(`prodready.rules.policy`).

Bounded work: a workload whose pod template goes over a cap of `Limits` (containers, env
entries, ports, …) is not evaluated rule by rule; its report holds one PR-LM-001 error
naming the field and the cap. That finding cannot be exempted, disabled or downgraded: it
is what bounds the work. A `Deadline`, when given, is checked between objects and rules;
`DeadlineExceeded` propagates to the caller, which decides what a timeout means (the
webhook denies in enforce mode). See `prodready.rules.limits`.

Policies (`prodready.rules.policy`): `evaluate(..., policies=PolicySet)` resolves, for each
workload, the policy that decides (reported in `ObjectReport.policy` and `.mode`); with
`config=` (the old rules file) every workload gets those settings in Audit mode. A
workload whose policy is Off gets a report with no findings.

Exemptions, in this order: a ReadinessException that applies (the `skip` names it, who
approved it and until when); the policy's `exemptions` (namespace, name, kind and image
globs); the workload's own `prodready.io/exempt` annotation (on the workload or on its pod
template), which counts only for a rule the policy lets annotations exempt and that has
its own reason (`policy.exemption_reasons`). An exempted rule that has something to
report yields one `skip` finding carrying the reason — and what it would otherwise have
said. A refused annotation exemption is named in the failing finding's message.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prodready.rules.config import RulesConfig
from prodready.rules.context import (
    ENVIRONMENT_KEY,
    EXEMPT_KEY,
    EXEMPT_REASON_KEY,
    Context,
    ObjectRole,
    Workload,
    checked_on_its_own,
    classify,
    kind_of,
    mapping,
    name_of,
    namespace_key,
    normalise_environment,
    pod_spec_of,
    ref_of,
    sequence,
)
from prodready.rules.limits import DEFAULT_LIMITS, LIMITS_RULE_ID, Deadline, Excess, Limits, excess
from prodready.rules.model import (
    Environment,
    Finding,
    Mode,
    ObjectRef,
    ObjectReport,
    Result,
    Severity,
    count,
    score,
)
from prodready.rules.policy import (
    EffectivePolicy,
    PolicySet,
    default_policy,
    exemption_reasons,
    resolve,
    stricter,
)
from prodready.rules.registry import RULES, RULES_BY_ID, Rule
from prodready.rules.subject import EnvironmentDecision, Outcome, RuleSettings, Subject

if TYPE_CHECKING:
    # Imported when a policy has custom rules (_evaluate_custom_rules): a plain run has none.
    from prodready.rules.custom import CompiledCustomRule, Extent, Spent, Verdict

SPEC_RULE_ID = "PR-PS-001"


@dataclass(frozen=True, slots=True)
class _ConfigExemption:
    rules: frozenset[str]
    kind: re.Pattern[str]
    namespace: re.Pattern[str]
    name: re.Pattern[str]
    image: re.Pattern[str] | None  # None: any image
    reason: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """A `RulesConfig` turned into plain lookups, once per `evaluate` call.

    `enforce_settings` are `settings` for a workload in Enforce: a ConfigMap the input
    does not hold does not exist (its variables are missing, not unknown).
    """

    rules: tuple[Rule, ...]
    disabled: frozenset[str]
    severity: dict[str, Severity]
    settings: RuleSettings
    enforce_settings: RuleSettings
    exemptions: tuple[_ConfigExemption, ...]
    custom: tuple[CompiledCustomRule, ...] = ()
    custom_ids: frozenset[str] = frozenset()


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _plan(config: RulesConfig, custom: tuple[CompiledCustomRule, ...] = ()) -> _Plan:
    env_vars = config.env_vars
    custom_ids = frozenset(rule.id for rule in custom)
    settings = RuleSettings(
        log_format=env_vars.log_format,
        log_level=env_vars.log_level,
        debug=env_vars.debug,
        cors_allowed_origins=env_vars.cors_allowed_origins,
        rate_limit=env_vars.rate_limit,
        environment=env_vars.environment,
        shutdown_timeout=env_vars.shutdown_timeout,
        sensitive_names=tuple(config.sensitive_names),
        secrets_complete=config.secrets_complete,
        third_party_images=tuple(config.third_party_images),
        health_path=config.health_path,
        custom_rule_ids=custom_ids,
    )
    disabled = set(config.disabled)
    exemptions = tuple(
        _ConfigExemption(
            frozenset(e.rules),
            _glob(e.kind),
            _glob(e.namespace),
            _glob(e.name),
            None if e.image == "*" else _glob(e.image),
            e.reason,
        )
        for e in config.exemptions
    )
    return _Plan(
        rules=tuple(rule for rule in RULES if rule.id not in disabled),
        disabled=frozenset(disabled),
        severity=dict(config.severity),
        settings=settings,
        enforce_settings=dataclasses.replace(settings, config_maps_complete=True),
        exemptions=exemptions,
        custom=tuple(rule for rule in custom if rule.id not in disabled),
        custom_ids=custom_ids,
    )


_DEFAULT_CONFIG = RulesConfig()
_DEFAULT_PLAN = _plan(_DEFAULT_CONFIG)


class _Plans:
    """One `_Plan` per distinct configuration met in an `evaluate` call."""

    def __init__(self) -> None:
        self._plans: dict[tuple[int, int], tuple[object, _Plan]] = {
            (id(_DEFAULT_CONFIG), id(())): ((_DEFAULT_CONFIG, ()), _DEFAULT_PLAN)
        }

    def get(self, config: RulesConfig, custom: tuple[CompiledCustomRule, ...] = ()) -> _Plan:
        key = (id(config), id(custom))
        found = self._plans.get(key)
        if found is None:
            # The inputs are kept beside their plan so their id() cannot be reused meanwhile.
            found = ((config, custom), _plan(config, custom))
            self._plans[key] = found
        return found[1]


_LEGACY = PolicySet()
"""No policy: the built-in settings in Audit, and the namespace labels as candidates."""


def _labels(metadata: Mapping[str, Any], field: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping(metadata.get(field)).items()}


def _effective(
    policies: PolicySet, obj: Mapping[str, Any], context: Context, now: datetime
) -> EffectivePolicy:
    """`policy.resolve` for one input object, its Namespace read from the input."""
    metadata = mapping(obj.get("metadata"))
    namespace = namespace_key(obj)
    namespace_metadata = mapping(mapping(context.namespaces.get(namespace)).get("metadata"))
    return resolve(
        policies,
        kind=kind_of(obj),
        namespace=namespace,
        name=name_of(obj),
        labels=_labels(metadata, "labels"),
        namespace_labels=_labels(namespace_metadata, "labels"),
        namespace_annotations=_labels(namespace_metadata, "annotations"),
        now=now,
    )


def _floorless(context: Context, workload: Workload) -> EffectivePolicy:
    """Without a policy set, the Namespace's environment is still the floor."""
    return _effective(_LEGACY, workload.obj, context, datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class _Run:
    """What one `evaluate` call shares between its objects."""

    policies: PolicySet
    now: datetime
    plans: _Plans
    default: Environment | None
    limits: Limits
    deadline: Deadline | None

    def settings(self, plan: _Plan, effective: EffectivePolicy) -> RuleSettings:
        return plan.enforce_settings if effective.mode is Mode.ENFORCE else plan.settings


def _declarations(
    workload: Workload, settings: RuleSettings, spec_environment: object
) -> list[tuple[str, str]]:
    declared: list[tuple[str, str]] = []
    if isinstance(spec_environment, str) and spec_environment:
        declared.append(("spec", spec_environment))
    places = [("", workload.metadata)]
    if workload.template_metadata is not workload.metadata:
        places.append(("template-", workload.template_metadata))
    for prefix, metadata in places:
        for field, key in (("labels", "label"), ("annotations", "annotation")):
            value = mapping(metadata.get(field)).get(ENVIRONMENT_KEY)
            if isinstance(value, str) and value:
                declared.append((f"{prefix}{key}", value))
    for container in workload.containers:
        for raw_entry in sequence(container.spec.get("env")):
            entry = mapping(raw_entry)
            value = entry.get("value")
            if entry.get("name") == settings.environment and isinstance(value, str) and value:
                declared.append(("container-env", value))
    return declared


def _with_floor(
    declared: list[tuple[str, str]], default: Environment | None, effective: EffectivePolicy
) -> EnvironmentDecision:
    """The first valid declaration, raised to the policy's or Namespace's floor."""
    if effective.environment_declared is not None:
        declared = [*declared, (effective.environment_source, effective.environment_declared)]
    floor = effective.environment
    for source, value in declared:
        environment = normalise_environment(value)
        if environment is not None and source != effective.environment_source:
            if floor is not None and stricter(floor, environment) is not environment:
                return EnvironmentDecision(floor, effective.environment_source, tuple(declared))
            return EnvironmentDecision(environment, source, tuple(declared))
    if floor is not None:
        return EnvironmentDecision(floor, effective.environment_source, tuple(declared))
    if default is not None:
        return EnvironmentDecision(default, "argument", tuple(declared))
    return EnvironmentDecision(Environment.PROD, "default", tuple(declared))


def decide_environment(
    workload: Workload,
    settings: RuleSettings,
    default: Environment | None,
    spec_environment: object = None,
    effective: EffectivePolicy | None = None,
) -> EnvironmentDecision:
    """The profile `workload` is evaluated under (see the module docstring)."""
    declared = _declarations(workload, settings, spec_environment)
    return _with_floor(declared, default, effective or _floorless(workload.context, workload))


def _annotation_exemptions(
    workload: Workload, custom_ids: frozenset[str] = frozenset()
) -> dict[str, tuple[str | None, str]]:
    """rule ID -> (reason or None when it has none of its own, path of the annotation),
    from the workload and its pod template; the policy decides which count."""
    exempt: dict[str, tuple[str | None, str]] = {}
    places = [("annotation", "metadata", workload.metadata)]
    if workload.template_metadata is not workload.metadata:
        template_path = workload.pod_path.removesuffix(".spec") + ".metadata"
        places.append(("pod template annotation", template_path, workload.template_metadata))
    for where, prefix, metadata in places:
        annotations = mapping(metadata.get("annotations"))
        listed = annotations.get(EXEMPT_KEY)
        if listed is None:
            continue
        reasons = exemption_reasons(str(listed), str(annotations.get(EXEMPT_REASON_KEY, "")))
        for rule_id, reason in reasons.items():
            known = rule_id in RULES_BY_ID or rule_id in custom_ids
            if known and exempt.get(rule_id, (None, ""))[0] is None:
                exempt[rule_id] = (
                    None if reason is None else f"{where} {EXEMPT_KEY}: {reason}",
                    f"{prefix}.annotations.{EXEMPT_KEY}",
                )
    return exempt


def _config_exemptions(plan: _Plan, workload: Workload) -> dict[str, tuple[str, str]]:
    exempt: dict[str, tuple[str, str]] = {}
    for exemption in plan.exemptions:
        if (
            exemption.kind.match(workload.kind)
            and exemption.namespace.match(workload.namespace)
            and exemption.name.match(workload.ref.name)
            and (exemption.image is None or _images_match(exemption.image, workload))
        ):
            for rule_id in exemption.rules:
                exempt.setdefault(
                    rule_id, (f"configuration exemption: {exemption.reason}", "metadata")
                )
    return exempt


def _images_match(pattern: re.Pattern[str], workload: Workload) -> bool:
    """Every container (init ones too) runs an image the glob matches; none: no match."""
    images = [container.spec.get("image") for container in workload.all_containers]
    return bool(images) and all(isinstance(i, str) and pattern.match(i) for i in images)


def _refusal(effective: EffectivePolicy, reason: str | None) -> str:
    if reason is None:
        return f"the {EXEMPT_KEY} annotation gives this rule no reason of its own"
    return f"{effective.describe()} does not let the {EXEMPT_KEY} annotation exempt this rule"


def _result(severity: Severity, passed: bool) -> Result:
    if passed:
        return Result.PASS
    return Result.FAIL if severity is Severity.ERROR else Result.WARN


@dataclass(frozen=True, slots=True, kw_only=True)
class _Checked:
    """What a rule (built-in or custom) contributes, before exemptions are applied."""

    rule_id: str
    title: str
    fix: str
    severity: Severity


def _findings(
    checked: _Checked,
    outcomes: Iterable[Outcome],
    exemption: tuple[str, str] | None,
    refused: str | None,
    ref: ObjectRef,
) -> list[Finding]:
    """The findings of one rule's outcomes: one `skip` when exempted, else one per outcome."""
    severity = checked.severity
    if exemption is not None:
        outcomes = list(outcomes)
        if not outcomes:
            return []
        failure = next((o for o in outcomes if not o.passed), None)
        reason, path = exemption
        message = f"exempted by {reason}"
        if failure is not None:
            would = "fail" if severity is Severity.ERROR else "warn"
            message += f" (would {would}: {failure.message})"
        return [
            Finding(
                rule_id=checked.rule_id,
                title=checked.title,
                severity=severity,
                result=Result.SKIP,
                object=ref,
                container=None,
                path=path,
                message=message,
                fix=checked.fix,
            )
        ]
    findings: list[Finding] = []
    for outcome in outcomes:
        message = outcome.message
        if refused is not None and not outcome.passed:
            message = f"{message} (not exempted: {refused})"
        findings.append(
            Finding(
                rule_id=checked.rule_id,
                title=checked.title,
                severity=severity,
                result=_result(severity, outcome.passed),
                object=ref,
                container=outcome.container,
                path=outcome.path,
                message=message,
                fix=checked.fix,
                patch=outcome.patch,
            )
        )
    return findings


def _custom_outcomes(
    rule: CompiledCustomRule, variables: tuple[Any, Extent] | Verdict, spent: Spent
) -> list[Outcome]:
    from prodready.rules.custom import Verdict, evaluate_rule

    if isinstance(variables, Verdict):
        verdict = variables
    else:
        verdict = evaluate_rule(rule, *variables, spent)
    return [Outcome(verdict.passed, "", verdict.message)]


def _custom_variables(workload: Workload) -> tuple[Any, Extent] | Verdict:
    """The activation of a workload's custom rules, once for all of them (or why not)."""
    from prodready.rules.custom import Verdict, activation, extent_of

    namespace = workload.context.namespaces.get(workload.namespace)
    try:
        return activation(workload.obj, namespace), extent_of(workload.obj, namespace)
    except (TypeError, ValueError, OverflowError) as error:
        # The library nests its reasons; the innermost names the type, never the value.
        reason = str(error).rsplit("Conversion Error: ", 1)[-1][:200]
        message = f"the object cannot be given to CEL: {reason}"
        return Verdict(False, message, error=True)


def _evaluate_rules(
    plan: _Plan,
    effective: EffectivePolicy,
    subject: Subject,
    ref: ObjectRef,
    deadline: Deadline | None,
) -> list[Finding]:
    workload = subject.workload
    environment = subject.environment.environment
    exempt: dict[str, tuple[str, str]] = {
        rule_id: (grant.describe(), "metadata") for rule_id, grant in effective.excepted.items()
    }
    if plan.exemptions:
        for rule_id, entry in _config_exemptions(plan, workload).items():
            exempt.setdefault(rule_id, entry)
    annotated = _annotation_exemptions(workload, plan.custom_ids)

    def exemption_of(rule_id: str, severity: Severity) -> tuple[tuple[str, str] | None, str | None]:
        exemption = exempt.get(rule_id)
        if exemption is None and rule_id in annotated:
            reason, path = annotated[rule_id]
            if reason is not None and effective.annotation_may_exempt(rule_id, severity):
                return (reason, path), None
            return None, _refusal(effective, reason)
        return exemption, None

    findings: list[Finding] = []
    for rule in plan.rules:
        if rule.check is None or workload.kind not in rule.kinds:
            continue
        severity = rule.severity_in(environment)
        if severity is None:
            continue
        severity = plan.severity.get(rule.id, severity)
        if deadline is not None:
            deadline.check(ref)
        outcomes = rule.check(subject)
        exemption, refused = exemption_of(rule.id, severity)
        checked = _Checked(rule_id=rule.id, title=rule.title, fix=rule.fix, severity=severity)
        findings.extend(_findings(checked, outcomes, exemption, refused, ref))
    if plan.custom:
        findings.extend(_evaluate_custom_rules(plan, subject, ref, deadline, exemption_of))
    return findings


def _evaluate_custom_rules(
    plan: _Plan,
    subject: Subject,
    ref: ObjectRef,
    deadline: Deadline | None,
    exemption_of: Callable[[str, Severity], tuple[tuple[str, str] | None, str | None]],
) -> list[Finding]:
    """The findings of the deciding policy's own (CEL) rules, after the checklist's."""
    from prodready.rules.custom import Spent

    workload = subject.workload
    findings: list[Finding] = []
    variables: tuple[Any, Extent] | Verdict | None = None
    spent = Spent()
    for custom in plan.custom:
        if workload.kind not in custom.kinds:
            continue
        if deadline is not None:
            deadline.check(ref)
        if variables is None:
            variables = _custom_variables(workload)
        severity = plan.severity.get(custom.id, custom.severity)
        exemption, refused = exemption_of(custom.id, severity)
        checked = _Checked(rule_id=custom.id, title=custom.title, fix=custom.fix, severity=severity)
        outcomes = _custom_outcomes(custom, variables, spent)
        findings.extend(_findings(checked, outcomes, exemption, refused, ref))
    return findings


def _report(
    ref: ObjectRef,
    decision: EnvironmentDecision,
    findings: list[Finding],
    index: int,
    effective: EffectivePolicy,
) -> ObjectReport:
    frozen = tuple(findings)
    return ObjectReport(
        object=ref,
        environment=decision.environment,
        environment_source=decision.source,
        findings=frozen,
        counts=count(frozen),
        score=score(frozen),
        compliant=not any(f.result is Result.FAIL for f in frozen),
        input_index=index,
        policy=effective.policy,
        policy_source=effective.source,
        mode=effective.mode,
    )


def _object_failure(ref: ObjectRef, rule: Rule, *, path: str, message: str, fix: str) -> Finding:
    """An error finding about the object as a whole (no container): it was not evaluated
    rule by rule (over a cap), or its spec cannot be rendered."""
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=Severity.ERROR,
        result=Result.FAIL,
        object=ref,
        container=None,
        path=path,
        message=message,
        fix=fix,
    )


def _limits_finding(ref: ObjectRef, over: Excess) -> Finding:
    rule = RULES_BY_ID[LIMITS_RULE_ID]
    return _object_failure(
        ref,
        rule,
        path=over.path,
        message=f"{over.message}; it was not evaluated rule by rule",
        fix=rule.fix,
    )


def _over_limits(obj: Mapping[str, Any], limits: Limits) -> Excess | None:
    pod_spec, pod_path = pod_spec_of(obj)
    return excess(pod_spec, pod_path, limits)


def _declared_decision(
    obj: Mapping[str, Any],
    default: Environment | None,
    effective: EffectivePolicy,
    spec_environment: object = None,
) -> EnvironmentDecision:
    """The environment of an object that is not evaluated rule by rule (over a cap): what
    the spec or its own labels and annotations declare, without reading its containers."""
    declared: list[tuple[str, str]] = []
    if isinstance(spec_environment, str) and spec_environment:
        declared.append(("spec", spec_environment))
    metadata = mapping(obj.get("metadata"))
    for field, source in (("labels", "label"), ("annotations", "annotation")):
        value = mapping(metadata.get(field)).get(ENVIRONMENT_KEY)
        if isinstance(value, str) and value:
            declared.append((source, value))
    return _with_floor(declared, default, effective)


def _spec_finding(ref: ObjectRef, error: Exception) -> Finding:
    rule_id = getattr(error, "rule", None)
    rule = RULES_BY_ID.get(rule_id) if isinstance(rule_id, str) else None
    if rule is None:
        rule = RULES_BY_ID[SPEC_RULE_ID]
    field = getattr(error, "field", None)
    message = getattr(error, "message", None) or str(error)
    return _object_failure(
        ref,
        rule,
        path=field if isinstance(field, str) and field else "spec",
        message=f"the spec cannot be rendered: {message}",
        fix=rule.fix if rule.id == SPEC_RULE_ID else f"Fix the spec field named. {rule.fix}",
    )


def _render(obj: Mapping[str, Any]) -> tuple[list[dict[str, Any]] | None, Exception | None]:
    """Render a ProductionService; (objects, None) or (None, the SpecError)."""
    # Imported here: the renderer (and the pydantic models behind it) is only needed when
    # ProductionServices are checked; plain manifests should not pay for importing it.
    from prodready.api.errors import SpecError
    from prodready.render import render

    try:
        return render(obj), None
    except SpecError as error:
        return None, error


def evaluate(
    objects: Iterable[Mapping[str, Any]],
    *,
    config: RulesConfig | None = None,
    policies: PolicySet | None = None,
    now: datetime | None = None,
    environment: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    deadline: Deadline | None = None,
    related: Sequence[Mapping[str, Any]] | None = None,
) -> list[ObjectReport]:
    """Check every workload among `objects`; the other objects are context.

    `policies` decide, workload by workload, the mode, settings, environment floor and
    exceptions (`prodready.rules.policy.resolve`, with `now`, the current time when
    None); `config` instead gives every workload the same settings in Audit mode (the
    old rules file). Not both: `ValueError`.

    Returns one report per workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, a
    Pod no controller owns) and per ProductionService, in input order. `environment` is
    the default profile for objects that declare none; it must be dev, staging or prod (or
    a recognised spelling such as `production`), else `ValueError`. A workload over one of
    `limits` gets a single PR-LM-001 finding instead of its rules; with a `deadline`,
    `DeadlineExceeded` is raised once it has passed (see the module docstring).

    `related`, when given, is the whole input the context is read from (in input order),
    of which `objects` are the part to check: a run split over processes checks each
    share against everyone's context (`prodready.rules.parallel`).
    """
    default: Environment | None = None
    if environment is not None:
        default = normalise_environment(environment)
        if default is None:
            raise ValueError(f"unknown environment {environment!r}: use dev, staging or prod")
    if config is not None and policies is not None:
        raise ValueError("give evaluate() either config or policies, not both")
    if policies is None:
        policies = _LEGACY if config is None else PolicySet(default=default_policy(config))
    run = _Run(
        policies=policies,
        now=now or datetime.now(UTC),
        plans=_Plans(),
        default=default,
        limits=limits,
        deadline=deadline,
    )
    inputs = list(objects)
    roles = [classify(obj) for obj in inputs]
    whole = inputs if related is None else list(related)
    whole_roles = roles if related is None else [classify(obj) for obj in whole]
    context = Context.build(
        obj for obj, role in zip(whole, whole_roles, strict=True) if role is ObjectRole.CONTEXT
    )
    rendered: dict[int, tuple[list[dict[str, Any]] | None, Exception | None]] = {}
    for index, role in enumerate(whole_roles):
        if role is ObjectRole.PRODUCTION_SERVICE:
            if deadline is not None:
                deadline.check(ref_of(whole[index]))
            children = _render(whole[index])
            if related is None:
                rendered[index] = children
            for child in children[0] or ():
                context.add(child)
    if related is not None:
        for index, role in enumerate(roles):
            if role is ObjectRole.PRODUCTION_SERVICE:
                rendered[index] = _render(inputs[index])
    reports: list[ObjectReport] = []
    for index, role in enumerate(roles):
        obj = inputs[index]
        # An Ingress, route, exposing Service or ConfigMap is context and is also checked
        # on its own (rules.context: "Objects checked on their own").
        if role is ObjectRole.WORKLOAD or (role is ObjectRole.CONTEXT and checked_on_its_own(obj)):
            reports.append(_workload_report(run, obj, context=context, index=index))
        elif role is ObjectRole.PRODUCTION_SERVICE:
            reports.append(
                _production_service_report(
                    run, obj=obj, rendered=rendered[index], context=context, index=index
                )
            )
    return reports


def _workload_report(
    run: _Run, obj: Mapping[str, Any], *, context: Context, index: int
) -> ObjectReport:
    effective = _effective(run.policies, obj, context, run.now)
    if effective.mode is Mode.OFF:
        return _report(
            ref_of(obj), _declared_decision(obj, run.default, effective), [], index, effective
        )
    over = _over_limits(obj, run.limits)
    if over is not None:
        ref = ref_of(obj)
        decision = _declared_decision(obj, run.default, effective)
        return _report(ref, decision, [_limits_finding(ref, over)], index, effective)
    plan = run.plans.get(effective.config, effective.custom_rules)
    settings = run.settings(plan, effective)
    workload = Workload(obj, context)
    decision = decide_environment(workload, settings, run.default, effective=effective)
    subject = Subject(workload, decision, settings)
    findings = _evaluate_rules(plan, effective, subject, workload.ref, run.deadline)
    return _report(workload.ref, decision, findings, index, effective)


def _spec_decision(
    spec_environment: object, default: Environment | None, effective: EffectivePolicy
) -> EnvironmentDecision:
    """The environment of a ProductionService judged without any rendered workload."""
    declared = [("spec", spec_environment)] if isinstance(spec_environment, str) else []
    return _with_floor(declared, default, effective)


def _production_service_report(
    run: _Run,
    *,
    obj: Mapping[str, Any],
    rendered: tuple[list[dict[str, Any]] | None, Exception | None],
    context: Context,
    index: int,
) -> ObjectReport:
    ref = ref_of(obj)
    spec_environment = mapping(obj.get("spec")).get("environment")
    # The ProductionService itself is what policies select and exceptions name: its
    # rendered children carry its name and labels.
    effective = _effective(run.policies, obj, context, run.now)
    default, limits = run.default, run.limits
    if effective.mode is Mode.OFF:
        return _report(
            ref, _spec_decision(spec_environment, default, effective), [], index, effective
        )
    plan = run.plans.get(effective.config, effective.custom_rules)
    settings = run.settings(plan, effective)
    children, error = rendered
    if children is None:
        assert error is not None
        decision = _spec_decision(spec_environment, default, effective)
        return _report(ref, decision, [_spec_finding(ref, error)], index, effective)
    spec_rule = RULES_BY_ID[SPEC_RULE_ID]
    findings: list[Finding] = []
    if SPEC_RULE_ID not in plan.disabled:
        findings.append(
            Finding(
                rule_id=spec_rule.id,
                title=spec_rule.title,
                severity=Severity.ERROR,
                result=Result.PASS,
                object=ref,
                container=None,
                path="spec",
                message=f"the spec renders into {len(children)} object(s)",
                fix=spec_rule.fix,
            )
        )
    first: EnvironmentDecision | None = None
    for child in children:
        if classify(child) is not ObjectRole.WORKLOAD:
            continue
        over = _over_limits(child, limits)
        if over is not None:
            first = first or _declared_decision(child, default, effective, spec_environment)
            findings.append(_limits_finding(ref_of(child), over))
            continue
        workload = Workload(child, context)
        child_decision = decide_environment(
            workload, settings, default, spec_environment, effective
        )
        first = first or child_decision
        # Patches against rendered objects would be overwritten by the operator: the user
        # changes the spec instead, so `rendered=True` suppresses them.
        subject = Subject(workload, child_decision, settings, rendered=True)
        findings.extend(_evaluate_rules(plan, effective, subject, workload.ref, run.deadline))
    decision = first or _spec_decision(spec_environment, default, effective)
    return _report(ref, decision, findings, index, effective)

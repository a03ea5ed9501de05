"""`evaluate`: run the registry over workloads, with context, profiles and exemptions.

Environment, in order of precedence (the first valid declaration wins):
ProductionService `spec.environment`; the workload's `prodready.io/environment` label,
then annotation; the same on the pod template; the container variable named by
`env_vars.environment` (ENVIRONMENT); the Namespace's label or annotation (when the
Namespace object is in the input); then the caller's `environment` argument (the CLI's
`--env`), which is a *default* for objects that declare none, never an override — a
manifest that says `dev` is checked as dev even in a prod pipeline, and PR-CF-003 still
reports that the object itself declares nothing. With no declaration and no argument the
workload is checked as **prod**: an undeclared workload may well be a production one, and
checking it leniently would let production workloads pass by omission; PR-CF-003 warns
so the fix is one label away.

Bounded work: a workload whose pod template goes over a cap of `Limits` (containers, env
entries, ports, …) is not evaluated rule by rule; its report holds one PR-LM-001 error
naming the field and the cap. That finding cannot be exempted, disabled or downgraded: it
is what bounds the work. A `Deadline`, when given, is checked between objects and rules;
`DeadlineExceeded` propagates to the caller, which decides what a timeout means (the
webhook denies in enforce mode). See `prodready.rules.limits`.

Exemptions come from the `prodready.io/exempt` annotation (on the workload or on its pod
template; explicit rule IDs only, reason in `prodready.io/exempt-reason`) and from the
configuration's `exemptions`. An exempted rule that has something to report yields one
`skip` finding carrying the reason — and what it would otherwise have said.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prodready.rules.config import RulesConfig
from prodready.rules.context import (
    ENVIRONMENT_KEY,
    EXEMPT_KEY,
    EXEMPT_REASON_KEY,
    Context,
    ObjectRole,
    Workload,
    classify,
    mapping,
    normalise_environment,
    pod_spec_of,
    ref_of,
    sequence,
)
from prodready.rules.limits import DEFAULT_LIMITS, LIMITS_RULE_ID, Deadline, Excess, Limits, excess
from prodready.rules.model import (
    Environment,
    Finding,
    ObjectRef,
    ObjectReport,
    Result,
    Severity,
    count,
    score,
)
from prodready.rules.registry import RULES, RULES_BY_ID, Rule
from prodready.rules.subject import EnvironmentDecision, RuleSettings, Subject

SPEC_RULE_ID = "PR-PS-001"


@dataclass(frozen=True, slots=True)
class _ConfigExemption:
    rules: frozenset[str]
    kind: re.Pattern[str]
    namespace: re.Pattern[str]
    name: re.Pattern[str]
    reason: str


@dataclass(frozen=True, slots=True)
class _Plan:
    """A `RulesConfig` turned into plain lookups, once per `evaluate` call."""

    rules: tuple[Rule, ...]
    disabled: frozenset[str]
    severity: dict[str, Severity]
    settings: RuleSettings
    exemptions: tuple[_ConfigExemption, ...]


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern))


def _plan(config: RulesConfig) -> _Plan:
    env_vars = config.env_vars
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
    )
    disabled = set(config.disabled)
    exemptions = tuple(
        _ConfigExemption(
            frozenset(e.rules), _glob(e.kind), _glob(e.namespace), _glob(e.name), e.reason
        )
        for e in config.exemptions
    )
    return _Plan(
        rules=tuple(rule for rule in RULES if rule.id not in disabled),
        disabled=frozenset(disabled),
        severity=dict(config.severity),
        settings=settings,
        exemptions=exemptions,
    )


_DEFAULT_PLAN = _plan(RulesConfig())


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
    namespace = workload.context.namespaces.get(workload.namespace)
    if namespace is not None:
        metadata = mapping(namespace.get("metadata"))
        for field in ("labels", "annotations"):
            value = mapping(metadata.get(field)).get(ENVIRONMENT_KEY)
            if isinstance(value, str) and value:
                declared.append(("namespace", value))
                break
    return declared


def decide_environment(
    workload: Workload,
    settings: RuleSettings,
    default: Environment | None,
    spec_environment: object = None,
) -> EnvironmentDecision:
    """The profile `workload` is evaluated under (see the module docstring)."""
    declared = _declarations(workload, settings, spec_environment)
    for source, value in declared:
        environment = normalise_environment(value)
        if environment is not None:
            return EnvironmentDecision(environment, source, tuple(declared))
    if default is not None:
        return EnvironmentDecision(default, "argument", tuple(declared))
    return EnvironmentDecision(Environment.PROD, "default", tuple(declared))


def _annotation_exemptions(workload: Workload) -> dict[str, tuple[str, str]]:
    """rule ID -> (reason, path of the annotation), from the workload and its pod template."""
    exempt: dict[str, tuple[str, str]] = {}
    places = [("annotation", "metadata", workload.metadata)]
    if workload.template_metadata is not workload.metadata:
        template_path = workload.pod_path.removesuffix(".spec") + ".metadata"
        places.append(("pod template annotation", template_path, workload.template_metadata))
    for where, prefix, metadata in places:
        annotations = mapping(metadata.get("annotations"))
        listed = annotations.get(EXEMPT_KEY)
        if listed is None:
            continue
        reason = str(annotations.get(EXEMPT_REASON_KEY, "")).strip() or "no reason given"
        for listed_id in str(listed).split(","):
            rule_id = listed_id.strip()
            if rule_id in RULES_BY_ID and rule_id not in exempt:
                exempt[rule_id] = (
                    f"{where} {EXEMPT_KEY}: {reason}",
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
        ):
            for rule_id in exemption.rules:
                exempt.setdefault(
                    rule_id, (f"configuration exemption: {exemption.reason}", "metadata")
                )
    return exempt


def _result(severity: Severity, passed: bool) -> Result:
    if passed:
        return Result.PASS
    return Result.FAIL if severity is Severity.ERROR else Result.WARN


def _evaluate_rules(
    plan: _Plan, subject: Subject, ref: ObjectRef, deadline: Deadline | None
) -> list[Finding]:
    workload = subject.workload
    environment = subject.environment.environment
    exempt = _annotation_exemptions(workload)
    if plan.exemptions:
        for rule_id, entry in _config_exemptions(plan, workload).items():
            exempt.setdefault(rule_id, entry)
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
        exemption = exempt.get(rule.id)
        if exemption is not None:
            outcomes = list(outcomes)
            if not outcomes:
                continue
            failure = next((o for o in outcomes if not o.passed), None)
            reason, path = exemption
            message = f"exempted by {reason}"
            if failure is not None:
                would = "fail" if severity is Severity.ERROR else "warn"
                message += f" (would {would}: {failure.message})"
            findings.append(
                Finding(
                    rule_id=rule.id,
                    title=rule.title,
                    severity=severity,
                    result=Result.SKIP,
                    object=ref,
                    container=None,
                    path=path,
                    message=message,
                    fix=rule.fix,
                )
            )
            continue
        for outcome in outcomes:
            findings.append(
                Finding(
                    rule_id=rule.id,
                    title=rule.title,
                    severity=severity,
                    result=_result(severity, outcome.passed),
                    object=ref,
                    container=outcome.container,
                    path=outcome.path,
                    message=outcome.message,
                    fix=rule.fix,
                    patch=outcome.patch,
                )
            )
    return findings


def _report(
    ref: ObjectRef, decision: EnvironmentDecision, findings: list[Finding], index: int
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
    )


def _limits_finding(ref: ObjectRef, over: Excess) -> Finding:
    rule = RULES_BY_ID[LIMITS_RULE_ID]
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=Severity.ERROR,
        result=Result.FAIL,
        object=ref,
        container=None,
        path=over.path,
        message=f"{over.message}; it was not evaluated rule by rule",
        fix=rule.fix,
    )


def _over_limits(obj: Mapping[str, Any], limits: Limits) -> Excess | None:
    pod_spec, pod_path = pod_spec_of(obj)
    return excess(pod_spec, pod_path, limits)


def _declared_decision(
    obj: Mapping[str, Any], default: Environment | None, spec_environment: object = None
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
    for source, value in declared:
        environment = normalise_environment(value)
        if environment is not None:
            return EnvironmentDecision(environment, source, tuple(declared))
    if default is not None:
        return EnvironmentDecision(default, "argument", tuple(declared))
    return EnvironmentDecision(Environment.PROD, "default", tuple(declared))


def _spec_finding(ref: ObjectRef, error: Exception) -> Finding:
    rule_id = getattr(error, "rule", None)
    rule = RULES_BY_ID.get(rule_id) if isinstance(rule_id, str) else None
    if rule is None:
        rule = RULES_BY_ID[SPEC_RULE_ID]
    field = getattr(error, "field", None)
    message = getattr(error, "message", None) or str(error)
    return Finding(
        rule_id=rule.id,
        title=rule.title,
        severity=Severity.ERROR,
        result=Result.FAIL,
        object=ref,
        container=None,
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
    environment: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    deadline: Deadline | None = None,
) -> list[ObjectReport]:
    """Check every workload among `objects`; the other objects are context.

    Returns one report per workload (Deployment, StatefulSet, DaemonSet, Job, CronJob, a
    Pod no controller owns) and per ProductionService, in input order. `environment` is
    the default profile for objects that declare none; it must be dev, staging or prod (or
    a recognised spelling such as `production`), else `ValueError`. A workload over one of
    `limits` gets a single PR-LM-001 finding instead of its rules; with a `deadline`,
    `DeadlineExceeded` is raised once it has passed (see the module docstring).
    """
    default: Environment | None = None
    if environment is not None:
        default = normalise_environment(environment)
        if default is None:
            raise ValueError(f"unknown environment {environment!r}: use dev, staging or prod")
    plan = _DEFAULT_PLAN if config is None else _plan(config)
    inputs = list(objects)
    roles = [classify(obj) for obj in inputs]
    context = Context.build(
        obj for obj, role in zip(inputs, roles, strict=True) if role is ObjectRole.CONTEXT
    )
    rendered: dict[int, tuple[list[dict[str, Any]] | None, Exception | None]] = {}
    for index, role in enumerate(roles):
        if role is ObjectRole.PRODUCTION_SERVICE:
            if deadline is not None:
                deadline.check(ref_of(inputs[index]))
            rendered[index] = _render(inputs[index])
            for child in rendered[index][0] or ():
                context.add(child)
    reports: list[ObjectReport] = []
    for index, role in enumerate(roles):
        obj = inputs[index]
        if role is ObjectRole.WORKLOAD:
            reports.append(
                _workload_report(
                    plan,
                    obj,
                    context=context,
                    default=default,
                    index=index,
                    limits=limits,
                    deadline=deadline,
                )
            )
        elif role is ObjectRole.PRODUCTION_SERVICE:
            reports.append(
                _production_service_report(
                    plan,
                    obj=obj,
                    rendered=rendered[index],
                    context=context,
                    default=default,
                    index=index,
                    limits=limits,
                    deadline=deadline,
                )
            )
    return reports


def _workload_report(
    plan: _Plan,
    obj: Mapping[str, Any],
    *,
    context: Context,
    default: Environment | None,
    index: int,
    limits: Limits,
    deadline: Deadline | None,
) -> ObjectReport:
    over = _over_limits(obj, limits)
    if over is not None:
        ref = ref_of(obj)
        decision = _declared_decision(obj, default)
        return _report(ref, decision, [_limits_finding(ref, over)], index)
    workload = Workload(obj, context)
    decision = decide_environment(workload, plan.settings, default)
    subject = Subject(workload, decision, plan.settings)
    return _report(
        workload.ref, decision, _evaluate_rules(plan, subject, workload.ref, deadline), index
    )


def _spec_decision(spec_environment: object, default: Environment | None) -> EnvironmentDecision:
    """The environment of a ProductionService judged without any rendered workload."""
    environment = normalise_environment(spec_environment)
    if environment is not None:
        return EnvironmentDecision(environment, "spec", (("spec", str(spec_environment)),))
    if default is not None:
        return EnvironmentDecision(default, "argument")
    return EnvironmentDecision(Environment.PROD, "default")


def _production_service_report(
    plan: _Plan,
    *,
    obj: Mapping[str, Any],
    rendered: tuple[list[dict[str, Any]] | None, Exception | None],
    context: Context,
    default: Environment | None,
    index: int,
    limits: Limits,
    deadline: Deadline | None,
) -> ObjectReport:
    ref = ref_of(obj)
    spec_environment = mapping(obj.get("spec")).get("environment")
    children, error = rendered
    if children is None:
        assert error is not None
        decision = _spec_decision(spec_environment, default)
        return _report(ref, decision, [_spec_finding(ref, error)], index)
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
            first = first or _declared_decision(child, default, spec_environment)
            findings.append(_limits_finding(ref_of(child), over))
            continue
        workload = Workload(child, context)
        child_decision = decide_environment(workload, plan.settings, default, spec_environment)
        first = first or child_decision
        # Patches against rendered objects would be overwritten by the operator: the user
        # changes the spec instead, so `rendered=True` suppresses them.
        subject = Subject(workload, child_decision, plan.settings, rendered=True)
        findings.extend(_evaluate_rules(plan, subject, workload.ref, deadline))
    return _report(ref, first or _spec_decision(spec_environment, default), findings, index)

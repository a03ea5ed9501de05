"""The webhook's decision, as pure functions: an AdmissionReview in, its response out.

`parse_review` turns the request body into an `AdmissionRequest` or raises `ReviewError`
(the server answers HTTP 400 with its message); `decide` evaluates the object with the
rules engine and answers exactly what `rules.to_admission_response` says, so a denial
lists the failing rule IDs, fields and fixes, and warnings stay within the apiserver's
limits. Nothing here does I/O.

What is decided, and why:

* The mode comes from the URL path, not from a namespace lookup: the configuration has one
  webhook entry whose namespaceSelector picks namespaces labelled `prodready.io/enforce`
  (path `/validate/enforce`) and one for `prodready.io/audit` (`/validate/audit`). The
  apiserver evaluates the selectors against its own namespace cache, so the webhook never
  reads a Namespace, cannot be wrong about a label changed a second ago, and namespaces
  without either label are never sent to it at all.
* DELETE and CONNECT are allowed at once; so is an object being deleted (its finalizers
  must be removable) and any kind the engine does not evaluate.
* An object its controller creates or updates is allowed without evaluation
  (`controlled_by_its_controller`): a Deployment's ReplicaSets, the Pods of a ReplicaSet,
  StatefulSet, DaemonSet or Job, a CronJob's Jobs — their owner was checked when it was
  admitted, and a rollout must not wait on the checklist once per pod. The owner counts
  only when it is of a kind the webhook checks and the request comes from the controller
  of that kind (kube-controller-manager; its per-controller ServiceAccount in kube-system;
  or `system:masters`, who could delete this webhook anyway). Anyone else's object is
  judged as if it had no owner, whatever ownerReferences it claims: a bare Pod is a bare
  Pod. The configuration's matchConditions say the same, so such requests never reach
  the webhook at all; this is the same rule where the configuration was hand-edited.
  Residual risk: a controller of another kind (an operator whose Pods are owned by its
  own custom resource) gets its Pods checked as bare Pods in an enforce namespace.
* An unowned ReplicaSet is judged as the Deployment it could have been (same replicas and
  pod template) by the rules that apply to StatefulSets too: the rules about a
  Deployment's rollout strategy do not apply to a ReplicaSet, which has none.
* An ephemeral container (`pods/ephemeralcontainers`, what `kubectl debug` adds to a
  running pod) is judged on its own (`ephemeral_container_problems`): it must not be
  privileged, allow privilege escalation or add capabilities — PR-SC-004's hardening, held
  as an error here, since such a container would run with powers the pod's admitted
  template never asked for. The rest of the pod was judged with its owner.
* A finding the object alone cannot fix — it waits on another object (a ServiceMonitor,
  PrometheusRule, PodDisruptionBudget, Service or Secret) — is a warning, never a denial
  (`rules.admission.waits_on_other_objects`): Helm and `kubectl apply -f dir/` create a
  Deployment before its ServiceMonitor. The audit and the workload's report still hold it
  to the rule once everything exists.
* An UPDATE that leaves `spec` as it was and fails no error rule the old object did not
  already fail is answered as in audit mode (allowed, with warnings). The Deployment
  controller updates annotations of Deployments that existed before their namespace
  opted in; denying that would wedge rollouts of workloads nobody changed — Pod Security
  Admission exempts such updates for the same reason. Any spec change must comply.
* `dryRun` requests get the same answer: the webhook has no side effects (`sideEffects:
  None`), so there is nothing to skip.
* Bounded work: an object over one of the rules engine's caps gets its PR-LM-001 finding
  (denied in enforce mode) without being evaluated rule by rule, and the server gives each
  review a deadline (`evaluation_budget`, 60 % of the apiserver's timeout). Evaluation
  still running when it passes is answered by prodready itself, a denial in enforce mode
  that says so, rather than left to the apiserver's failurePolicy.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from prodready import rules
from prodready.api.enforcement import Mode as PolicyMode
from prodready.api.resource import ADMITTED_WORKLOAD_KINDS
from prodready.rules.admission import DENIED_CODE, blocking_errors
from prodready.rules.policy import PolicySet

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
REVIEW_KIND: Final = "AdmissionReview"
EVALUATED_OPERATIONS: Final = frozenset({"CREATE", "UPDATE"})
OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
METRIC_KINDS: Final = frozenset(
    {
        *ADMITTED_WORKLOAD_KINDS,
        "ProductionService",
    }
)
"""Kinds counted by name in metrics; anything else (sent by a hand-edited configuration or
by a stray client) is counted as `other`, so labels stay bounded."""

EPHEMERAL_CONTAINERS: Final = "ephemeralcontainers"
CONTROLLER_MANAGER_USER: Final = "system:kube-controller-manager"
CONTROLLER_SERVICE_ACCOUNT_PREFIX: Final = "system:serviceaccount:kube-system:"
MASTERS_GROUP: Final = "system:masters"
CONTROLLER_OWNERS: Final[Mapping[str, str]] = {
    "apps/v1/Deployment": "deployment-controller",
    "apps/v1/ReplicaSet": "replicaset-controller",
    "apps/v1/StatefulSet": "statefulset-controller",
    "apps/v1/DaemonSet": "daemon-set-controller",
    "batch/v1/Job": "job-controller",
    "batch/v1/CronJob": "cronjob-controller",
}
"""A controlling owner of a checked kind (`apiVersion/kind`) and the kube-controller-manager
controller that creates what it owns, under its ServiceAccount in kube-system when the
controller-manager runs with `--use-service-account-credentials`."""
REPLICA_SET_KIND: Final = "ReplicaSet"
# What an unowned ReplicaSet is judged as, and the rules that apply to it: a StatefulSet's
# (a replicated pod template, without a Deployment's rollout strategy).
_REPLICA_SET_AS: Final = "Deployment"
# Problems with ephemeral containers named in one denial.
_MAX_LISTED: Final = 10
_REPLICA_SET_RULES: Final = frozenset(
    rule.id for rule in rules.RULES if "StatefulSet" in rule.kinds
)


class Mode(StrEnum):
    """Which webhook entry sent the review (the path): the namespace is labelled enforce
    (deny), audit (warn), or neither (`policy`: only what a ReadinessPolicy selects is
    checked, in the policy's mode)."""

    ENFORCE = "enforce"
    AUDIT = "audit"
    POLICY = "policy"


class ReviewError(ValueError):
    """The request body is not a usable admission.k8s.io/v1 AdmissionReview."""


@dataclass(frozen=True, kw_only=True)
class UserInfo:
    """Who sent the request (authentication.k8s.io/v1 UserInfo), as the apiserver says."""

    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Sorted (key, values) pairs, so that the whole identity can be a cache key."""

    @classmethod
    def parse(cls, value: Any) -> UserInfo:
        """From a review's `request.userInfo`; ReviewError when it is not the expected shape."""
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise ReviewError("request.userInfo must be an object")
        groups = value.get("groups") or []
        extra = value.get("extra") or {}
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ReviewError("request.userInfo.groups must be a list of strings")
        if not isinstance(extra, dict) or not all(
            isinstance(v, list) and all(isinstance(item, str) for item in v) for v in extra.values()
        ):
            raise ReviewError("request.userInfo.extra must map keys to lists of strings")
        return cls(
            username=str(value.get("username") or ""),
            uid=str(value.get("uid") or ""),
            groups=tuple(groups),
            extra=tuple(sorted((str(key), tuple(items)) for key, items in extra.items())),
        )


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of an AdmissionReview request the webhook uses."""

    uid: str
    kind: str
    operation: str
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool
    user: UserInfo = UserInfo()
    sub_resource: str = ""

    @property
    def metric_kind(self) -> str:
        """The kind as a bounded metrics label."""
        return self.kind if self.kind in METRIC_KINDS else "other"


def _field(mapping: Mapping[str, Any], key: str, expected: type, where: str) -> Any:
    value = mapping.get(key)
    if not isinstance(value, expected):
        kind = "a string" if expected is str else f"an {expected.__name__}"
        if expected is dict:
            kind = "an object"
        raise ReviewError(f"{where}.{key} must be {kind}")
    return value


def parse_review(body: bytes) -> AdmissionRequest:
    """Parse an AdmissionReview; ReviewError says what is wrong with it."""
    if not body:
        raise ReviewError("empty request body: expected an admission.k8s.io/v1 AdmissionReview")
    try:
        review = json.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise ReviewError(f"request body is not JSON: {error}") from None
    if not isinstance(review, dict):
        raise ReviewError("request body must be a JSON object (an AdmissionReview)")
    if review.get("apiVersion") != ADMISSION_API_VERSION or review.get("kind") != REVIEW_KIND:
        raise ReviewError(
            f"expected apiVersion {ADMISSION_API_VERSION} and kind {REVIEW_KIND}, got "
            f"{review.get('apiVersion')!r} and {review.get('kind')!r} "
            "(the webhook configuration must list admissionReviewVersions: [v1])"
        )
    request = _field(review, "request", dict, "AdmissionReview")
    uid = _field(request, "uid", str, "request")
    operation = _field(request, "operation", str, "request")
    if operation not in OPERATIONS:
        raise ReviewError(f"request.operation must be one of {', '.join(sorted(OPERATIONS))}")
    kind = _field(request, "kind", dict, "request")
    obj = request.get("object")
    old = request.get("oldObject")
    if operation in EVALUATED_OPERATIONS and not isinstance(obj, dict):
        raise ReviewError(f"request.object must be an object for {operation}")
    if old is not None and not isinstance(old, dict):
        raise ReviewError("request.oldObject must be an object when present")
    return AdmissionRequest(
        uid=uid,
        kind=str(kind.get("kind") or ""),
        operation=operation,
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        object=obj if isinstance(obj, dict) else None,
        old_object=old,
        dry_run=bool(request.get("dryRun")),
        user=UserInfo.parse(request.get("userInfo")),
        sub_resource=str(request.get("subResource") or ""),
    )


def review_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """The AdmissionReview envelope around a `response`."""
    return {"apiVersion": ADMISSION_API_VERSION, "kind": REVIEW_KIND, "response": dict(response)}


def _with_namespace(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    # On CREATE the object may not carry the namespace it is created in (kubectl -n sends
    # it in the URL); the rules match Services and PDBs by namespace, so fill it in.
    metadata = dict(obj.get("metadata") or {})
    if namespace and not metadata.get("namespace"):
        metadata["namespace"] = namespace
    return {**obj, "metadata": metadata}


def evaluation_budget(timeout_seconds: float) -> float:
    """Seconds a review may spend, from its arrival to its answer, when the apiserver waits
    `timeout_seconds`: 60 %, leaving the rest for the network and the apiserver itself, so
    the apiserver receives prodready's own answer rather than applying its failurePolicy."""
    return round(timeout_seconds * 0.6, 3)


def controlled_by_its_controller(request: AdmissionRequest) -> bool:
    """Whether the object is one its controller writes (see the module docstring): a
    controlling ownerReference of a checked kind, sent by that kind's controller."""
    if request.sub_resource == EPHEMERAL_CONTAINERS or request.object is None:
        return False
    user = request.user
    for raw in _owner_references(request.object):
        if not isinstance(raw, dict) or raw.get("controller") is not True:
            continue
        controller = CONTROLLER_OWNERS.get(f"{raw.get('apiVersion')}/{raw.get('kind')}")
        if controller is None:
            continue
        if (
            user.username
            in (CONTROLLER_MANAGER_USER, CONTROLLER_SERVICE_ACCOUNT_PREFIX + controller)
            or MASTERS_GROUP in user.groups
        ):
            return True
    return False


def _owner_references(obj: Mapping[str, Any]) -> list[Any]:
    metadata = obj.get("metadata")
    owners = metadata.get("ownerReferences") if isinstance(metadata, dict) else None
    return owners if isinstance(owners, list) else []


def _as_judged(obj: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The object as the rules judge it: in its request's namespace, without the owners it
    claims (the engine leaves a Pod with a controller to its controller; here the claim
    was not made by that controller), a ReplicaSet shaped as a Deployment."""
    judged = _with_namespace(obj, namespace)
    judged["metadata"].pop("ownerReferences", None)
    if judged.get("kind") == REPLICA_SET_KIND:
        judged["kind"] = _REPLICA_SET_AS
    return judged


@dataclass(frozen=True, kw_only=True)
class Judging:
    """What a review is judged with besides the object (`decide`'s arguments)."""

    context: tuple[Mapping[str, Any], ...] = ()
    config: rules.RulesConfig | None = None
    policies: PolicySet | None = None
    now: datetime | None = None
    environment: str | None = None
    deadline: rules.Deadline | None = None


def _report(
    obj: Mapping[str, Any], judging: Judging, *, kind: str = ""
) -> rules.ObjectReport | None:
    # Only the reviewed object is checked; the context is read, never judged itself (its
    # ConfigMaps, Ingresses and Services have rules of their own: checking them on every
    # review would cost the namespace's size, for findings the answer never carries).
    reports = rules.evaluate(
        [obj],
        related=[obj, *judging.context],
        config=judging.config if judging.policies is None else None,
        policies=judging.policies,
        now=judging.now,
        environment=judging.environment,
        deadline=judging.deadline,
    )
    report = next((report for report in reports if report.input_index == 0), None)
    if report is None or kind != REPLICA_SET_KIND:
        return report
    ref = dataclasses.replace(report.object, api_version="apps/v1", kind=REPLICA_SET_KIND)
    findings = tuple(
        dataclasses.replace(finding, object=ref) if finding.object == report.object else finding
        for finding in report.findings
        if finding.rule_id in _REPLICA_SET_RULES
    )
    return dataclasses.replace(report, object=ref, findings=findings)


def ephemeral_container_problems(request: AdmissionRequest) -> list[str]:
    """What is wrong with the ephemeral containers a `pods/ephemeralcontainers` request
    adds (those already in the old object were judged when they were added)."""
    old_spec = (request.old_object or {}).get("spec")
    old = old_spec.get("ephemeralContainers") if isinstance(old_spec, dict) else None
    existing = (
        {c.get("name") for c in old if isinstance(c, dict)} if isinstance(old, list) else set()
    )
    spec = (request.object or {}).get("spec")
    containers = spec.get("ephemeralContainers") if isinstance(spec, dict) else None
    problems: list[str] = []
    for index, container in enumerate(containers if isinstance(containers, list) else []):
        if not isinstance(container, dict) or container.get("name") in existing:
            continue
        context = container.get("securityContext")
        context = context if isinstance(context, dict) else {}
        capabilities = context.get("capabilities")
        added = capabilities.get("add") if isinstance(capabilities, dict) else None
        where = f"spec.ephemeralContainers[{index}].securityContext"
        name = str(container.get("name"))[:63]
        if context.get("privileged") is True:
            problems.append(f"ephemeral container {name} is privileged [{where}.privileged]")
        if context.get("allowPrivilegeEscalation") is True:
            problems.append(
                f"ephemeral container {name} allows privilege escalation "
                f"[{where}.allowPrivilegeEscalation]"
            )
        if isinstance(added, list) and added:
            shown = ", ".join(str(c) for c in added[:5])
            problems.append(
                f"ephemeral container {name} adds capabilities {shown} [{where}.capabilities.add]"
            )
    return problems


def _listed(problems: list[str]) -> str:
    # A denial stays a screenful however many containers a request adds.
    shown = "; ".join(problems[:_MAX_LISTED])
    if len(problems) > _MAX_LISTED:
        shown += f"; and {len(problems) - _MAX_LISTED} more"
    return shown


def _ephemeral(request: AdmissionRequest, mode: Mode) -> dict[str, Any]:
    problems = ephemeral_container_problems(request)
    response: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if not problems:
        return response
    lines = [f"PR-SC-004 (error) {problem}" for problem in problems]
    if mode is Mode.ENFORCE:
        response["allowed"] = False
        response["status"] = {
            "code": DENIED_CODE,
            "message": (
                f"prodready denied the ephemeral container(s) added to Pod "
                f"{request.namespace}/{request.name}: {_listed(problems)}. In a namespace "
                "labelled prodready.io/enforce an ephemeral container may not be privileged, "
                "allow privilege escalation or add capabilities (PR-SC-004). Fix: debug with "
                "`kubectl debug --profile=restricted` (or `general`)"
            ),
        }
        return response
    response["warnings"] = rules.limit_warnings(lines)
    return response


def _timed_out(
    request: AdmissionRequest, exceeded: rules.DeadlineExceeded, *, enforce: bool
) -> dict[str, Any]:
    """The answer when evaluation ran out of time: denied in enforce mode (an object too
    costly to check must not get in unchecked), allowed with the reason as a warning in
    audit mode (which never blocks)."""
    message = (
        f"{exceeded}. Nothing was decided about its rules; simplify the object, or run "
        "`prodready validate` on it, which has no deadline"
    )
    if enforce:
        return {
            "uid": request.uid,
            "allowed": False,
            "status": {"code": DENIED_CODE, "message": message},
        }
    return {"uid": request.uid, "allowed": True, "warnings": rules.limit_warnings([message])}


def _error_rules(report: rules.ObjectReport) -> set[str]:
    return {f.rule_id for f in blocking_errors(report)}


def _selecting_modes(obj: Mapping[str, Any], judging: Judging) -> set[PolicyMode]:
    """The modes of the ReadinessPolicies that select `obj` (cheap: label matching only)."""
    if judging.policies is None:
        return set()
    namespace = next((c for c in judging.context if c.get("kind") == "Namespace"), {})
    namespace_labels = (namespace.get("metadata") or {}).get("labels") or {}
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return {p.mode for p in judging.policies.policies if p.selects(labels, namespace_labels)}


def decide(
    request: AdmissionRequest,
    mode: Mode,
    context: Iterable[Mapping[str, Any]] = (),
    *,
    config: rules.RulesConfig | None = None,
    policies: PolicySet | None = None,
    now: datetime | None = None,
    environment: str | None = None,
    deadline: rules.Deadline | None = None,
) -> dict[str, Any]:
    """The AdmissionReview `response` for `request` (see the module docstring).

    `context` is what the object is judged with (the namespace's Services, PDBs,
    ServiceMonitors, ConfigMaps, the Namespace itself); `policies` the ReadinessPolicies
    and exceptions in force at `now`, or (without) `config` for every object.

    The entry's `mode` is a floor: with `policies`, the mode the deciding policy
    resolves to (`ObjectReport.mode`) may be stricter (Enforce in a namespace labelled
    audit), and on the `policy` entry it alone decides — a workload no ReadinessPolicy
    selects is admitted without evaluation.

    With a `deadline`, evaluation that has not finished when it passes is answered
    by `_timed_out`: a denial in enforce mode, unless the UPDATE leaves `spec` as it was
    (answered as in audit mode, for the reason given in the module docstring).
    """
    judging = Judging(
        context=tuple(context),
        config=config,
        policies=policies,
        now=now,
        environment=environment,
        deadline=deadline,
    )
    allowed: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if request.operation not in EVALUATED_OPERATIONS or request.object is None:
        return allowed
    if (request.object.get("metadata") or {}).get("deletionTimestamp"):
        return allowed
    if request.sub_resource == EPHEMERAL_CONTAINERS:
        return _ephemeral(request, mode)
    if request.sub_resource or controlled_by_its_controller(request):
        return allowed
    kind = str(request.object.get("kind") or "")
    obj = _as_judged(request.object, request.namespace)
    selecting = _selecting_modes(obj, judging)
    if mode is Mode.POLICY and not selecting:
        return allowed
    # Whatever the rules say, a review that runs out of time is denied where enforcement
    # applies: an object too costly to check must not get in unchecked.
    enforced = mode is Mode.ENFORCE or PolicyMode.ENFORCE in selecting
    enforce = mode is Mode.ENFORCE
    old = request.old_object if request.operation == "UPDATE" else None
    spec_unchanged = old is not None and old.get("spec") == obj.get("spec")
    try:
        report = _report(obj, judging, kind=kind)
        if report is None:
            return allowed  # not a kind the checklist applies to
        if judging.policies is not None:
            if report.mode is PolicyMode.OFF:
                return allowed
            enforce = enforce or report.mode is PolicyMode.ENFORCE
        if enforce and old is not None and spec_unchanged:
            judged_before = _as_judged(old, request.namespace)
            before = _report(judged_before, judging, kind=kind)
            if before is not None and _error_rules(report) <= _error_rules(before):
                enforce = False
    except rules.DeadlineExceeded as exceeded:
        return _timed_out(request, exceeded, enforce=enforced and not spec_unchanged)
    return rules.to_admission_response(report, uid=request.uid, enforce=enforce)

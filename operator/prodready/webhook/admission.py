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

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from prodready import rules
from prodready.rules.admission import DENIED_CODE

ADMISSION_API_VERSION: Final = "admission.k8s.io/v1"
REVIEW_KIND: Final = "AdmissionReview"
EVALUATED_OPERATIONS: Final = frozenset({"CREATE", "UPDATE"})
OPERATIONS: Final = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
METRIC_KINDS: Final = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod", "ProductionService"}
)
"""Kinds counted by name in metrics; anything else (sent by a hand-edited configuration or
by a stray client) is counted as `other`, so labels stay bounded."""


class Mode(StrEnum):
    """How a failing object is answered: denied (enforce) or allowed with warnings (audit)."""

    ENFORCE = "enforce"
    AUDIT = "audit"


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


def _report(
    obj: Mapping[str, Any],
    context: Iterable[Mapping[str, Any]],
    config: rules.RulesConfig | None,
    environment: str | None,
    deadline: rules.Deadline | None = None,
) -> rules.ObjectReport | None:
    reports = rules.evaluate(
        [obj, *context], config=config, environment=environment, deadline=deadline
    )
    return next((report for report in reports if report.input_index == 0), None)


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
    return {f.rule_id for f in report.findings if f.result is rules.Result.FAIL}


def decide(
    request: AdmissionRequest,
    mode: Mode,
    context: Iterable[Mapping[str, Any]] = (),
    *,
    config: rules.RulesConfig | None = None,
    environment: str | None = None,
    deadline: rules.Deadline | None = None,
) -> dict[str, Any]:
    """The AdmissionReview `response` for `request` (see the module docstring).

    With a `deadline`, evaluation that has not finished when it passes is answered by
    `_timed_out`: a denial in enforce mode, unless the UPDATE leaves `spec` as it was
    (answered as in audit mode, for the reason given in the module docstring).
    """
    allowed: dict[str, Any] = {"uid": request.uid, "allowed": True}
    if request.operation not in EVALUATED_OPERATIONS or request.object is None:
        return allowed
    if (request.object.get("metadata") or {}).get("deletionTimestamp"):
        return allowed
    context = list(context)
    obj = _with_namespace(request.object, request.namespace)
    enforce = mode is Mode.ENFORCE
    old = request.old_object if request.operation == "UPDATE" else None
    spec_unchanged = old is not None and old.get("spec") == obj.get("spec")
    try:
        report = _report(obj, context, config, environment, deadline)
        if report is None:
            return allowed  # not a kind the checklist applies to
        if enforce and old is not None and spec_unchanged:
            before = _report(
                _with_namespace(old, request.namespace), context, config, environment, deadline
            )
            if before is not None and _error_rules(report) <= _error_rules(before):
                enforce = False
    except rules.DeadlineExceeded as exceeded:
        return _timed_out(request, exceeded, enforce=enforce and not spec_unchanged)
    return rules.to_admission_response(report, uid=request.uid, enforce=enforce)

"""What the audit writes back to the policy objects: Gatekeeper's `totalViolations`, and more.

* A ReadinessPolicy's status: `observedGeneration`, a `Ready` condition (False with why,
  e.g. an unknown rule ID, when the policy cannot be applied as written) and the counts of
  the workloads it decides for (`matched`; objects checked on their own, such as a
  Service, are not counted), of which `compliant` and `nonCompliant`, tallied from the
  audit's reports namespace by namespace.
* A ReadinessException's status: `state` Active or Expired and a `Ready` condition. The
  moment one expires it stops applying (admission and audit resolve exceptions against
  the current time); this posts an `ExceptionExpired` Event on it, counts it in
  `prodready_exceptions_expired` and marks its namespace for the audit, whose next pass
  turns the skipped results back into failures.

Writes are status patches, only when the status differs from what the object has, so a
converged cluster costs none. Only the leader writes (the audit runs only there).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from prodready import rules
from prodready.api import conditions as cond
from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.events import EventRecorder
from prodready.kube.policies import LivePolicies
from prodready.kube.store import POLICY_RESOURCES, WORKLOAD_KINDS, ObjectStore
from prodready.observability.metrics import Metrics
from prodready.rules.policy import exception_state

__all__ = ["PolicyStatusWriter"]

logger = logging.getLogger("prodready.audit")

JSON = dict[str, Any]
EXPIRED_REASON: Final = "ExceptionExpired"
_RESOURCES: Final = {resource.kind: resource for resource in POLICY_RESOURCES}


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _generation(body: Mapping[str, Any]) -> int:
    return int((body.get("metadata") or {}).get("generation") or 0)


def _same(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> bool:
    """Whether `current` already says what `wanted` says (transition times aside)."""
    current = current or {}
    for key, value in wanted.items():
        if key == "conditions":
            have = [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in current.get("conditions") or ()
            ]
            want = [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in value]
            if have != want:
                return False
        elif current.get(key) != value:
            return False
    return True


class PolicyStatusWriter:
    """Tallies reports by deciding policy; writes policy and exception statuses."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        policies: LivePolicies,
        client: KubeClient,
        events: EventRecorder,
        metrics: Metrics,
        mark: Callable[[str], None],
    ) -> None:
        self._store = store
        self._policies = policies
        self._client = client
        self._events = events
        self._metrics = metrics
        self._mark = mark
        self._tallies: dict[str, Counter[tuple[str, bool]]] = {}
        # Exceptions seen Active, so an expiry is announced once, when it happens.
        self._active: set[tuple[str, str]] = set()

    def record(self, namespace: str, reports: Iterable[rules.ObjectReport]) -> None:
        """The audit of `namespace` gave these reports: remember the tally per policy."""
        tally: Counter[tuple[str, bool]] = Counter(
            (report.policy, report.compliant)
            for report in reports
            if report.policy is not None and report.object.kind in WORKLOAD_KINDS
        )
        if tally:
            self._tallies[namespace] = tally
        else:
            self._tallies.pop(namespace, None)

    def forget(self) -> None:
        """Another replica writes now."""
        self._tallies.clear()
        self._active.clear()

    async def write(self, now: datetime) -> None:
        """Bring every policy's and exception's status up to date (no write if it is)."""
        await self._write_policies()
        await self._write_exceptions(now)

    async def _write_policies(self) -> None:
        totals: Counter[tuple[str, bool]] = Counter()
        for tally in self._tallies.values():
            totals.update(tally)
        errors = self._policies.errors()
        problems: dict[str, list[str]] = {}
        for policy in self._policies.current().policies:
            problems[policy.name] = list(policy.problems)
        for namespace, name in self._store.keys(POLICY_KIND):
            body = self._store.get(POLICY_KIND, namespace, name)
            if body is None:
                continue
            reasons = problems.get(name, [])
            error = errors.get((POLICY_KIND, namespace, name))
            if error is not None:
                reasons = [error]
            compliant, failing = totals[(name, True)], totals[(name, False)]
            wanted = {
                "observedGeneration": _generation(body),
                "conditions": self._ready(body, reasons, "the policy is in force"),
                "matched": compliant + failing,
                "compliant": compliant,
                "nonCompliant": failing,
            }
            await self._patch(POLICY_KIND, "", name, body, wanted)

    async def _write_exceptions(self, now: datetime) -> None:
        compiled = {
            (exception.namespace, exception.name): exception
            for exception in self._policies.current().exceptions
        }
        errors = self._policies.errors()
        for namespace, name in self._store.keys(EXCEPTION_KIND):
            body = self._store.get(EXCEPTION_KIND, namespace, name)
            if body is None:
                continue
            exception = compiled.get((namespace, name))
            error = errors.get((EXCEPTION_KIND, namespace, name))
            if exception is None:
                reasons = [error or "the exception cannot be used"]
                state = None
            else:
                state = exception_state(exception, now)
                reasons = [
                    *exception.problems,
                    *self._policies.current().exception_problems(exception),
                ]
                if state == "Expired":
                    reasons.append(f"expired at {_stamp(exception.expires)}")
                    await self._expired(namespace, name, body, exception.expires)
                else:
                    self._active.add((namespace, name))
            wanted: JSON = {
                "observedGeneration": _generation(body),
                "conditions": self._ready(body, reasons, "the exception applies"),
            }
            if state is not None:
                wanted["state"] = state
            await self._patch(EXCEPTION_KIND, namespace, name, body, wanted)
        self._active &= set(compiled)

    async def _expired(self, namespace: str, name: str, body: JSON, expires: datetime) -> None:
        was_active = (namespace, name) in self._active
        written = (body.get("status") or {}).get("state")
        if not was_active and written == "Expired":
            return  # expired before this replica led, and announced then
        self._active.discard((namespace, name))
        if written == "Expired":
            return
        self._metrics.exceptions_expired.inc()
        self._mark(namespace)
        await self._events.warning(
            body,
            EXPIRED_REASON,
            f"ReadinessException {namespace}/{name} expired at {_stamp(expires)}: the rules "
            "it excepted apply again",
        )

    def _ready(self, body: Mapping[str, Any], reasons: list[str], fine: str) -> list[JSON]:
        ready = cond.Condition(
            cond.READY,
            not reasons,
            "NotReady" if reasons else "Ready",
            "; ".join(reasons) if reasons else fine,
        )
        existing = (body.get("status") or {}).get("conditions")
        return cond.merge_conditions(
            existing, [ready], generation=_generation(body), now=cond.now_rfc3339()
        )

    async def _patch(self, kind: str, namespace: str, name: str, body: JSON, wanted: JSON) -> None:
        if _same(body.get("status"), wanted):
            return
        try:
            answer = await self._client.patch_status(_RESOURCES[kind], namespace, name, wanted)
        except ApiError as error:
            if error.not_found:
                return  # deleted meanwhile: its watch event removes it from the store
            raise
        self._store.put(answer, written=True)

"""The operator's side of `enforceInApiserver`: the generated ValidatingAdmissionPolicies,
kept applied.

For every ReadinessPolicy in the store whose `spec.enforceInApiserver` is true (and whose
mode is not Off), `rules.vap.policy_objects` gives a ValidatingAdmissionPolicy and its
binding, `prodready-<policy>`; they are server-side applied under the operator's field
manager, owned by the policy (both are cluster-scoped, so deleting the policy lets the
garbage collector delete them). A generated object no policy asks for any more (the field
turned off, the mode set to Off, the policy deleted while the operator was down) is
deleted: the operator labels what it generates and lists by that label.

It runs on the leader, when a ReadinessPolicy or ReadinessException changes (exceptions
are compiled into the VAP: `rules.vap`), when the earliest active exception expires, and
every `interval_seconds` to repair drift. An object is applied only when what it would
apply differs from what it last applied, so a converged cluster costs no writes.

A policy the apiserver refuses (a custom rule's CEL the apiserver does not accept) is
logged with the policy's name and the apiserver's message; the webhook still enforces it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.api.resource import Resource
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.store import Change, ObjectStore
from prodready.rules.policy import PolicyError, compile_exception
from prodready.rules.vap import (
    API_VERSION,
    BINDING_KIND,
    MANAGED_BY_LABEL,
    VAP_KIND,
    policy_objects,
)

__all__ = ["BINDINGS", "POLICIES", "VapSync"]

logger = logging.getLogger("prodready.vap")

JSON = dict[str, Any]
POLICIES: Final = Resource(API_VERSION, VAP_KIND, "validatingadmissionpolicies", namespaced=False)
BINDINGS: Final = Resource(
    API_VERSION, BINDING_KIND, "validatingadmissionpolicybindings", namespaced=False
)
_RESOURCES: Final = {VAP_KIND: POLICIES, BINDING_KIND: BINDINGS}
_SELECTOR: Final = f"{MANAGED_BY_LABEL}=prodready"


def wanted_objects(
    policies: list[Mapping[str, Any]],
    exceptions: list[Mapping[str, Any]],
    now: datetime,
) -> tuple[list[JSON], list[str]]:
    """(the objects the policies asking for apiserver enforcement compile to, problems)."""
    usable = []
    for exception in exceptions:
        try:
            compile_exception(exception)
        except PolicyError:
            continue  # LivePolicies logs it; it excepts nothing anywhere
        usable.append(exception)
    wanted: list[JSON] = []
    problems: list[str] = []
    for policy in policies:
        spec = policy.get("spec")
        if not isinstance(spec, Mapping) or spec.get("enforceInApiserver") is not True:
            continue
        try:
            objects, _ = policy_objects(policy, others=policies, exceptions=usable, now=now)
        except PolicyError as error:
            problems.append(str(error))
            continue
        wanted.extend(objects)
    return wanted, problems


def next_expiry(exceptions: list[Mapping[str, Any]], now: datetime) -> datetime | None:
    """When the earliest exception still active expires (the VAP must drop it then)."""
    found: datetime | None = None
    for exception in exceptions:
        try:
            expires = compile_exception(exception).expires
        except PolicyError:
            continue
        if expires > now and (found is None or expires < found):
            found = expires
    return found


class VapSync:
    """Applies and deletes the generated VAPs and bindings (see the module docstring)."""

    def __init__(
        self,
        *,
        store: ObjectStore,
        client: KubeClient,
        field_manager: str,
        is_leading: Callable[[], bool],
        interval_seconds: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Wire the parts; nothing runs until `run()`."""
        self._store = store
        self._client = client
        self._field_manager = field_manager
        self._is_leading = is_leading
        self._interval = interval_seconds
        self._clock = clock
        self._wake = asyncio.Event()
        self._applied: dict[tuple[str, str], str] = {}
        self.writes = 0

    def on_change(self, change: Change) -> None:
        """A policy or an exception changed: sync soon."""
        if change.kind in (POLICY_KIND, EXCEPTION_KIND) and change.content_changed:
            self._wake.set()

    async def run(self) -> None:
        """Sync whenever woken, at the next exception expiry, and every interval."""
        while True:
            self._wake.clear()
            timeout = self._interval
            if self._is_leading():
                try:
                    expiry = await self.sync_once()
                except ApiError as error:
                    logger.warning("syncing the generated VAPs failed", extra={"error": str(error)})
                    expiry = None
                if expiry is not None:
                    timeout = min(timeout, max(1.0, (expiry - self._clock()).total_seconds()))
            else:
                self._applied.clear()  # a new leader applies what it wants once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _bodies(self, kind: str) -> list[Mapping[str, Any]]:
        return [
            body
            for namespace, name in self._store.keys(kind)
            if (body := self._store.get(kind, namespace, name)) is not None
        ]

    async def sync_once(self) -> datetime | None:
        """Apply what the policies want, delete what they no longer want; the next time an
        exception expires."""
        now = self._clock()
        policies = self._bodies(POLICY_KIND)
        exceptions = self._bodies(EXCEPTION_KIND)
        wanted, problems = wanted_objects(policies, exceptions, now)
        for problem in problems:
            logger.warning("a policy cannot be compiled to a VAP", extra={"error": problem})
        names = {(obj["kind"], obj["metadata"]["name"]) for obj in wanted}
        for obj in wanted:
            key = (obj["kind"], obj["metadata"]["name"])
            text = json.dumps(obj, sort_keys=True)
            if self._applied.get(key) == text:
                continue
            try:
                # Never forced: an object of that name someone else manages (a policy named
                # `operator` next to the chart's prodready-operator) is a conflict, not ours.
                await self._client.apply(
                    _RESOURCES[obj["kind"]], obj, field_manager=self._field_manager, force=False
                )
            except ApiError as error:
                if error.conflict:
                    logger.warning(
                        "a generated VAP's name is held by another manager; not applied",
                        extra={"object_name": key[1], "kind": key[0], "error": str(error)},
                    )
                    continue
                if error.status == 403:
                    logger.warning(
                        "a ReadinessPolicy asks for enforceInApiserver, but the operator may "
                        "not write ValidatingAdmissionPolicies (chart: rbac.admissionPolicies); "
                        "the webhook still enforces the policy",
                        extra={"object_name": key[1], "kind": key[0]},
                    )
                    continue
                if error.status in (400, 422):
                    logger.warning(
                        "the apiserver refuses a generated VAP; the webhook still enforces "
                        "the policy",
                        extra={"object_name": key[1], "kind": key[0], "error": str(error)},
                    )
                    continue
                raise
            self._applied[key] = text
            self.writes += 1
            logger.info("applied a generated VAP", extra={"kind": key[0], "object_name": key[1]})
        for resource in (BINDINGS, POLICIES):
            try:
                items = await self._client.list(resource.path(), label_selector=_SELECTOR)
            except ApiError as error:
                if error.status == 403 and not names:
                    # Not granted (the chart's default) and nothing asks for one: an
                    # operator that may not list them never made any to clean up.
                    logger.debug("not allowed to list generated VAPs; none wanted")
                    break
                raise
            for item in items:
                metadata = item.get("metadata") or {}
                key = (resource.kind, str(metadata.get("name")))
                if key in names:
                    continue
                await self._client.delete(resource, None, key[1], str(metadata.get("uid")))
                self._applied.pop(key, None)
                self.writes += 1
                logger.info(
                    "deleted a generated VAP no policy asks for",
                    extra={"kind": key[0], "object_name": key[1]},
                )
        return next_expiry(exceptions, now)

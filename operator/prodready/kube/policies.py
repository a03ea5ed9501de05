"""The ReadinessPolicies and ReadinessExceptions in force, live from the object store.

The webhook, the audit and the controller all judge with the same `rules.policy.PolicySet`;
this keeps it current. It subscribes to the store and compiles the policy objects again
whenever one of them changes (a handful of objects: the work is per policy change, never
per workload or per request), so a change applies to the very next admission request and
the next audit pass, with no restart.

A stored object that does not compile (it slipped past the CRD's validation: an older
schema, a rule ID this version does not know) is left out and remembered with the reason,
which the audit writes to its status; it never takes the others down with it.

`current()` is read from the webhook's thread too: the set is replaced in one assignment,
never changed in place.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prodready.api.enforcement import Mode
from prodready.api.policy import EXCEPTION_KIND, POLICY_KIND
from prodready.kube.store import Change, ObjectStore
from prodready.rules.policy import (
    CompiledException,
    CompiledPolicy,
    EffectivePolicy,
    PolicyError,
    PolicySet,
    compile_exception,
    compile_policy,
    default_policy,
)

__all__ = ["LivePolicies"]

logger = logging.getLogger("prodready.policies")

JSON = dict[str, Any]


class LivePolicies:
    """The PolicySet compiled from the policy objects in the store, kept current."""

    def __init__(self, store: ObjectStore, *, default: EffectivePolicy | None = None) -> None:
        """`default` decides for a workload no policy and no namespace label selects."""
        self._store = store
        self._default = default or default_policy(mode=Mode.OFF)
        self._errors: dict[tuple[str, str, str], str] = {}
        self._set = PolicySet(default=self._default)
        # Counts rebuilds: what was judged under one version is stale under the next.
        self.version = 0
        self.rebuild()
        store.subscribe(self._on_change)

    def current(self) -> PolicySet:
        """The set in force now."""
        return self._set

    def errors(self) -> Mapping[tuple[str, str, str], str]:
        """(kind, namespace, name) of each stored policy object that does not compile, and
        why."""
        return dict(self._errors)

    def namespace(self, name: str) -> JSON | None:
        """The stored Namespace object (its labels and annotations decide policies and the
        environment floor), or None."""
        return self._store.get("Namespace", "", name)

    def _on_change(self, change: Change) -> None:
        # A status write (the audit's counts, an exception's state) compiles to the same.
        if change.kind in (POLICY_KIND, EXCEPTION_KIND) and change.content_changed:
            self.rebuild()

    def rebuild(self) -> None:
        """Compile every stored policy and exception again."""
        errors: dict[tuple[str, str, str], str] = {}
        policies: list[CompiledPolicy] = []
        exceptions: list[CompiledException] = []
        for namespace, name in self._store.keys(POLICY_KIND):
            body = self._store.get(POLICY_KIND, namespace, name)
            try:
                policies.append(compile_policy(body or {}))
            except PolicyError as error:
                errors[(POLICY_KIND, namespace, name)] = str(error)
        for namespace, name in self._store.keys(EXCEPTION_KIND):
            body = self._store.get(EXCEPTION_KIND, namespace, name)
            try:
                exceptions.append(compile_exception(body or {}))
            except PolicyError as error:
                errors[(EXCEPTION_KIND, namespace, name)] = str(error)
        for key, reason in sorted(errors.items()):
            if self._errors.get(key) != reason:
                logger.warning(
                    "a policy object cannot be used; it is left out",
                    extra={
                        "kind": key[0],
                        "namespace": key[1],
                        "object_name": key[2],
                        "error": reason,
                    },
                )
        self._errors = errors
        self._set = PolicySet(policies=policies, exceptions=exceptions, default=self._default)
        self.version += 1

"""Which keys a Secret holds, read by name, its values dropped on arrival.

The operator may `get` Secrets in the namespaces it watches, and nothing more: it never
lists or watches them, which would hold every value of the cluster in its memory. RBAC
cannot grant "metadata only" on Secrets, and a Secret's metadata does not name its keys,
so reading the object is the only way to know them. The values never leave `_read`:
nothing can log, store or post them, so nothing has to mask them.

The reconciler asks about the Secrets a ProductionService references; the audit and the
webhook about those the workloads they judge reference (`context_objects`), so PR-CF-002
says in the cluster what `prodready validate` says of the same objects offline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prodready.kube.client import ApiError, KubeClient
from prodready.rules.lookups import looked_up_secret

logger = logging.getLogger(__name__)

JSON = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SecretKeys:
    """What is known of one Secret: its key names and its resourceVersion."""

    keys: frozenset[str]
    version: str


@dataclass
class SecretLookup:
    """Answers about Secrets by (namespace, name), each reused for `ttl` seconds.

    A rollout reconciles its service several times a second and the audit judges a
    namespace again on every change; the Secret does not change that often, and a newly
    created one is still seen within `ttl`.
    """

    client: KubeClient
    ttl: float = 5.0
    clock: Callable[[], float] = time.monotonic
    max_entries: int = 10_000
    _answers: dict[tuple[str, str], tuple[float, SecretKeys | None]] = field(default_factory=dict)

    async def get(self, namespace: str, name: str) -> SecretKeys | None:
        """The Secret's keys, or None when it does not exist; `ApiError` when the read is
        refused or fails (not cached: the next call asks again)."""
        now = self.clock()
        cached = self._answers.get((namespace, name))
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        answer = await self._read(namespace, name)
        if len(self._answers) >= self.max_entries:
            self._answers = {
                key: value for key, value in self._answers.items() if now - value[0] < self.ttl
            }
            if len(self._answers) >= self.max_entries:
                self._answers.clear()
        self._answers[(namespace, name)] = (now, answer)
        return answer

    async def _read(self, namespace: str, name: str) -> SecretKeys | None:
        secret = await self.client.get(f"/api/v1/namespaces/{namespace}/secrets/{name}")
        if secret is None:
            return None
        keys = frozenset((secret.get("data") or {}).keys())
        version = str((secret.get("metadata") or {}).get("resourceVersion", ""))
        del secret
        return SecretKeys(keys, version)

    async def context_objects(
        self,
        references: Iterable[tuple[str, str]],
        *,
        budget: int = 256,
        judge_absent: bool = True,
    ) -> list[JSON]:
        """The rules' context for these (namespace, name) references: a Secret that exists
        as keys with empty values, one that does not as an absent marker
        (`prodready.rules.lookups`), unless not `judge_absent`. A read that is refused or
        fails, and any reference past the first `budget`, add nothing: that reference is
        not judged, as offline when the Secret is not in the input."""
        wanted = sorted(set(references))
        if len(wanted) > budget:
            logger.debug(
                "more Secret references than one pass looks up; the rest are not judged",
                extra={"references": len(wanted), "budget": budget},
            )
            wanted = wanted[:budget]
        answers = await asyncio.gather(
            *(self.get(namespace, name) for namespace, name in wanted), return_exceptions=True
        )
        objects: list[JSON] = []
        for (namespace, name), answer in zip(wanted, answers, strict=True):
            if isinstance(answer, BaseException):
                if not isinstance(answer, ApiError):
                    raise answer
                continue
            if answer is not None:
                objects.append(looked_up_secret(namespace, name, answer.keys))
            elif judge_absent:
                objects.append(looked_up_secret(namespace, name, None))
        return objects

"""Where a kind lives in the Kubernetes API: one type for (group/version, kind, plural).

The renderer names the kinds it produces with it, the client builds REST paths from it,
the object store knows what it watches by it. Pure (no client): `render` and `rules` may
use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote

ADMITTED_WORKLOAD_KINDS: Final = (
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "Pod",
)
"""The workload kinds admission sees (the webhook's and a generated VAP's match, a custom
rule's default kinds). The rules evaluate them all but ReplicaSet, which is judged at
admission as the Deployment it could have been (`rules.context.WORKLOAD_KINDS`); the audit
watches the ones controllers do not create (`kube.store.WORKLOAD_RESOURCES`)."""


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API: group/version, plural, and whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    @property
    def group(self) -> str:
        """The API group ("" for the core group)."""
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        """The version inside the group."""
        return self.api_version.rpartition("/")[2]

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The REST path of the collection, an object, or an object's subresource."""
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace)}"
        base += f"/{self.plural}"
        if name:
            base += f"/{quote(name)}"
            if subresource:
                base += f"/{subresource}"
        return base

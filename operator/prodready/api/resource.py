"""Where a kind lives in the Kubernetes API: one type for (group/version, kind, plural).

The renderer names the kinds it produces with it, the client builds REST paths from it,
the object store knows what it watches by it. Pure (no client): `render` and `rules` may
use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import quote


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


# The kinds prodready reads or writes, each defined once.
SERVICE: Final = Resource("v1", "Service", "services")
POD: Final = Resource("v1", "Pod", "pods")
CONFIG_MAP: Final = Resource("v1", "ConfigMap", "configmaps")
SECRET: Final = Resource("v1", "Secret", "secrets")
DEPLOYMENT: Final = Resource("apps/v1", "Deployment", "deployments")
STATEFUL_SET: Final = Resource("apps/v1", "StatefulSet", "statefulsets")
DAEMON_SET: Final = Resource("apps/v1", "DaemonSet", "daemonsets")
REPLICA_SET: Final = Resource("apps/v1", "ReplicaSet", "replicasets")
JOB: Final = Resource("batch/v1", "Job", "jobs")
CRON_JOB: Final = Resource("batch/v1", "CronJob", "cronjobs")
HORIZONTAL_POD_AUTOSCALER: Final = Resource(
    "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"
)
POD_DISRUPTION_BUDGET: Final = Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets")
INGRESS: Final = Resource("networking.k8s.io/v1", "Ingress", "ingresses")
SERVICE_MONITOR: Final = Resource("monitoring.coreos.com/v1", "ServiceMonitor", "servicemonitors")
POD_MONITOR: Final = Resource("monitoring.coreos.com/v1", "PodMonitor", "podmonitors")
PROMETHEUS_RULE: Final = Resource("monitoring.coreos.com/v1", "PrometheusRule", "prometheusrules")
LEASE: Final = Resource("coordination.k8s.io/v1", "Lease", "leases")

ADMITTED_WORKLOAD_RESOURCES: Final = (
    DEPLOYMENT,
    STATEFUL_SET,
    DAEMON_SET,
    REPLICA_SET,
    JOB,
    CRON_JOB,
    POD,
)
"""The workloads admission sees (the webhook's and a generated VAP's match, a custom
rule's default kinds). The rules evaluate them all but ReplicaSet, which is judged at
admission as the Deployment it could have been (`rules.context.WORKLOAD_KINDS`); the audit
watches the ones controllers do not create (`kube.store.WORKLOAD_RESOURCES`)."""

ADMITTED_WORKLOAD_KINDS: Final = tuple(resource.kind for resource in ADMITTED_WORKLOAD_RESOURCES)

"""What the rules see: workloads, their containers and the related objects around them.

`Context.build` indexes every non-workload object once per run (by namespace, name and
labels); `Workload` then answers "which Services select me, am I exposed, which HPA
targets me" with dictionary lookups instead of scans.

Decisions documented here because every rule relies on them:

* **Namespaces.** An object without `metadata.namespace` is matched as if it were in
  `default` (what `kubectl apply` without `-n` does), so a Helm chart rendered without
  namespaces still links its Service to its Deployment.
* **Serving containers.** Job and CronJob pods never serve. Otherwise a container serves if
  a Service in the input selects the pod and one of the Service's `targetPort`s names or
  numbers that container's port (when a selecting Service's target port matches no declared
  port, the first container is taken to serve it), or if it declares a port named for HTTP
  or gRPC (`http`, `https`, `web`, `grpc`, `http-api`, …, or `appProtocol` http/grpc). A
  port named `metrics`, `postgres` or left unnamed does not make a server of a pod that no
  Service selects: it is a worker (or scraped), and the traffic rules leave it alone.
  Init containers (native sidecars included) never count as serving.
* **Long-running containers** (every app container of a Deployment, StatefulSet, DaemonSet
  or bare Pod) are expected to have a liveness probe whether or not they serve.
* **Exposed.** A workload is exposed outside the cluster when a Service of type
  LoadBalancer or NodePort selects its pods, or an Ingress or a Gateway API route
  (HTTPRoute, GRPCRoute) sends traffic to a Service that does. Browser-facing rules (CORS,
  rate limiting, TLS) apply only to exposed workloads.
* **Objects checked on their own.** An Ingress, an HTTPRoute or GRPCRoute, a LoadBalancer
  Service and a ConfigMap are context for the workloads and also get their own
  report (TLS, source ranges, secrets in data): a file holding only an Ingress is checked.
* **Settings from ConfigMaps and Secrets.** A variable set from a ConfigMap that is in the
  input is read; one from a ConfigMap or Secret that is not (or from any Secret: the
  rules never read secret values) is "set but unknown" and does not fail a rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from prodready.api.labels import (
    ANNOTATION_DEPENDENCIES,
    ANNOTATION_EXEMPT,
    ANNOTATION_EXEMPT_REASON,
    LABEL_ENVIRONMENT,
)
from prodready.api.resource import ADMITTED_WORKLOAD_KINDS
from prodready.rules.model import Environment, ObjectRef
from prodready.rules.selectors import Selector, SelectorIndex, labels_of

# What `evaluate` judges: every admitted workload kind but ReplicaSet (a Deployment's).
WORKLOAD_KINDS = frozenset(ADMITTED_WORKLOAD_KINDS) - {"ReplicaSet"}
LONG_RUNNING_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Pod"})
PRODUCTION_SERVICE_KIND = "ProductionService"
CONTEXT_KINDS = frozenset(
    {
        "Service",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PodMonitor",
        "Ingress",
        "HTTPRoute",
        "GRPCRoute",
        "Gateway",
        "PrometheusRule",
        "HorizontalPodAutoscaler",
        "Secret",
        "ConfigMap",
        "Namespace",
        # These produce Secrets in the cluster; their presence satisfies PR-CF-002.
        "ExternalSecret",
        "SealedSecret",
    }
)
# A Secret the cluster was asked about by name (`prodready.rules.lookups`): "keys" (its key
# names, values empty) or "absent" (it does not exist).
LOOKED_UP = "prodready.io/looked-up"
LOOKED_UP_ABSENT = "absent"
EXPOSING_SERVICE_TYPES = frozenset({"LoadBalancer", "NodePort"})
ROUTE_KINDS = frozenset({"HTTPRoute", "GRPCRoute"})
# Context objects that are also checked on their own (`checked_on_its_own`).
STANDALONE_KINDS = frozenset({"Ingress", "Service", "ConfigMap", *ROUTE_KINDS})
# Port names (and appProtocols) that say the port serves requests rather than metrics,
# a database protocol or a cluster's gossip.
_SERVING_PORT_NAME = re.compile(r"^(https?|web|grpcs?|h2c?|http2|api|www)(-.*)?$|.*-(https?|grpc)$")

# The label and annotation keys are the API's contract (prodready.api.labels).
ENVIRONMENT_KEY = LABEL_ENVIRONMENT
EXEMPT_KEY = ANNOTATION_EXEMPT
EXEMPT_REASON_KEY = ANNOTATION_EXEMPT_REASON
DEPENDENCIES_KEY = ANNOTATION_DEPENDENCIES
# The health endpoint a workload declares, which a probe fix may point at.
HEALTH_PATH_KEY = "prodready.io/health-path"

# Spellings people use for the three environments.
ENVIRONMENT_ALIASES: dict[str, Environment] = {
    "prod": Environment.PROD,
    "production": Environment.PROD,
    "prd": Environment.PROD,
    "staging": Environment.STAGING,
    "stage": Environment.STAGING,
    "stg": Environment.STAGING,
    "dev": Environment.DEV,
    "development": Environment.DEV,
    "local": Environment.DEV,
}

_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def pod_spec_of(obj: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    """The pod spec of a workload object, and its path (`spec.template.spec` for most);
    empty for an object checked on its own, which has none."""
    parts = _POD_SPEC_PATHS.get(kind_of(obj))
    if parts is None:
        return {}, "spec"
    pod_spec: Mapping[str, Any] = obj
    for part in parts:
        pod_spec = mapping(pod_spec.get(part))
    return pod_spec, ".".join(parts)


def mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a mapping, else an empty one (malformed input never crashes a rule)."""
    if type(value) is dict:  # the usual case, without the slower ABC check
        return value
    return value if isinstance(value, Mapping) else {}


def sequence(value: object) -> Sequence[Any]:
    """`value` if it is a list, else an empty one."""
    return value if isinstance(value, list) else ()


def kind_of(obj: Mapping[str, Any]) -> str:
    """The object's `kind` ('' if missing)."""
    kind = obj.get("kind")
    return kind if isinstance(kind, str) else ""


def namespace_key(obj: Mapping[str, Any]) -> str:
    """The namespace used for matching (`default` when the object names none)."""
    namespace = mapping(obj.get("metadata")).get("namespace")
    return namespace if isinstance(namespace, str) and namespace else "default"


def name_of(obj: Mapping[str, Any]) -> str:
    """`metadata.name` ('' if missing)."""
    name = mapping(obj.get("metadata")).get("name")
    return name if isinstance(name, str) else ""


def ref_of(obj: Mapping[str, Any]) -> ObjectRef:
    """The `ObjectRef` naming `obj` as written (namespace None when not given)."""
    metadata = mapping(obj.get("metadata"))
    namespace = metadata.get("namespace")
    api_version = obj.get("apiVersion")
    return ObjectRef(
        api_version=api_version if isinstance(api_version, str) else "",
        kind=kind_of(obj),
        namespace=namespace if isinstance(namespace, str) and namespace else None,
        name=name_of(obj),
    )


def normalise_environment(value: object) -> Environment | None:
    """Map a declared environment (`production`, `Prod`, `stg`, …) to a profile, or None."""
    if not isinstance(value, str):
        return None
    return ENVIRONMENT_ALIASES.get(value.strip().lower())


def is_controlled_pod(obj: Mapping[str, Any]) -> bool:
    """A Pod owned by a controller: its controller is the thing to check, not the Pod."""
    for owner in sequence(mapping(obj.get("metadata")).get("ownerReferences")):
        if mapping(owner).get("controller") is True:
            return True
    return False


class ObjectRole(Enum):
    """What `evaluate` does with an input object."""

    WORKLOAD = "workload"
    PRODUCTION_SERVICE = "production-service"
    CONTEXT = "context"
    IGNORED = "ignored"


def checked_on_its_own(obj: Mapping[str, Any]) -> bool:
    """Whether a context object gets its own report: an Ingress, an HTTPRoute or GRPCRoute,
    a LoadBalancer Service, a ConfigMap (secrets in its data)."""
    kind = kind_of(obj)
    if kind == "Service":
        return mapping(obj.get("spec")).get("type") == "LoadBalancer"
    return kind in STANDALONE_KINDS


def serves_by_name(port: Mapping[str, Any]) -> bool:
    """A container port whose name or appProtocol says it serves HTTP or gRPC."""
    for key in ("name", "appProtocol"):
        value = port.get(key)
        # `http-metrics` (Loki's, promtail's, many charts') names what is scraped, not served.
        if isinstance(value, str) and "metric" in value.lower():
            return False
        if isinstance(value, str) and _SERVING_PORT_NAME.match(value.lower()):
            return True
    return False


def service_names_of_route(route: Mapping[str, Any]) -> set[str]:
    """The Services a Gateway API route sends traffic to (same namespace backendRefs)."""
    names: set[str] = set()
    for rule in sequence(mapping(route.get("spec")).get("rules")):
        for ref in sequence(mapping(rule).get("backendRefs")):
            backend = mapping(ref)
            if backend.get("kind", "Service") != "Service" or backend.get("group", "") not in (
                "",
                "core",
            ):
                continue
            name = backend.get("name")
            if isinstance(name, str) and name and "namespace" not in backend:
                names.add(name)
    return names


def classify(obj: object) -> ObjectRole:
    """Whether `evaluate` checks `obj`, reads it as context, or ignores it."""
    if not isinstance(obj, Mapping):
        return ObjectRole.IGNORED
    kind = kind_of(obj)
    if kind in WORKLOAD_KINDS:
        if kind == "Pod" and is_controlled_pod(obj):
            return ObjectRole.IGNORED
        return ObjectRole.WORKLOAD
    if kind == PRODUCTION_SERVICE_KIND:
        return ObjectRole.PRODUCTION_SERVICE
    if kind in CONTEXT_KINDS:
        return ObjectRole.CONTEXT
    return ObjectRole.IGNORED


def service_names_of_ingress(ingress: Mapping[str, Any]) -> set[str]:
    spec = mapping(ingress.get("spec"))
    backends: list[Mapping[str, Any]] = []
    for key in ("defaultBackend", "backend"):  # `backend`: networking/v1beta1 spelling
        if key in spec:
            backends.append(mapping(spec.get(key)))
    for rule in sequence(spec.get("rules")):
        for path in sequence(mapping(mapping(rule).get("http")).get("paths")):
            backends.append(mapping(mapping(path).get("backend")))
    names: set[str] = set()
    for backend in backends:
        name = mapping(backend.get("service")).get("name") or backend.get("serviceName")
        if isinstance(name, str) and name:
            names.add(name)
    return names


def reach(obj: Mapping[str, Any]) -> str | None:
    """The one namespace whose objects `obj` can bear on as context, or None for any.

    Mirrors `Context.add`: everything is indexed and looked up by its own namespace but a
    Namespace (policies and custom rules read its labels), a Gateway (a route's parentRef
    may name another namespace), a ServiceMonitor or PodMonitor with a `namespaceSelector`,
    and a ProductionService (its rendered children are context). A run split over processes
    sends each share only the context its namespaces can see (`rules.parallel`).
    """
    kind = kind_of(obj)
    if kind in ("Namespace", "Gateway", PRODUCTION_SERVICE_KIND):
        return None
    if kind in ("ServiceMonitor", "PodMonitor") and mapping(obj.get("spec")).get(
        "namespaceSelector"
    ):
        return None
    return namespace_key(obj)


class Context:
    """The related objects of one `evaluate` run, indexed once."""

    def __init__(self) -> None:
        self.services = SelectorIndex[Mapping[str, Any]](empty_matches_all=False)
        self.disruption_budgets = SelectorIndex[Mapping[str, Any]](empty_matches_all=True)
        self.pod_monitors = SelectorIndex[Mapping[str, Any]](empty_matches_all=True)
        # One ServiceMonitor per application is the norm in a GitOps repository: indexed
        # like the rest, a scan of all of them per Service makes a large run quadratic.
        self.service_monitors = SelectorIndex[Mapping[str, Any]](empty_matches_all=True)
        self.ingresses_by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.routes_by_service: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        self.gateways: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.autoscalers: dict[tuple[str, str, str], Mapping[str, Any]] = {}
        self.prometheus_rules: dict[str, list[Mapping[str, Any]]] = {}
        # Indexes a check derives from the objects above, built on first use and kept for
        # the run (by check and namespace): see rules.checks.monitoring.AlertIndex.
        self.derived: dict[tuple[str, str], object] = {}
        self.secrets: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.absent_secrets: set[tuple[str, str]] = set()
        self.generated_secrets: set[tuple[str, str]] = set()
        self.config_maps: dict[tuple[str, str], Mapping[str, Any]] = {}
        self.namespaces: dict[str, Mapping[str, Any]] = {}

    @classmethod
    def build(cls, objects: Iterable[Mapping[str, Any]]) -> Context:
        """Index the context objects among `objects` (workloads are skipped here)."""
        context = cls()
        for obj in objects:
            context.add(obj)
        return context

    def add(self, obj: Mapping[str, Any]) -> None:
        """Index one object if it is a kind the rules read as context."""
        kind = kind_of(obj)
        if kind not in CONTEXT_KINDS:
            return
        namespace = namespace_key(obj)
        name = name_of(obj)
        spec = mapping(obj.get("spec"))
        if kind == "Service":
            selector = Selector.from_map(spec.get("selector"))
            if selector is not None:
                self.services.add(namespace, selector, obj)
        elif kind == "PodDisruptionBudget":
            selector = Selector.from_label_selector(spec.get("selector"))
            if selector is not None:
                self.disruption_budgets.add(namespace, selector, obj)
        elif kind == "PodMonitor":
            self._add_monitor(obj, namespace, spec, pods=True)
        elif kind == "ServiceMonitor":
            self._add_monitor(obj, namespace, spec, pods=False)
        elif kind == "Ingress":
            for service_name in service_names_of_ingress(obj):
                self.ingresses_by_service.setdefault((namespace, service_name), []).append(obj)
        elif kind in ROUTE_KINDS:
            for service_name in service_names_of_route(obj):
                self.routes_by_service.setdefault((namespace, service_name), []).append(obj)
        elif kind == "Gateway":
            self.gateways[(namespace, name)] = obj
        elif kind == "HorizontalPodAutoscaler":
            target = mapping(spec.get("scaleTargetRef"))
            target_kind, target_name = target.get("kind"), target.get("name")
            if isinstance(target_kind, str) and isinstance(target_name, str):
                self.autoscalers[(namespace, target_kind, target_name)] = obj
        elif kind == "PrometheusRule":
            self.prometheus_rules.setdefault(namespace, []).append(obj)
        elif kind == "Secret":
            annotations = mapping(mapping(obj.get("metadata")).get("annotations"))
            if annotations.get(LOOKED_UP) == LOOKED_UP_ABSENT:
                self.absent_secrets.add((namespace, name))
            else:
                self.secrets[(namespace, name)] = obj
        elif kind in ("ExternalSecret", "SealedSecret"):
            target_name = mapping(spec.get("target")).get("name")
            template_name = mapping(mapping(spec.get("template")).get("metadata")).get("name")
            for candidate in (target_name, template_name, name):
                if isinstance(candidate, str) and candidate:
                    self.generated_secrets.add((namespace, candidate))
                    break
        elif kind == "ConfigMap":
            self.config_maps[(namespace, name)] = obj
        elif kind == "Namespace":
            self.namespaces[name] = obj

    def _add_monitor(
        self, obj: Mapping[str, Any], namespace: str, spec: Mapping[str, Any], *, pods: bool
    ) -> None:
        selector = Selector.from_label_selector(spec.get("selector"))
        if selector is None:
            return
        namespace_selector = mapping(spec.get("namespaceSelector"))
        namespaces: frozenset[str] | None
        if namespace_selector.get("any") is True:
            namespaces = None
        else:
            names = [
                n for n in sequence(namespace_selector.get("matchNames")) if isinstance(n, str)
            ]
            namespaces = frozenset(names) if names else frozenset({namespace})
        index = self.pod_monitors if pods else self.service_monitors
        for target in namespaces if namespaces is not None else (None,):
            index.add(target, selector, obj)

    def service_monitors_for(self, service: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        """ServiceMonitors that select `service`, in input order."""
        return self.service_monitors.match(
            namespace_key(service), labels_of(service.get("metadata"))
        )


@dataclass(slots=True)
class Container:
    """One container of a workload's pod template, with where it lives in the object."""

    index: int
    name: str
    spec: Mapping[str, Any]
    init: bool
    path: str
    pointer: str
    serving: bool = False
    # Read once and kept: most rules read the ports or the env of every container.
    _ports: list[Mapping[str, Any]] | None = None
    _env: list[tuple[int, Mapping[str, Any]]] | None = None
    _env_by_name: dict[str, tuple[int, Mapping[str, Any]]] | None = None

    def ports(self) -> list[Mapping[str, Any]]:
        """The declared container ports."""
        if self._ports is None:
            self._ports = [mapping(p) for p in sequence(self.spec.get("ports"))]
        return self._ports

    def env_entries(self) -> list[tuple[int, Mapping[str, Any]]]:
        """(index, entry) for each well-formed `env` entry (one whose name is a string)."""
        if self._env is None:
            entries = []
            for index, raw in enumerate(sequence(self.spec.get("env"))):
                entry = mapping(raw)
                if isinstance(entry.get("name"), str):
                    entries.append((index, entry))
            self._env = entries
        return self._env

    def env_entry(self, name: str) -> tuple[int, Mapping[str, Any]] | None:
        """The `env` entry defining `name`; the last duplicate wins, as in the kubelet."""
        if self._env_by_name is None:
            self._env_by_name = {entry["name"]: (i, entry) for i, entry in self.env_entries()}
        return self._env_by_name.get(name)


def _pointer(parts: Sequence[str]) -> str:
    return "/" + "/".join(parts)


class Workload:
    """A workload object, its containers and the related objects that select or target it."""

    def __init__(self, obj: Mapping[str, Any], context: Context) -> None:
        self.obj = obj
        self.context = context
        self.kind = kind_of(obj)
        self.ref = ref_of(obj)
        self.namespace = namespace_key(obj)
        self.metadata = mapping(obj.get("metadata"))
        self.spec = mapping(obj.get("spec"))
        # An object checked on its own (an Ingress, a ConfigMap) has no pod template.
        path_parts = _POD_SPEC_PATHS.get(self.kind, ())
        self.pod_path = ".".join(path_parts)
        self.pod_pointer = _pointer(path_parts)
        pod_spec: Mapping[str, Any] = obj
        for part in path_parts:
            pod_spec = mapping(pod_spec.get(part))
        self.pod_spec = pod_spec
        if self.kind == "Pod" or not path_parts:
            self.template_metadata = self.metadata
        else:
            template_parts = path_parts[:-1]
            template: Mapping[str, Any] = obj
            for part in template_parts:
                template = mapping(template.get(part))
            self.template_metadata = mapping(template.get("metadata"))
        self.pod_labels = labels_of(self.template_metadata)
        self.long_running = self.kind in LONG_RUNNING_KINDS
        self.containers = self._containers("containers", init=False)
        self.init_containers = self._containers("initContainers", init=True)
        self.services = (
            context.services.match(self.namespace, self.pod_labels) if self.long_running else []
        )
        self._mark_serving()
        self.autoscaler = context.autoscalers.get((self.namespace, self.kind, self.ref.name))
        self.ingresses = self._routed_by(context.ingresses_by_service)
        self.routes = self._routed_by(context.routes_by_service)
        self.exposed = (
            bool(self.ingresses)
            or bool(self.routes)
            or any(
                mapping(s.get("spec")).get("type") in EXPOSING_SERVICE_TYPES for s in self.services
            )
        )

    def _containers(self, field: str, *, init: bool) -> list[Container]:
        result = []
        for index, raw in enumerate(sequence(self.pod_spec.get(field))):
            spec = mapping(raw)
            name = spec.get("name")
            result.append(
                Container(
                    index=index,
                    name=name if isinstance(name, str) else f"#{index}",
                    spec=spec,
                    init=init,
                    path=f"{self.pod_path}.{field}[{index}]",
                    pointer=f"{self.pod_pointer}/{field}/{index}",
                )
            )
        return result

    def _mark_serving(self) -> None:
        if not self.long_running:
            return
        # The first container declaring a port name or number owns it: indexed once, so a
        # Service with many ports does not scan every container's ports for each of them.
        by_name: dict[object, Container] = {}
        by_number: dict[str, Container] = {}
        for container in self.containers:
            ports = container.ports()
            if any(serves_by_name(port) for port in ports):
                container.serving = True
            for port in ports:
                by_name.setdefault(port.get("name"), container)
                by_number.setdefault(str(port.get("containerPort")), container)
        for service in self.services:
            for raw_port in sequence(mapping(service.get("spec")).get("ports")):
                port = mapping(raw_port)
                target = port.get("targetPort", port.get("port"))
                if isinstance(target, str) and not target.isdigit():
                    owner = by_name.get(target)
                else:
                    owner = by_number.get(str(target))
                if owner is not None:
                    owner.serving = True
                elif self.containers:
                    self.containers[0].serving = True

    def _routed_by(
        self, index: Mapping[tuple[str, str], list[Mapping[str, Any]]]
    ) -> list[Mapping[str, Any]]:
        found: list[Mapping[str, Any]] = []
        for service in self.services:
            for router in index.get((self.namespace, name_of(service)), ()):
                if not any(router is seen for seen in found):
                    found.append(router)
        return found

    @property
    def all_containers(self) -> list[Container]:
        """Init containers first (the order the kubelet starts them), then app containers."""
        return [*self.init_containers, *self.containers]

    @property
    def serving_containers(self) -> list[Container]:
        """The app containers that serve traffic (see the module docstring)."""
        return [c for c in self.containers if c.serving]

    @property
    def replicas(self) -> int:
        """Desired replicas: the HPA's `minReplicas` when an HPA targets this workload."""
        if self.autoscaler is not None:
            minimum = mapping(self.autoscaler.get("spec")).get("minReplicas", 1)
            return minimum if isinstance(minimum, int) else 1
        replicas = self.spec.get("replicas", 1)
        return replicas if isinstance(replicas, int) else 1

"""What is exposed outside the cluster, checked on its own: PR-SC-006, PR-SC-007, PR-CF-004.

An Ingress or a Gateway API route is judged by itself (a file holding only an Ingress is
checked, not reported as "no workloads"); so is a LoadBalancer Service, and a ConfigMap,
whose data is readable by anyone who may read ConfigMaps. PR-SC-001 still reports, on the
workload, every route to it that is not TLS.

TLS of a Gateway API route is the Gateway's: its listeners' protocols decide. When the
Gateway is not in the input the route passes, and the message says where TLS is decided.
A route whose every rule redirects to https (a RequestRedirect filter) is the HTTPS
redirect, not plain traffic.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.context import (
    Context,
    kind_of,
    mapping,
    name_of,
    namespace_key,
    sequence,
    service_names_of_ingress,
)
from prodready.rules.secrets import secret_kind
from prodready.rules.subject import Outcome, Subject, failed, passed

NGINX = "nginx.ingress.kubernetes.io/"
_TLS_PROTOCOLS = frozenset({"HTTPS", "TLS"})
_OPEN_RANGES = frozenset({"0.0.0.0/0", "::/0"})
_SOURCE_RANGES_ANNOTATION = "service.beta.kubernetes.io/load-balancer-source-ranges"
# Annotations by which clouds make a LoadBalancer internal (a private address only).
_INTERNAL_ANNOTATIONS: dict[str, frozenset[str]] = {
    "service.beta.kubernetes.io/aws-load-balancer-internal": frozenset({"true", "0.0.0.0/0"}),
    "service.beta.kubernetes.io/aws-load-balancer-scheme": frozenset({"internal"}),
    "service.beta.kubernetes.io/azure-load-balancer-internal": frozenset({"true"}),
    "networking.gke.io/load-balancer-type": frozenset({"internal"}),
    "cloud.google.com/load-balancer-type": frozenset({"internal"}),
    "service.beta.kubernetes.io/oci-load-balancer-internal": frozenset({"true"}),
    "service.beta.kubernetes.io/openstack-internal-load-balancer": frozenset({"true"}),
}


def annotations_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The object's annotations (empty when absent or malformed)."""
    return mapping(mapping(obj.get("metadata")).get("annotations"))


def _host_covered(host: str, tls_hosts: list[str]) -> bool:
    return any(host == pattern or fnmatch.fnmatchcase(host, pattern) for pattern in tls_hosts)


def ingress_tls_problems(ingress: Mapping[str, Any], services: set[str]) -> list[str]:
    """Why `ingress` does not serve the hosts routing to `services` over TLS only."""
    name = name_of(ingress)
    spec = mapping(ingress.get("spec"))
    tls = [mapping(t) for t in sequence(spec.get("tls"))]
    if not tls:
        return [f"Ingress {name} has no tls section"]
    problems = []
    if any(not sequence(t.get("hosts")) for t in tls):
        tls_hosts = ["*"]  # a tls entry without hosts covers every host with its certificate
    else:
        tls_hosts = [str(h) for t in tls for h in sequence(t.get("hosts"))]
    for raw_rule in sequence(spec.get("rules")):
        rule = mapping(raw_rule)
        routes_here = any(
            mapping(mapping(mapping(p).get("backend")).get("service")).get("name") in services
            or mapping(mapping(p).get("backend")).get("serviceName") in services
            for p in sequence(mapping(rule.get("http")).get("paths"))
        )
        host = rule.get("host")
        if routes_here and isinstance(host, str) and not _host_covered(host, tls_hosts):
            problems.append(f"Ingress {name} serves {host} without TLS")
    if str(annotations_of(ingress).get(f"{NGINX}ssl-redirect", "")).lower() == "false":
        problems.append(f"Ingress {name} turns off the HTTPS redirect")
    return problems


def _redirects_to_https(route: Mapping[str, Any]) -> bool:
    rules = [mapping(r) for r in sequence(mapping(route.get("spec")).get("rules"))]
    if not rules:
        return False
    for rule in rules:
        filters = [mapping(f) for f in sequence(rule.get("filters"))]
        if not any(mapping(f.get("requestRedirect")).get("scheme") == "https" for f in filters):
            return False
    return True


def route_tls_problems(route: Mapping[str, Any], context: Context) -> list[str]:
    """Why a Gateway API route carries plain traffic (its Gateways' listeners), if it does."""
    if _redirects_to_https(route):
        return []
    kind, name = kind_of(route), name_of(route)
    problems: list[str] = []
    for raw_parent in sequence(mapping(route.get("spec")).get("parentRefs")):
        parent = mapping(raw_parent)
        if parent.get("kind", "Gateway") != "Gateway":
            continue
        namespace = parent.get("namespace") or namespace_key(route)
        gateway = context.gateways.get((str(namespace), str(parent.get("name"))))
        if gateway is None:
            continue
        section = parent.get("sectionName")
        port = parent.get("port")
        for raw_listener in sequence(mapping(gateway.get("spec")).get("listeners")):
            listener = mapping(raw_listener)
            if section is not None and listener.get("name") != section:
                continue
            if port is not None and listener.get("port") != port:
                continue
            protocol = str(listener.get("protocol", "")).upper()
            if protocol not in _TLS_PROTOCOLS:
                problems.append(
                    f"{kind} {name} is attached to {protocol or 'a plain'} listener "
                    f"{listener.get('name')} of Gateway {parent.get('name')}"
                )
    return problems


def route_tls(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-006: an Ingress or Gateway API route serves its hosts over TLS only."""
    obj = subject.workload.obj
    kind = subject.workload.kind
    if kind == "Ingress":
        problems = ingress_tls_problems(obj, service_names_of_ingress(obj))
        path = "spec.tls"
    else:
        problems = route_tls_problems(obj, subject.workload.context)
        path = "spec.parentRefs"
        if not problems:
            gateways = [
                str(mapping(p).get("name"))
                for p in sequence(mapping(obj.get("spec")).get("parentRefs"))
                if (
                    str(mapping(p).get("namespace") or subject.workload.namespace),
                    str(mapping(p).get("name")),
                )
                not in subject.workload.context.gateways
            ]
            if gateways:
                yield passed(
                    path,
                    f"TLS is decided by the listeners of Gateway {', '.join(gateways)}, which "
                    "is not in the input",
                )
                return
    if problems:
        yield failed(path, "; ".join(problems))
    else:
        yield passed(path, f"{kind} {subject.workload.ref.name} serves over TLS only")


def _internal(annotations: Mapping[str, Any]) -> bool:
    return any(
        str(annotations.get(key, "")).strip().lower() in values
        for key, values in _INTERNAL_ANNOTATIONS.items()
    )


def _ranges(value: object) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(item).strip() for item in sequence(value)]


def load_balancer_source_ranges(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-007: a LoadBalancer Service is internal or allows only listed source ranges."""
    service = subject.workload.obj
    spec = mapping(service.get("spec"))
    if spec.get("type") != "LoadBalancer":
        return
    annotations = annotations_of(service)
    name = subject.workload.ref.name
    if _internal(annotations):
        yield passed("metadata.annotations", f"LoadBalancer Service {name} is internal")
        return
    ranges = _ranges(spec.get("loadBalancerSourceRanges")) or _ranges(
        annotations.get(_SOURCE_RANGES_ANNOTATION)
    )
    if not ranges:
        yield failed(
            "spec.loadBalancerSourceRanges",
            f"LoadBalancer Service {name} accepts connections from any address (no "
            "loadBalancerSourceRanges and no internal load balancer annotation)",
        )
    elif _OPEN_RANGES & set(ranges):
        yield failed(
            "spec.loadBalancerSourceRanges",
            f"LoadBalancer Service {name} lists an open source range "
            f"({', '.join(sorted(_OPEN_RANGES & set(ranges)))})",
        )
    else:
        yield passed(
            "spec.loadBalancerSourceRanges",
            f"LoadBalancer Service {name} allows only {len(ranges)} source range(s)",
        )


def config_map_secrets(subject: Subject) -> Iterator[Outcome]:
    """PR-CF-004: a ConfigMap holds no secret (named like one, or shaped like one)."""
    settings = subject.settings
    data = mapping(subject.workload.obj.get("data"))
    problems: list[tuple[str, str]] = []
    for key, raw in data.items():
        if not isinstance(raw, str):
            continue
        value = raw.strip()
        # A file (several lines) under a sensitive-looking key is judged by its content.
        if "\n" in value:
            kind = secret_kind(value)
            reason = None if kind is None else f"{key} holds a literal {kind}"
        else:
            reason = settings.secret_reason(str(key), _unplaceholdered(value))
        if reason is not None:
            problems.append((f"data.{key}", reason))
    name = subject.workload.ref.name
    if problems:
        yield failed(
            problems[0][0],
            f"ConfigMap {name}: " + "; ".join(reason for _, reason in problems),
        )
    else:
        yield passed("data", f"ConfigMap {name} holds no secret-looking value")


def _unplaceholdered(value: str) -> str:
    """'' for a value that only points elsewhere: a `${VAR}`/`{{ }}` placeholder or a path."""
    if value.startswith(("${", "{{", "/", "$(")) and " " not in value:
        return ""
    return value

"""Seed sections 6 and 8, security: PR-SC-001 … PR-SC-005."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from prodready.rules.checks.conventions import third_party
from prodready.rules.checks.exposure import (
    NGINX,
    annotations_of,
    ingress_tls_problems,
    route_tls_problems,
)
from prodready.rules.context import Container, mapping, sequence
from prodready.rules.envvars import ValueState
from prodready.rules.model import JsonPatch
from prodready.rules.subject import Outcome, Subject, failed, passed

# Ingress annotations by which peers (ingress-nginx, HAProxy, Traefik) configure limits.
_RATE_LIMIT_ANNOTATIONS = (
    f"{NGINX}limit-rps",
    f"{NGINX}limit-rpm",
    f"{NGINX}limit-connections",
    f"{NGINX}global-rate-limit",
    "haproxy.org/rate-limit-requests",
)
_TRAEFIK_MIDDLEWARES = "traefik.ingress.kubernetes.io/router.middlewares"
_TLS_PORTS = frozenset({443, 8443})
_TLS_PORT_NAMES = frozenset({"https", "tls", "grpcs", "h2", "wss"})
_DISABLED = frozenset({"", "0", "off", "false", "no", "none", "disabled", "unlimited"})


def _service_tls_problems(service: Mapping[str, Any]) -> list[str]:
    spec = mapping(service.get("spec"))
    if spec.get("type") not in ("LoadBalancer", "NodePort"):
        return []
    if any("ssl-cert" in key or "certificate" in key for key in annotations_of(service)):
        return []  # TLS terminates at the cloud load balancer
    name = mapping(service.get("metadata")).get("name")
    plain = []
    for raw_port in sequence(spec.get("ports")):
        port = mapping(raw_port)
        names = {str(port.get("name", "")).lower(), str(port.get("appProtocol", "")).lower()}
        if port.get("port") not in _TLS_PORTS and not names & _TLS_PORT_NAMES:
            plain.append(str(port.get("port")))
    if plain:
        return [f"{spec.get('type')} Service {name} exposes plain port(s) {', '.join(plain)}"]
    return []


def tls_only(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-001: an exposed workload in prod is served over TLS only."""
    workload = subject.workload
    if not workload.exposed:
        return
    service_names = {str(mapping(s.get("metadata")).get("name")) for s in workload.services}
    problems: list[str] = []
    for service in workload.services:
        problems.extend(_service_tls_problems(service))
    for ingress in workload.ingresses:
        problems.extend(ingress_tls_problems(ingress, service_names))
    for route in workload.routes:
        problems.extend(route_tls_problems(route, workload.context))
    if problems:
        # Two Services of one name (alternative manifests side by side) say it once.
        yield failed("metadata", "; ".join(dict.fromkeys(problems)))
    else:
        yield passed("metadata", "every route to the workload uses TLS")


def _origins(value: str) -> list[str]:
    text = value.strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(item).strip() for item in parsed]
    return [part.strip() for part in text.replace(" ", ",").split(",") if part.strip()]


def _edge_cors(subject: Subject) -> tuple[bool, str | None]:
    """(every route sets CORS at the Ingress, a wildcard Ingress name if one allows `*`)."""
    ingresses = subject.workload.ingresses
    configured = bool(ingresses)
    for ingress in ingresses:
        annotations = annotations_of(ingress)
        if str(annotations.get(f"{NGINX}enable-cors", "")).lower() != "true":
            configured = False
            continue
        # ingress-nginx allows every origin when cors-allow-origin is not given.
        origin = str(annotations.get(f"{NGINX}cors-allow-origin", "*"))
        if "*" in _origins(origin):
            return False, str(mapping(ingress.get("metadata")).get("name"))
    return configured, None


def cors_origins(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-002: CORS allowed origins are set and not `*` in prod, for an exposed workload
    (a browser reaches only what is exposed outside the cluster)."""
    if not subject.workload.exposed:
        return
    name = subject.settings.cors_allowed_origins
    edge, wildcard_ingress = _edge_cors(subject)
    for container in subject.workload.serving_containers:
        if wildcard_ingress is None:
            note = third_party(subject, container, name)
            if note is not None:
                yield note
                continue
        value = subject.env(container, name)
        where = (
            f"{container.path}.env[{value.env_index}]"
            if value.env_index is not None
            else f"{container.path}.env"
        )
        if wildcard_ingress is not None:
            yield failed(
                "metadata", f"Ingress {wildcard_ingress} allows CORS from any origin", container
            )
        elif value.state is ValueState.LITERAL and "*" in _origins(value.value or ""):
            yield failed(where, f"container {container.name}: {name} allows any origin", container)
        elif value.state is ValueState.LITERAL or value.state is ValueState.UNKNOWN or edge:
            yield passed(
                where, f"container {container.name}: CORS origins are restricted", container
            )
        else:
            yield failed(where, f"container {container.name}: {name} is not set", container)


def _edge_rate_limited(subject: Subject) -> bool:
    workload = subject.workload
    if not workload.ingresses:
        return False
    if any(
        mapping(s.get("spec")).get("type") in ("LoadBalancer", "NodePort")
        for s in workload.services
    ):
        return False  # traffic can bypass the Ingress
    for ingress in workload.ingresses:
        annotations = annotations_of(ingress)
        limited = any(annotations.get(key) for key in _RATE_LIMIT_ANNOTATIONS) or any(
            marker in str(annotations.get(_TRAEFIK_MIDDLEWARES, "")).lower()
            for marker in ("ratelimit", "rate-limit")
        )
        if not limited:
            return False
    return True


def rate_limited(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-003: an exposed workload has rate limiting configured."""
    workload = subject.workload
    if not workload.exposed:
        return
    name = subject.settings.rate_limit
    edge = _edge_rate_limited(subject)
    for container in workload.serving_containers:
        value = subject.env(container, name)
        where = f"{container.path}.env"
        if not edge and third_party(subject, container, name) is not None:
            yield failed(
                where,
                f"container {container.name} is exposed, its image is third-party (so {name} "
                "is not read) and no Ingress in front of it limits requests",
                container,
            )
        elif edge:
            yield passed("metadata", "every Ingress route is rate limited", container)
        elif value.state is ValueState.UNKNOWN or (
            value.state is ValueState.LITERAL
            and (value.value or "").strip().lower() not in _DISABLED
        ):
            yield passed(where, f"container {container.name}: {name} is set", container)
        else:
            shown = "not set" if value.state is ValueState.MISSING else "disabled"
            yield failed(
                where,
                f"container {container.name} is exposed and {name} is {shown}, "
                "and no Ingress in front of it limits requests",
                container,
            )


def _runs_as_non_root(pod: Mapping[str, Any], context: Mapping[str, Any]) -> bool | None:
    """True/False when decidable; None for `runAsUser: 0` (root, no safe automatic fix)."""
    user = context.get("runAsUser", pod.get("runAsUser"))
    if user == 0:
        return None
    non_root = context.get("runAsNonRoot", pod.get("runAsNonRoot"))
    if non_root is True:
        return True
    return isinstance(user, int) and user > 0 and non_root is not False


def _security_patch(container: Container, missing: dict[str, Any]) -> JsonPatch:
    context = container.spec.get("securityContext")
    base = f"{container.pointer}/securityContext"
    if not isinstance(context, Mapping):
        return [{"op": "add", "path": base, "value": missing}]
    patch: JsonPatch = []
    for key, value in missing.items():
        if key != "capabilities":
            patch.append({"op": "add", "path": f"{base}/{key}", "value": value})
            continue
        capabilities = context.get("capabilities")
        if not isinstance(capabilities, Mapping):
            patch.append({"op": "add", "path": f"{base}/capabilities", "value": value})
        elif isinstance(capabilities.get("drop"), list):
            patch.append({"op": "add", "path": f"{base}/capabilities/drop/-", "value": "ALL"})
        else:
            patch.append({"op": "add", "path": f"{base}/capabilities/drop", "value": ["ALL"]})
    return patch


def hardened_security_context(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-004: non-root, no privilege escalation, read-only root fs, all caps dropped."""
    pod = mapping(subject.workload.pod_spec.get("securityContext"))
    for container in subject.workload.all_containers:
        context = mapping(container.spec.get("securityContext"))
        problems: list[str] = []
        missing: dict[str, Any] = {}
        fixable = True
        non_root = _runs_as_non_root(pod, context)
        if non_root is None:
            problems.append("runs as root (runAsUser 0)")
            fixable = False
        elif not non_root:
            problems.append("may run as root")
            missing["runAsNonRoot"] = True
        if context.get("privileged") is True:
            problems.append("is privileged")
            missing["privileged"] = False
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append("allows privilege escalation")
            missing["allowPrivilegeEscalation"] = False
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append("has a writable root filesystem")
            missing["readOnlyRootFilesystem"] = True
        drop = [str(c).upper() for c in sequence(mapping(context.get("capabilities")).get("drop"))]
        if "ALL" not in drop:
            problems.append("keeps Linux capabilities")
            missing["capabilities"] = {"drop": ["ALL"]}
        path = f"{container.path}.securityContext"
        if not problems:
            yield passed(path, f"container {container.name} runs hardened", container)
            continue
        patch = _security_patch(container, missing) if fixable and not subject.rendered else None
        yield failed(path, f"container {container.name} " + ", ".join(problems), container, patch)


def split_image(image: str) -> tuple[str | None, str | None]:
    """(tag, digest) of an image reference; either may be None."""
    reference, _, digest = image.partition("@")
    last = reference.rsplit("/", 1)[-1]
    tag = last.partition(":")[2] if ":" in last else None
    return tag or None, digest or None


def pinned_images(subject: Subject) -> Iterator[Outcome]:
    """PR-SC-005: images are pinned (no `latest`, no missing tag; digest preferred in prod)."""
    for container in subject.workload.all_containers:
        path = f"{container.path}.image"
        image = container.spec.get("image")
        if not isinstance(image, str) or not image.strip():
            yield failed(path, f"container {container.name} names no image", container)
            continue
        tag, digest = split_image(image.strip())
        if digest is not None:
            yield passed(path, f"container {container.name} image is pinned by digest", container)
        elif tag is None or tag == "latest":
            what = "has no tag (so it means latest)" if tag is None else "uses the latest tag"
            yield failed(path, f"container {container.name}: image {image} {what}", container)
        else:
            note = "; in prod a digest (@sha256:…) is preferred" if subject.prod else ""
            yield passed(
                path, f"container {container.name} image is pinned to tag {tag}{note}", container
            )

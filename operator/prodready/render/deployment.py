"""The Deployment: production-ready by construction.

Every checklist item the pod spec can carry is rendered here: HTTP liveness, readiness
and startup probes on the health endpoint (PR-HC-*), a termination grace period and a
preStop drain (PR-GS-001/002), a surge-only rolling update in prod (PR-GS-003), settings
as environment variables (PR-LG-001/002, PR-ER-001, PR-SC-002/003, PR-CF-003), secrets
only by reference (PR-CF-001), a locked-down security context (PR-SC-004) and resources
(PR-RS-001).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from prodready.api.labels import (
    ANNOTATION_CONFIG_CHECKSUM,
    ANNOTATION_DEPENDENCIES,
    ANNOTATION_EXEMPT,
    ANNOTATION_EXEMPT_REASON,
    LABEL_COMPONENT,
    LABEL_ENVIRONMENT,
    LABEL_SERVICE,
    LABEL_VERSION,
)
from prodready.api.models import Environment, ProductionService
from prodready.render.metadata import (
    CONTAINER_NAME,
    HTTP_PORT_NAME,
    METRICS_PORT_NAME,
    metrics_port as metrics_port_of,
    object_metadata,
    selector_labels,
    workload_labels,
)

TMP_VOLUME: Final = "tmp"


def settings_env(ps: ProductionService) -> list[dict[str, str]]:
    """The settings prodready passes as variables, in a fixed order.

    CORS origins and the rate limit are left unset when not declared, so the rules engine
    (and the app) see "not configured" rather than an empty value.
    """
    spec = ps.spec
    env = [
        {"name": spec.environment_variable, "value": spec.environment.value},
        {"name": spec.logging.format_variable, "value": spec.logging.format.value},
        {"name": spec.logging.level_variable, "value": spec.logging.level.value},
        {"name": spec.security.debug_variable, "value": "true" if spec.security.debug else "false"},
    ]
    if spec.security.cors_allowed_origins:
        origins = ",".join(spec.security.cors_allowed_origins)
        env.append({"name": spec.security.cors_variable, "value": origins})
    if spec.security.rate_limit is not None:
        env.append({"name": spec.security.rate_limit_variable, "value": spec.security.rate_limit})
    return env


def container_env(ps: ProductionService) -> list[dict[str, Any]]:
    """Settings first (so user variables may refer to them as $(NAME)), then env, then secrets."""
    env: list[dict[str, Any]] = list(settings_env(ps))
    env.extend({"name": variable.name, "value": variable.value} for variable in ps.spec.env)
    for secret in ps.spec.secret_env:
        reference: dict[str, Any] = {"name": secret.secret_name, "key": secret.key}
        if secret.optional:
            reference["optional"] = True
        env.append({"name": secret.name, "valueFrom": {"secretKeyRef": reference}})
    return env


def container_env_from(ps: ProductionService) -> list[dict[str, Any]]:
    """Whole Secrets as variables (envFrom secretRef)."""
    sources: list[dict[str, Any]] = []
    for source in ps.spec.env_from_secrets:
        reference: dict[str, Any] = {"name": source.secret_name}
        if source.optional:
            reference["optional"] = True
        entry: dict[str, Any] = {"secretRef": reference}
        if source.prefix:
            entry["prefix"] = source.prefix
        sources.append(entry)
    return sources


def config_checksum(
    env: list[dict[str, Any]],
    env_from: list[dict[str, Any]],
    secret_versions: Mapping[str, str],
) -> str:
    """A digest of the container's configuration inputs, never of secret values.

    The variables are in the pod template already, so changing them rolls the pods on
    its own; what the digest adds is the resourceVersion of each Secret the pods read,
    when the controller passes them: rotating a Secret then rolls the pods too.
    """
    document = {
        "env": env,
        "envFrom": env_from,
        "secretVersions": dict(sorted(secret_versions.items())),
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _probe_port(ps: ProductionService) -> str | int:
    port = ps.spec.health.port or ps.spec.ports.http
    if port == ps.spec.ports.http:
        return HTTP_PORT_NAME
    if port == metrics_port_of(ps):
        return METRICS_PORT_NAME
    return port


def _http_get(path: str, port: str | int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port, "scheme": "HTTP"}}


def probes(ps: ProductionService) -> dict[str, Any]:
    """livenessProbe, readinessProbe and (unless disabled) startupProbe of the container."""
    health = ps.spec.health
    port = _probe_port(ps)
    liveness = health.liveness
    readiness = health.readiness
    rendered: dict[str, Any] = {
        "livenessProbe": {
            **_http_get(liveness.path or health.path, port),
            "initialDelaySeconds": liveness.initial_delay_seconds,
            "periodSeconds": liveness.period_seconds,
            "timeoutSeconds": liveness.timeout_seconds,
            "failureThreshold": liveness.failure_threshold,
        },
        "readinessProbe": {
            **_http_get(health.path, port),
            "initialDelaySeconds": readiness.initial_delay_seconds,
            "periodSeconds": readiness.period_seconds,
            "timeoutSeconds": readiness.timeout_seconds,
            "failureThreshold": readiness.failure_threshold,
        },
    }
    if health.startup.enabled:
        # Startup uses the liveness endpoint: it answers "has the process come up", and
        # must not wait for dependencies that readiness is there to track.
        rendered["startupProbe"] = {
            **_http_get(liveness.path or health.path, port),
            "periodSeconds": health.startup.period_seconds,
            "timeoutSeconds": health.startup.timeout_seconds,
            "failureThreshold": health.startup.failure_threshold,
        }
    return rendered


def container_ports(ps: ProductionService) -> list[dict[str, Any]]:
    """The HTTP port, and the metrics port when it is a different one."""
    ports = [{"name": HTTP_PORT_NAME, "containerPort": ps.spec.ports.http, "protocol": "TCP"}]
    metrics = metrics_port_of(ps)
    if metrics != ps.spec.ports.http:
        ports.append({"name": METRICS_PORT_NAME, "containerPort": metrics, "protocol": "TCP"})
    return ports


def container_resources(ps: ProductionService) -> dict[str, Any]:
    """requests cpu/memory and limits memory (cpu only when declared)."""
    resources = ps.spec.resources
    limits = {"memory": resources.limits.memory}
    if resources.limits.cpu is not None:
        limits["cpu"] = resources.limits.cpu
    return {
        "requests": {"cpu": resources.requests.cpu, "memory": resources.requests.memory},
        "limits": limits,
    }


def _container(
    ps: ProductionService, env: list[dict[str, Any]], env_from: list[dict[str, Any]]
) -> dict[str, Any]:
    spec = ps.spec
    container: dict[str, Any] = {"name": CONTAINER_NAME, "image": spec.image}
    if spec.command:
        container["command"] = list(spec.command)
    if spec.args:
        container["args"] = list(spec.args)
    container["ports"] = container_ports(ps)
    container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    container["resources"] = container_resources(ps)
    container.update(probes(ps))
    if spec.shutdown.pre_stop_delay_seconds > 0:
        # The kubelet's own sleep action: it needs no shell or `sleep` binary in the image,
        # so it works with distroless images and a read-only root filesystem.
        container["lifecycle"] = {
            "preStop": {"sleep": {"seconds": spec.shutdown.pre_stop_delay_seconds}}
        }
    security: dict[str, Any] = {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    if spec.pod.run_as_user is not None:
        security["runAsUser"] = spec.pod.run_as_user
    if spec.pod.run_as_group is not None:
        security["runAsGroup"] = spec.pod.run_as_group
    container["securityContext"] = security
    container["volumeMounts"] = [{"name": TMP_VOLUME, "mountPath": "/tmp"}]  # noqa: S108
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return container


def _exemption_annotations(ps: ProductionService) -> dict[str, str]:
    """The owner's exemption annotations, merged with spec.exemptions (sorted by rule)."""
    annotations = ps.metadata.annotations
    rules = [r.strip() for r in annotations.get(ANNOTATION_EXEMPT, "").split(",") if r.strip()]
    reasons = (
        [annotations[ANNOTATION_EXEMPT_REASON]] if annotations.get(ANNOTATION_EXEMPT_REASON) else []
    )
    for exemption in sorted(ps.spec.exemptions, key=lambda e: e.rule):
        if exemption.rule not in rules:
            rules.append(exemption.rule)
        reasons.append(f"{exemption.rule}: {exemption.reason}")
    if not rules:
        return {}
    merged = {ANNOTATION_EXEMPT: ",".join(rules)}
    if reasons:
        merged[ANNOTATION_EXEMPT_REASON] = "; ".join(reasons)
    return merged


def _strategy(ps: ProductionService) -> dict[str, Any]:
    if ps.spec.environment is Environment.PROD:
        # Never below desired capacity during a rollout (PR-GS-003): surge one pod first.
        rolling: dict[str, int | str] = {"maxUnavailable": 0, "maxSurge": 1}
    else:
        rolling = {"maxUnavailable": "25%", "maxSurge": "25%"}
    return {"type": "RollingUpdate", "rollingUpdate": rolling}


def _pod_labels(ps: ProductionService) -> dict[str, str]:
    labels = dict(ps.spec.pod.labels)
    workload = workload_labels(ps)
    for key in (*selector_labels(ps.name), LABEL_COMPONENT, LABEL_SERVICE, LABEL_ENVIRONMENT):
        labels[key] = workload[key]
    if LABEL_VERSION in workload:
        labels[LABEL_VERSION] = workload[LABEL_VERSION]
    return labels


def _pod_annotations(ps: ProductionService, checksum: str) -> dict[str, str]:
    annotations: dict[str, str] = {"kubectl.kubernetes.io/default-container": CONTAINER_NAME}
    metrics = ps.spec.metrics
    if metrics.enabled:
        # Scrape annotations too, for Prometheus set-ups without the ServiceMonitor CRD;
        # prometheus-operator ignores them. The team's own annotations may override them.
        annotations["prometheus.io/scrape"] = "true"
        annotations["prometheus.io/port"] = str(metrics_port_of(ps))
        annotations["prometheus.io/path"] = metrics.path
    annotations.update(ps.spec.pod.annotations)
    annotations[ANNOTATION_CONFIG_CHECKSUM] = checksum
    return annotations


def _pod_spec(ps: ProductionService, container: dict[str, Any]) -> dict[str, Any]:
    spec = ps.spec
    pod = spec.pod
    pod_spec: dict[str, Any] = {}
    if pod.service_account_name:
        pod_spec["serviceAccountName"] = pod.service_account_name
    pod_spec["automountServiceAccountToken"] = pod.automount_service_account_token
    if pod.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in pod.image_pull_secrets]
    if pod.node_selector:
        pod_spec["nodeSelector"] = dict(pod.node_selector)
    if pod.tolerations:
        pod_spec["tolerations"] = [
            toleration.model_dump(by_alias=True, exclude_none=True)
            for toleration in pod.tolerations
        ]
    pod_spec["terminationGracePeriodSeconds"] = spec.shutdown.grace_period_seconds
    pod_spec["securityContext"] = {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if spec.effective_min_replicas() >= 2:
        # Spread replicas over nodes when possible, so one node going away does not take
        # the whole service with it; ScheduleAnyway keeps single-node clusters working.
        pod_spec["topologySpreadConstraints"] = [
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": {"matchLabels": selector_labels(ps.name)},
            }
        ]
    pod_spec["containers"] = [container]
    pod_spec["volumes"] = [{"name": TMP_VOLUME, "emptyDir": {"sizeLimit": pod.tmp_size_limit}}]
    return pod_spec


def render_deployment(
    ps: ProductionService, *, secret_versions: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The apps/v1 Deployment of a ProductionService.

    `secret_versions` maps Secret names to their resourceVersion (from the controller's
    metadata-only reads); only those the pods read feed the config checksum.
    """
    env = container_env(ps)
    env_from = container_env_from(ps)
    read_by_pods = {s.secret_name for s in ps.spec.secret_env} | {
        s.secret_name for s in ps.spec.env_from_secrets
    }
    versions = {k: v for k, v in (secret_versions or {}).items() if k in read_by_pods}
    checksum = config_checksum(env, env_from, versions)

    annotations = _exemption_annotations(ps)
    if ps.spec.health.dependencies:
        dependencies = [{"name": d.name, "type": d.type.value} for d in ps.spec.health.dependencies]
        annotations[ANNOTATION_DEPENDENCIES] = json.dumps(dependencies, separators=(",", ":"))

    spec: dict[str, Any] = {}
    if ps.spec.autoscaling is None:
        # With autoscaling the HPA owns the replica count; a value here would fight it
        # on every apply.
        spec["replicas"] = ps.spec.replicas
    spec["selector"] = {"matchLabels": selector_labels(ps.name)}
    spec["strategy"] = _strategy(ps)
    spec["revisionHistoryLimit"] = 10
    spec["template"] = {
        "metadata": {
            "labels": _pod_labels(ps),
            "annotations": _pod_annotations(ps, checksum),
        },
        "spec": _pod_spec(ps, _container(ps, env, env_from)),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_metadata(ps, workload_labels(ps), annotations),
        "spec": spec,
    }

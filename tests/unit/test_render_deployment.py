"""The Deployment: probes, shutdown, rollout, security, settings, secrets, labels."""

from __future__ import annotations

from typing import Any

import pytest

from prodready.api import API_VERSION, KIND, SpecError, parse_production_service
from prodready.render import render
from prodready.render.deployment import config_checksum, render_deployment


def service(name: str = "api", **spec: Any) -> dict[str, Any]:
    """A ProductionService dict with `spec` overrides."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"image": "ghcr.io/example/api:1.4.2", "environment": "prod", **spec},
    }


def deployment(obj: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    return render_deployment(parse_production_service(obj), **kwargs)


def container(obj: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment(obj)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def env_of(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        entry["name"]: entry.get("value", entry.get("valueFrom")) for entry in container(obj)["env"]
    }


def test_probes_follow_the_checklist() -> None:
    app = container(service())
    assert app["livenessProbe"] == {
        "httpGet": {"path": "/health", "port": "http", "scheme": "HTTP"},
        "initialDelaySeconds": 10,
        "periodSeconds": 30,
        "timeoutSeconds": 5,
        "failureThreshold": 3,
    }
    assert app["readinessProbe"]["httpGet"]["path"] == "/health"
    assert (
        app["readinessProbe"]["initialDelaySeconds"],
        app["readinessProbe"]["periodSeconds"],
    ) == (5, 10)
    assert app["startupProbe"]["failureThreshold"] == 30
    assert app["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_liveness_may_use_a_dependency_free_path() -> None:
    app = container(service(health={"path": "/health", "liveness": {"path": "/health/live"}}))
    assert app["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert app["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert app["readinessProbe"]["httpGet"]["path"] == "/health"


def test_startup_probe_can_be_turned_off() -> None:
    assert "startupProbe" not in container(service(health={"startup": {"enabled": False}}))


@pytest.mark.parametrize(
    ("ports", "health_port", "expected"),
    [
        ({"http": 8080}, None, "http"),
        ({"http": 8080, "metrics": 9090}, 9090, "metrics"),
        ({"http": 8080}, 8081, 8081),
    ],
)
def test_probe_port(ports: dict[str, int], health_port: int | None, expected: str | int) -> None:
    health: dict[str, Any] = {} if health_port is None else {"port": health_port}
    app = container(service(ports=ports, health=health))
    assert app["livenessProbe"]["httpGet"]["port"] == expected


def test_separate_metrics_port_is_declared() -> None:
    app = container(service(ports={"http": 8000, "metrics": 9100}))
    assert [port["name"] for port in app["ports"]] == ["http", "metrics"]
    annotations = deployment(service(ports={"http": 8000, "metrics": 9100}))["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert annotations["prometheus.io/port"] == "9100"


def test_graceful_shutdown() -> None:
    rendered = deployment(service(shutdown={"gracePeriodSeconds": 45, "preStopDelaySeconds": 10}))
    pod = rendered["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == 45
    assert pod["containers"][0]["lifecycle"] == {"preStop": {"sleep": {"seconds": 10}}}
    assert "lifecycle" not in container(service(shutdown={"preStopDelaySeconds": 0}))


def test_rollout_never_drops_capacity_in_prod() -> None:
    strategy = deployment(service())["spec"]["strategy"]
    assert strategy == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    dev = deployment(service(environment="dev"))["spec"]["strategy"]["rollingUpdate"]
    assert dev == {"maxUnavailable": "25%", "maxSurge": "25%"}


def test_security_context_is_locked_down() -> None:
    rendered = deployment(service(pod={"runAsUser": 10001, "runAsGroup": 10001}))
    pod = rendered["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    app = pod["containers"][0]
    assert app["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "runAsUser": 10001,
        "runAsGroup": 10001,
    }
    assert app["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "128Mi"}}]


def test_resources() -> None:
    assert container(service())["resources"] == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"memory": "256Mi"},
    }
    limited = container(service(resources={"limits": {"cpu": "1"}}))
    assert limited["resources"]["limits"] == {"memory": "256Mi", "cpu": "1"}


def test_settings_become_environment_variables() -> None:
    env = env_of(
        service(
            logging={"format": "json", "level": "WARNING"},
            security={
                "corsAllowedOrigins": ["https://a.example.com", "https://b.example.com"],
                "rateLimit": "100/minute",
                "debug": False,
            },
        )
    )
    assert env["ENVIRONMENT"] == "prod"
    assert env["LOG_FORMAT"] == "json"
    assert env["LOG_LEVEL"] == "WARNING"
    assert env["DEBUG"] == "false"
    assert env["CORS_ALLOWED_ORIGINS"] == "https://a.example.com,https://b.example.com"
    assert env["RATE_LIMIT"] == "100/minute"


def test_unset_cors_and_rate_limit_leave_the_variables_unset() -> None:
    env = env_of(service())
    assert "CORS_ALLOWED_ORIGINS" not in env
    assert "RATE_LIMIT" not in env


def test_variable_names_are_configurable() -> None:
    env = env_of(
        service(
            environmentVariable="APP_ENV",
            logging={"formatVariable": "APP_LOG_FORMAT", "levelVariable": "APP_LOG_LEVEL"},
            security={"debugVariable": "APP_DEBUG", "debug": True},
        )
    )
    assert env["APP_ENV"] == "prod"
    assert env["APP_LOG_FORMAT"] == "json"
    assert env["APP_LOG_LEVEL"] == "INFO"
    assert env["APP_DEBUG"] == "true"


def test_settings_come_first_then_env_then_secrets() -> None:
    app = container(
        service(
            env=[{"name": "API_PREFIX", "value": "/api/v1"}],
            secretEnv=[
                {"name": "DATABASE_URL", "secretName": "db", "key": "url"},
                {"name": "OPTIONAL_KEY", "secretName": "extra", "key": "k", "optional": True},
            ],
        )
    )
    names = [entry["name"] for entry in app["env"]]
    assert names == [
        "ENVIRONMENT",
        "LOG_FORMAT",
        "LOG_LEVEL",
        "DEBUG",
        "API_PREFIX",
        "DATABASE_URL",
        "OPTIONAL_KEY",
    ]
    assert app["env"][5] == {
        "name": "DATABASE_URL",
        "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}},
    }
    assert app["env"][6]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_whole_secrets_come_by_env_from() -> None:
    app = container(
        service(
            envFromSecrets=[
                {"secretName": "common"},
                {"secretName": "extra", "prefix": "EXTRA_", "optional": True},
            ]
        )
    )
    assert app["envFrom"] == [
        {"secretRef": {"name": "common"}},
        {"secretRef": {"name": "extra", "optional": True}, "prefix": "EXTRA_"},
    ]
    assert "envFrom" not in container(service())


def test_literal_secret_is_refused_at_render_time() -> None:
    with pytest.raises(SpecError) as caught:
        render(service(env=[{"name": "STRIPE_API_KEY", "value": "sk_live_123"}]))
    assert caught.value.field == "spec.env[0].value"
    assert caught.value.rule == "PR-LG-003"
    assert "STRIPE_API_KEY" in caught.value.message
    assert "sk_live_123" not in str(caught.value)


def test_labels_selector_and_environment() -> None:
    rendered = deployment(service(pod={"labels": {"team": "orders"}}))
    labels = rendered["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "api"
    assert labels["app.kubernetes.io/instance"] == "api"
    assert labels["app.kubernetes.io/managed-by"] == "prodready"
    assert labels["app.kubernetes.io/component"] == "server"
    assert labels["app.kubernetes.io/version"] == "1.4.2"
    assert labels["prodready.io/environment"] == "prod"
    assert labels["prodready.io/service"] == "api"
    selector = rendered["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}
    pod_labels = rendered["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items()
    assert pod_labels["prodready.io/environment"] == "prod"
    assert pod_labels["team"] == "orders"


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("ghcr.io/example/api:1.4.2", "1.4.2"),
        ("ghcr.io/example/api:1.4.2@sha256:" + "a" * 64, "1.4.2"),
        ("ghcr.io/example/api@sha256:" + "a" * 64, None),
        ("localhost:5000/api", None),
        ("api:" + "x" * 70, None),
    ],
)
def test_version_label_comes_from_the_tag(image: str, version: str | None) -> None:
    labels = deployment(service(image=image))["metadata"]["labels"]
    assert labels.get("app.kubernetes.io/version") == version


def test_owner_labels_are_kept_but_prodready_labels_win() -> None:
    obj = service()
    obj["metadata"]["labels"] = {"app.kubernetes.io/part-of": "shop", "app.kubernetes.io/name": "x"}
    labels = deployment(obj)["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "shop"
    assert labels["app.kubernetes.io/name"] == "api"


def test_exemptions_reach_the_deployment() -> None:
    obj = service(
        replicas=1,
        exemptions=[
            {"rule": "PR-RS-002", "reason": "canary"},
            {"rule": "PR-SC-005", "reason": "ci pins"},
        ],
    )
    obj["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-SC-001",
        "prodready.io/exempt-reason": "internal only",
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
    }
    annotations = deployment(obj)["metadata"]["annotations"]
    assert annotations["prodready.io/exempt"] == "PR-SC-001,PR-RS-002,PR-SC-005"
    assert (
        annotations["prodready.io/exempt-reason"]
        == "internal only; PR-RS-002: canary; PR-SC-005: ci pins"
    )
    assert "kubectl.kubernetes.io/last-applied-configuration" not in annotations


def test_no_exemptions_no_annotations() -> None:
    assert "annotations" not in deployment(service())["metadata"]


def test_dependencies_are_recorded_for_the_rules_engine() -> None:
    rendered = deployment(
        service(
            health={
                "dependencies": [
                    {"name": "postgres", "type": "database"},
                    {"name": "cache", "type": "redis"},
                ]
            }
        )
    )
    assert rendered["metadata"]["annotations"]["prodready.io/dependencies"] == (
        '[{"name":"postgres","type":"database"},{"name":"cache","type":"redis"}]'
    )


def test_autoscaling_leaves_replicas_to_the_hpa() -> None:
    assert deployment(service(replicas=3))["spec"]["replicas"] == 3
    assert "replicas" not in deployment(service(autoscaling={"maxReplicas": 5}))["spec"]


def test_replicas_are_spread_over_nodes_when_there_are_several() -> None:
    pod = deployment(service())["spec"]["template"]["spec"]
    (constraint,) = pod["topologySpreadConstraints"]
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    single = deployment(service(environment="dev", replicas=1))["spec"]["template"]["spec"]
    assert "topologySpreadConstraints" not in single


def test_pod_extras() -> None:
    pod = deployment(
        service(
            command=["uvicorn"],
            args=["app:app"],
            pod={
                "serviceAccountName": "api",
                "automountServiceAccountToken": True,
                "imagePullSecrets": ["registry"],
                "nodeSelector": {"pool": "web"},
                "tolerations": [
                    {
                        "key": "dedicated",
                        "operator": "Equal",
                        "value": "web",
                        "effect": "NoSchedule",
                    }
                ],
                "annotations": {"team": "orders", "prometheus.io/scrape": "false"},
            },
        )
    )["spec"]["template"]
    spec = pod["spec"]
    assert spec["serviceAccountName"] == "api"
    assert spec["automountServiceAccountToken"] is True
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["nodeSelector"] == {"pool": "web"}
    assert spec["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "web", "effect": "NoSchedule"}
    ]
    assert spec["containers"][0]["command"] == ["uvicorn"]
    assert spec["containers"][0]["args"] == ["app:app"]
    assert pod["metadata"]["annotations"]["team"] == "orders"
    # The team may turn annotation-based scraping off.
    assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "false"


def test_metrics_disabled_means_no_scrape_annotations() -> None:
    annotations = deployment(service(metrics={"enabled": False}))["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert not any(key.startswith("prometheus.io/") for key in annotations)


def test_config_checksum_changes_with_config_and_secret_versions_only() -> None:
    def checksum(obj: dict[str, Any], **kwargs: Any) -> str:
        annotations = deployment(obj, **kwargs)["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["prodready.io/config-checksum"]
        return value

    secrets = [{"name": "DATABASE_URL", "secretName": "db", "key": "url"}]
    base = checksum(service(secretEnv=secrets))
    assert base.startswith("sha256:")
    assert checksum(service(secretEnv=secrets)) == base
    assert checksum(service(secretEnv=secrets, logging={"level": "WARNING"})) != base
    rotated = checksum(service(secretEnv=secrets), secret_versions={"db": "101"})
    assert rotated != base
    assert checksum(service(secretEnv=secrets), secret_versions={"db": "102"}) != rotated
    # Secrets the pods do not read (e.g. an Ingress certificate) do not roll them.
    assert checksum(service(secretEnv=secrets), secret_versions={"tls": "7"}) == base
    # Other pod settings are not configuration: changing them rolls pods on their own.
    assert checksum(service(secretEnv=secrets, replicas=5)) == base


def test_config_checksum_is_order_independent_in_secret_versions() -> None:
    env: list[dict[str, Any]] = [{"name": "A", "value": "1"}]
    assert config_checksum(env, [], {"a": "1", "b": "2"}) == config_checksum(
        env, [], {"b": "2", "a": "1"}
    )


def test_owner_reference_only_with_a_uid() -> None:
    obj = service()
    assert "ownerReferences" not in deployment(obj)["metadata"]
    obj["metadata"]["uid"] = "0b6f0b0e-0000-4000-8000-000000000001"
    (owner,) = deployment(obj)["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "name": "api",
        "uid": "0b6f0b0e-0000-4000-8000-000000000001",
        "controller": True,
        "blockOwnerDeletion": True,
    }


def test_exemption_in_both_places_is_listed_once() -> None:
    obj = service(replicas=1, exemptions=[{"rule": "PR-RS-002", "reason": "canary"}])
    obj["metadata"]["annotations"] = {"prodready.io/exempt": "PR-RS-002, PR-SC-005"}
    annotations = deployment(obj)["metadata"]["annotations"]
    assert annotations["prodready.io/exempt"] == "PR-RS-002,PR-SC-005"
    assert annotations["prodready.io/exempt-reason"] == "PR-RS-002: canary"


def test_annotation_exemption_without_reason_is_copied_as_is() -> None:
    """The rules engine reports an exemption without a reason (PR-EX-001); we do not hide it."""
    obj = service()
    obj["metadata"]["annotations"] = {"prodready.io/exempt": "PR-SC-005"}
    annotations = deployment(obj)["metadata"]["annotations"]
    assert annotations == {"prodready.io/exempt": "PR-SC-005"}


def test_status_is_not_an_input() -> None:
    obj = service()
    plain = render(obj)
    obj["status"] = {"conditions": [{"type": "Ready"}], "compliance": {"score": 1000}}
    assert render(obj) == plain

"""Service, PodDisruptionBudget, HorizontalPodAutoscaler and Ingress."""

from __future__ import annotations

from typing import Any

from prodready.api import API_VERSION, KIND, parse_production_service
from prodready.render.hpa import render_horizontal_pod_autoscaler
from prodready.render.ingress import render_ingress
from prodready.render.pdb import render_pod_disruption_budget
from prodready.render.service import render_service

SELECTOR = {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}


def ps(**spec: Any) -> Any:
    """A parsed ProductionService with `spec` overrides."""
    return parse_production_service(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"image": "ghcr.io/example/api:1.0", "environment": "prod", **spec},
        }
    )


def test_service_targets_the_pods_by_port_name() -> None:
    service = render_service(ps())
    assert service["metadata"]["name"] == "api"
    assert service["metadata"]["namespace"] == "shop"
    assert service["metadata"]["labels"]["prodready.io/service"] == "api"
    assert service["spec"]["selector"] == SELECTOR
    assert service["spec"]["type"] == "ClusterIP"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": "http", "protocol": "TCP"}
    ]


def test_service_exposes_a_separate_metrics_port() -> None:
    ports = render_service(ps(ports={"http": 8080, "metrics": 9090}))["spec"]["ports"]
    assert [(port["name"], port["port"]) for port in ports] == [("http", 8080), ("metrics", 9090)]


def test_pdb_with_two_or_more_replicas() -> None:
    pdb = render_pod_disruption_budget(ps(replicas=3))
    assert pdb is not None
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": SELECTOR},
        "unhealthyPodEvictionPolicy": "AlwaysAllow",
    }


def test_no_pdb_for_a_single_replica() -> None:
    assert render_pod_disruption_budget(ps(environment="dev", replicas=1)) is None


def test_pdb_follows_autoscaling_minimum() -> None:
    assert render_pod_disruption_budget(
        ps(replicas=1, autoscaling={"minReplicas": 2, "maxReplicas": 4})
    )
    assert (
        render_pod_disruption_budget(
            ps(environment="dev", replicas=5, autoscaling={"minReplicas": 1, "maxReplicas": 4})
        )
        is None
    )


def test_hpa_only_with_autoscaling() -> None:
    assert render_horizontal_pod_autoscaler(ps()) is None
    hpa = render_horizontal_pod_autoscaler(
        ps(
            autoscaling={
                "minReplicas": 3,
                "maxReplicas": 9,
                "targetCPUUtilizationPercentage": 70,
                "targetMemoryUtilizationPercentage": 85,
            }
        )
    )
    assert hpa is not None
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 9)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in hpa["spec"]["metrics"]
    }
    assert targets == {"cpu": 70, "memory": 85}


def test_ingress_only_with_exposure() -> None:
    assert render_ingress(ps()) is None


def test_ingress_with_tls() -> None:
    ingress = render_ingress(
        ps(
            exposure={
                "host": "api.example.com",
                "tlsSecretName": "api-tls",
                "ingressClassName": "nginx",
                "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
            }
        )
    )
    assert ingress is not None
    assert ingress["apiVersion"] == "networking.k8s.io/v1"
    assert ingress["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "letsencrypt"}
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["api.example.com"], "secretName": "api-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "api.example.com"
    (path,) = rule["http"]["paths"]
    assert path == {
        "path": "/",
        "pathType": "Prefix",
        "backend": {"service": {"name": "api", "port": {"name": "http"}}},
    }


def test_ingress_without_tls_has_no_tls_section() -> None:
    ingress = render_ingress(
        ps(environment="dev", exposure={"host": "api.dev.example.com", "path": "/api"})
    )
    assert ingress is not None
    assert "tls" not in ingress["spec"]
    assert "ingressClassName" not in ingress["spec"]
    assert "annotations" not in ingress["metadata"]
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["path"] == "/api"

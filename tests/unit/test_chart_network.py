"""The chart's network and access defaults: NetworkPolicy, apiserver-only webhook, /metrics."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cluster.controlplane import default_bin_dir
from tests.generate import GenerateError, documents, helm_template

pytestmark = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)

NAMESPACE = "prodready"
TOKEN_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return documents(helm_template(values, release="prodready", namespace=NAMESPACE))


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def operator_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = of_kind(objects, "Deployment")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def reader_objects(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """The metrics-reader ClusterRole or its binding."""

    def name(o: dict[str, Any]) -> str:
        return str(o["roleRef"]["name"] if kind == "ClusterRoleBinding" else o["metadata"]["name"])

    return [o for o in of_kind(objects, kind) if name(o).endswith("-metrics-reader")]


def env(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in operator_container(objects)["env"]}


def test_the_default_policy_admits_only_the_two_served_ports() -> None:
    objects = render()
    (policy,) = of_kind(objects, "NetworkPolicy")
    (deployment,) = of_kind(objects, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    rules = policy["spec"]["ingress"]
    assert [rule["ports"] for rule in rules] == [
        [{"port": "https-webhook", "protocol": "TCP"}],
        [{"port": "http-metrics", "protocol": "TCP"}],
    ]
    assert all("from" not in rule for rule in rules)  # open by default: mTLS and tokens gate
    declared = {p["name"] for p in operator_container(objects)["ports"]}
    assert declared == {"https-webhook", "http-metrics"}


def test_each_port_can_be_narrowed_to_its_callers() -> None:
    monitoring = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
    apiserver = {"ipBlock": {"cidr": "10.0.0.0/24"}}
    (policy,) = of_kind(
        render({"networkPolicy": {"webhookFrom": [apiserver], "metricsFrom": [monitoring]}}),
        "NetworkPolicy",
    )
    webhook, metrics = policy["spec"]["ingress"]
    assert webhook["from"] == [apiserver]
    assert metrics["from"] == [monitoring]


def test_the_policy_can_be_left_out_and_bad_peers_are_refused() -> None:
    assert not of_kind(render({"networkPolicy": {"enabled": False}}), "NetworkPolicy")
    with pytest.raises(GenerateError, match="webhookFrom"):
        render({"networkPolicy": {"webhookFrom": [{"ipBlok": {"cidr": "10.0.0.0/8"}}]}})


def test_a_client_ca_config_map_makes_the_webhook_apiserver_only() -> None:
    assert "PRODREADY_WEBHOOK_CLIENT_CA_FILE" not in env(render())
    objects = render({"webhook": {"clientCAConfigMap": "apiserver-webhook-client-ca"}})
    variables = env(objects)
    path = variables["PRODREADY_WEBHOOK_CLIENT_CA_FILE"]
    mounts = {m["name"]: m for m in operator_container(objects)["volumeMounts"]}
    assert path == f"{mounts['webhook-client-ca']['mountPath']}/ca.crt"
    assert mounts["webhook-client-ca"]["readOnly"] is True
    (deployment,) = of_kind(objects, "Deployment")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["webhook-client-ca"]["configMap"]["name"] == "apiserver-webhook-client-ca"
    assert volumes["webhook-client-ca"]["configMap"]["items"] == [
        {"key": "ca.crt", "path": "ca.crt"}
    ]
    with pytest.raises(GenerateError, match="clientCAConfigMap"):
        render({"webhook": {"clientCAConfigMap": "Not A Name"}})


def test_metrics_are_authenticated_by_default_with_a_reader_role() -> None:
    objects = render({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert env(objects)["PRODREADY_METRICS_AUTH"] == "true"
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["bearerTokenFile"] == TOKEN_FILE
    readers = [
        o for o in of_kind(objects, "ClusterRole") if o["metadata"]["name"].endswith("-reader")
    ]
    assert [r["rules"] for r in readers] == [[{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]]
    assert not [
        b
        for b in of_kind(objects, "ClusterRoleBinding")
        if b["roleRef"]["name"].endswith("-reader")
    ]


def test_readers_are_bound_to_the_metrics_reader_role() -> None:
    prometheus = {"name": "prometheus-k8s", "namespace": "monitoring"}
    objects = render({"metrics": {"readers": [prometheus]}})
    (binding,) = [
        b
        for b in of_kind(objects, "ClusterRoleBinding")
        if b["roleRef"]["name"].endswith("-reader")
    ]
    assert binding["subjects"] == [{"kind": "ServiceAccount", **prometheus}]


def test_metrics_can_be_served_without_authentication() -> None:
    objects = render({"metrics": {"authentication": False, "serviceMonitor": {"enabled": True}}})
    assert env(objects)["PRODREADY_METRICS_AUTH"] == "false"
    (monitor,) = of_kind(objects, "ServiceMonitor")
    assert "bearerTokenFile" not in monitor["spec"]["endpoints"][0]
    assert not reader_objects(objects, "ClusterRole")

"""The Helm chart, rendered by the real helm binary: what it deploys and what it refuses.

No cluster: `helm template`, `helm lint` and a client-side dry run only
(tests/e2e/test_chart.py installs the chart).
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import socket
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready import __version__
from prodready.config import Settings, load_settings
from prodready.observability.metrics import Metrics
from prodready.rules import evaluate, load_config
from prodready.rules.config import parse_config
from prodready.webhook.certificates import (
    issue_certificate,
    load_server_context,
    service_dns_names,
)
from prodready.webhook.configuration import ServiceTarget, render_webhook_configuration
from tests.cluster.controlplane import default_bin_dir
from tests.generate import CHART, GenerateError, documents, helm, helm_template

pytestmark = pytest.mark.skipif(
    not (default_bin_dir() / "helm").exists(), reason="helm is not built: run `make binaries`"
)

RELEASE = "prodready"
NAMESPACE = "prodready"
EVERYTHING_ON: dict[str, Any] = {
    "metrics": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
        "dashboard": {"enabled": True},
    },
    "webhook": {"certificate": "cert-manager"},
    "watch": {"namespaces": ["shop"]},
}


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return documents(helm_template(values, release=RELEASE, namespace=NAMESPACE))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def kinds(objects: list[dict[str, Any]]) -> list[str]:
    return sorted(o["kind"] for o in objects)


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    return dict(pod["containers"][0])


def env_of(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return {entry["name"]: entry for entry in container(objects)["env"]}


def mounts_of(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}


@pytest.fixture(scope="module")
def defaults() -> list[dict[str, Any]]:
    return render()


# -- what the defaults install -----------------------------------------------------------


def test_defaults_install_the_operator_and_nothing_optional(
    defaults: list[dict[str, Any]],
) -> None:
    assert kinds(defaults) == [
        "ClusterRole",
        "ClusterRole",  # exception authors (aggregated to admin)
        "ClusterRole",  # the metrics reader (bound by metrics.readers, or by hand)
        "ClusterRole",  # policy viewers (aggregated to view)
        "ClusterRole",  # the caBundle of its own webhook configuration, by name
        "ClusterRoleBinding",
        "ClusterRoleBinding",
        "Deployment",
        "Lease",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Role",  # leader election
        "Role",  # the webhook certificate's Secret
        "RoleBinding",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    ]
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "ValidatingWebhookConfiguration",
    }
    for obj in defaults:
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "prodready"
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/version"] == __version__
        if obj["kind"] not in cluster_scoped:
            assert obj["metadata"]["namespace"] == NAMESPACE


def test_chart_version_matches_the_package() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == __version__
    assert chart["name"] == "prodready"


def test_chart_requires_kubernetes_1_30() -> None:
    """matchConditions and the preStop sleep action are GA from 1.30; managed clusters'
    pre-release version suffixes (v1.30.2-eks-…) are accepted."""
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"] == ">=1.30.0-0"
    helm_template(None, extra_args=["--kube-version", "1.30.2-eks-1234"])
    with pytest.raises(GenerateError, match="requires kubeVersion"):
        helm_template(None, extra_args=["--kube-version", "1.29.9"])


def test_helm_template_twice_gives_identical_output() -> None:
    """Nothing random or time-dependent is rendered (no generated certificate), so Argo CD
    and `helm diff` see no change where there is none."""
    for values in (None, EVERYTHING_ON):
        assert helm_template(values) == helm_template(values)


def test_helm_lint_strict_is_clean() -> None:
    result = helm("lint", "--strict", str(CHART), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout


def test_helm_lint_strict_is_clean_with_every_option_on(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(EVERYTHING_ON))
    result = helm("lint", "--strict", str(CHART), "--values", str(values), check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployment_is_highly_available_and_rolls_without_losing_capacity(
    defaults: list[dict[str, Any]],
) -> None:
    deployment = one(defaults, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    pdb = one(defaults, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]
    assert env_of(defaults)["PRODREADY_STANDALONE"]["value"] == "false"


def test_a_single_replica_gets_no_disruption_budget() -> None:
    objects = render({"replicas": 1})
    assert "PodDisruptionBudget" not in kinds(objects)
    # Leader election stays on: during a rollout the old and the new pod overlap.
    assert env_of(objects)["PRODREADY_STANDALONE"]["value"] == "false"


def test_probes_grace_and_drain(defaults: list[dict[str, Any]]) -> None:
    main = container(defaults)
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http-metrics"}
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http-metrics"}
    ports = {p["name"]: p["containerPort"] for p in main["ports"]}
    assert ports == {"http-metrics": 8080, "https-webhook": 9443}
    shutdown = int(env_of(defaults)["PRODREADY_SHUTDOWN_TIMEOUT_SECONDS"]["value"])
    drain = main["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] == 30
    assert shutdown == 25
    assert drain + shutdown < pod["terminationGracePeriodSeconds"]


def test_container_is_locked_down(defaults: list[dict[str, Any]]) -> None:
    pod = one(defaults, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container(defaults)["securityContext"]
    assert security["runAsUser"] == 65532
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container(defaults)["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


def test_image_is_pinned_to_the_chart_version_or_a_digest(defaults: list[dict[str, Any]]) -> None:
    assert container(defaults)["image"] == f"ghcr.io/prodready/prodready:{__version__}"
    digest = "sha256:" + "ab" * 32
    assert container(render({"image": {"digest": digest}}))["image"] == (
        f"ghcr.io/prodready/prodready@{digest}"
    )


def test_pod_identity_comes_from_the_downward_api(defaults: list[dict[str, Any]]) -> None:
    env = env_of(defaults)
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


# Settings the defaults leave unset on purpose: listening on every interface is what a pod
# needs, in a pod the ServiceAccount is the credential, and the rules configuration file
# exists only with operator.rulesConfig (test_rules_config_is_mounted_and_rolls_the_pods).
LEFT_AT_DEFAULT = {
    "PRODREADY_WEBHOOK_CLIENT_CA_FILE",  # set by webhook.clientCAConfigMap
    "PRODREADY_HEALTH_HOST",
    "PRODREADY_WEBHOOK_HOST",
    "PRODREADY_KUBECONFIG",
    "PRODREADY_CONTEXT",
    # Set with webhook.certificate=cert-manager (a mounted Secret); by default the operator
    # provisions its own (PRODREADY_WEBHOOK_CERT_SECRET_NAME).
    "PRODREADY_WEBHOOK_CERT_FILE",
    "PRODREADY_WEBHOOK_KEY_FILE",
    "PRODREADY_RULES_CONFIG_FILE",
    "PRODREADY_DASHBOARD_PORT",  # set by readinessDashboard.enabled (off by default)
}


def test_every_operator_setting_is_set_and_valid(defaults: list[dict[str, Any]]) -> None:
    env = {name: entry["value"] for name, entry in env_of(defaults).items() if "value" in entry}
    every = {f"PRODREADY_{name.upper()}" for name in Settings.model_fields}
    assert {name for name in env if name.startswith("PRODREADY_")} <= every  # no stray name
    assert every - set(env) == LEFT_AT_DEFAULT
    settings = load_settings(env)
    assert settings.log_format == "json"
    assert settings.namespaces == []
    assert settings.health_port == 8080
    assert settings.webhook_port == 9443
    assert settings.standalone is False


def test_watched_namespaces_reach_the_operator() -> None:
    objects = render({"watch": {"namespaces": ["shop", "payments"]}})
    assert env_of(objects)["PRODREADY_NAMESPACES"]["value"] == "shop,payments"


def test_rules_config_is_mounted_and_rolls_the_pods(tmp_path: Path) -> None:
    config = {"severity": {"PR-SC-005": "error"}, "disabled": ["PR-MO-002"]}
    objects = render({"operator": {"rulesConfig": config}})
    config_map = one(objects, "ConfigMap", "prodready-rules")
    assert yaml.safe_load(config_map["data"]["rules.yaml"]) == config
    path = Path(env_of(objects)["PRODREADY_RULES_CONFIG_FILE"]["value"])
    assert path.parent == Path(mounts_of(objects)["rules-config"])
    annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    other = render({"operator": {"rulesConfig": {"disabled": ["PR-MO-002"]}}})
    other_annotations = one(other, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/rules-config"] != other_annotations["checksum/rules-config"]
    # The operator accepts the file the ConfigMap holds.
    file = tmp_path / "rules.yaml"
    file.write_text(config_map["data"]["rules.yaml"])
    assert load_config(file).disabled == ["PR-MO-002"]


# -- dogfooding --------------------------------------------------------------------------


@pytest.mark.parametrize("values", [{}, EVERYTHING_ON], ids=["defaults", "everything-on"])
def test_the_chart_passes_its_own_checklist(values: dict[str, Any]) -> None:
    reports = evaluate(render(values))
    # The Deployment, and the objects checked on their own (its ConfigMaps): none fails.
    assert [r.object.kind for r in reports if r.object.kind != "ConfigMap"] == ["Deployment"]
    failing = [
        f"{r.object.kind}/{r.object.name} {f.rule_id}: {f.message}"
        for r in reports
        for f in r.findings
        if f.result.value == "fail"
    ]
    assert failing == []
    deployment = next(r for r in reports if r.object.kind == "Deployment")
    exempted = sorted(f.rule_id for f in deployment.findings if f.result.value == "skip")
    assert exempted == ["PR-LG-001"]


def test_prodready_validate_passes_the_rendered_chart() -> None:
    """The CLI, as CI would run it: `helm template … | prodready validate -`."""
    result = subprocess.run(
        [sys.executable, "-m", "prodready", "validate", "-o", "json", "-"],
        input=helm_template(EVERYTHING_ON, release=RELEASE, namespace=NAMESPACE),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads(result.stdout)["summary"]
    assert summary["objects"] == summary["compliant"]
    assert summary["fail"] == 0


def test_with_monitoring_on_nothing_is_left_to_warn_about() -> None:
    reports = evaluate(render(EVERYTHING_ON))
    assert [f.rule_id for r in reports for f in r.findings if f.result.value == "warn"] == []


def test_the_exemptions_are_true(defaults: list[dict[str, Any]]) -> None:
    """PR-LG-001 passes once the rule reads the operator's own variable; PR-SC-002 (CORS)
    does not apply: nothing exposes the operator (ClusterIP only, no Ingress)."""
    deployment = one(defaults, "Deployment")
    annotations = deployment["metadata"].pop("annotations")
    assert annotations["prodready.io/exempt"] == "PR-LG-001"
    config = parse_config({"env_vars": {"log_format": "PRODREADY_LOG_FORMAT"}})
    report = next(r for r in evaluate(defaults, config=config) if r.object.kind == "Deployment")
    results = {f.rule_id: f.result.value for f in report.findings}
    assert results["PR-LG-001"] == "pass"
    assert results.get("PR-SC-002", "not applicable") in {"pass", "not applicable"}
    assert one(defaults, "Service")["spec"]["type"] == "ClusterIP"
    assert "Ingress" not in kinds(defaults)


def test_console_logs_are_not_exempted() -> None:
    reports = evaluate(render({"operator": {"logFormat": "console"}}))
    report = next(r for r in reports if r.object.kind == "Deployment")
    assert {f.rule_id for f in report.findings if f.result.value == "fail"} == {"PR-LG-001"}


# -- values the chart refuses ------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"replicas": 0}, "at '/replicas': minimum: got 0, want 1"),
        ({"webhook": {"timeoutSeconds": 31}}, "at '/webhook/timeoutSeconds': maximum"),
        ({"webhook": {"failurePolicy": "Maybe"}}, "at '/webhook/failurePolicy'"),
        ({"operator": {"logFormat": "text"}}, "at '/operator/logFormat'"),
        ({"operator": {"logLevel": "TRACE"}}, "at '/operator/logLevel'"),
        ({"watch": {"namespaces": ["Not_A_Namespace"]}}, "at '/watch/namespaces/0'"),
        ({"image": {"digest": "sha256:short"}}, "at '/image/digest'"),
        ({"replica": 2}, "additional properties 'replica' not allowed"),
        # null removes a default (values merge): a memory limit is required (PR-RS-001).
        ({"resources": {"limits": {"memory": None}}}, "at '/resources/limits': missing property"),
        ({"environment": "production"}, "at '/environment'"),
        ({"image": {"tag": "latest"}}, "image.tag: `latest` is not a version"),
        (
            {"operator": {"shutdownTimeoutSeconds": 28}},
            "terminationGracePeriodSeconds (30) must exceed preStopSleepSeconds (3) + "
            "operator.shutdownTimeoutSeconds (28)",
        ),
        (
            {"serviceAccount": {"create": False, "name": ""}},
            "serviceAccount.name is required when serviceAccount.create is false",
        ),
    ],
)
def test_bad_values_are_refused_with_the_value_named(values: dict[str, Any], message: str) -> None:
    with pytest.raises(GenerateError) as raised:
        helm_template(values, release=RELEASE, namespace=NAMESPACE)
    assert message in str(raised.value)


def test_helm_lint_names_a_bad_value(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("webhook:\n  timeoutSeconds: 0\n")
    result = helm("lint", "--strict", str(CHART), "--values", str(bad), check=False)
    assert result.returncode != 0
    assert "/webhook/timeoutSeconds" in result.stdout + result.stderr


# -- the webhook -------------------------------------------------------------------------


def _ca_bundle(webhook_configuration: dict[str, Any]) -> bytes:
    bundles = {w["clientConfig"].get("caBundle") for w in webhook_configuration["webhooks"]}
    assert len(bundles) == 1
    return base64.b64decode(bundles.pop() or "")


def test_webhook_configuration_is_the_one_the_operator_renders(
    defaults: list[dict[str, Any]],
) -> None:
    configuration = one(defaults, "ValidatingWebhookConfiguration")
    expected = render_webhook_configuration(
        operator_namespace=NAMESPACE,
        service=ServiceTarget(RELEASE, NAMESPACE, 443),
        ca_bundle=_ca_bundle(configuration),
        failure_policy="Fail",
        timeout_seconds=5,
    )
    assert configuration["webhooks"] == expected["webhooks"]


def test_webhook_values_reach_the_configuration_and_the_operator() -> None:
    values = {
        "webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 10, "excludedNamespaces": ["ops"]}
    }
    objects = render(values)
    configuration = one(objects, "ValidatingWebhookConfiguration")
    expected = render_webhook_configuration(
        operator_namespace=NAMESPACE,
        service=ServiceTarget(RELEASE, NAMESPACE, 443),
        ca_bundle=_ca_bundle(configuration),
        failure_policy="Ignore",
        timeout_seconds=10,
        excluded_namespaces=["ops"],
    )
    assert configuration["webhooks"] == expected["webhooks"]
    env = env_of(objects)
    assert env["PRODREADY_WEBHOOK_FAILURE_POLICY"]["value"] == "Ignore"
    assert env["PRODREADY_WEBHOOK_TIMEOUT_SECONDS"]["value"] == "10"


def test_watching_some_namespaces_the_webhook_checks_only_those() -> None:
    """The operator has the context (Services, ServiceMonitors, …) of the watched
    namespaces only; elsewhere it would judge workloads without it."""
    objects = render({"watch": {"namespaces": ["shop", "payments"]}})
    configuration = one(objects, "ValidatingWebhookConfiguration")
    cluster_wide = render_webhook_configuration(
        operator_namespace=NAMESPACE,
        service=ServiceTarget(RELEASE, NAMESPACE, 443),
        ca_bundle=_ca_bundle(configuration),
    )
    scope = {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ["shop", "payments"]}
    for ours, theirs in zip(configuration["webhooks"], cluster_wide["webhooks"], strict=True):
        expressions = ours["namespaceSelector"]["matchExpressions"]
        assert expressions == [*theirs["namespaceSelector"]["matchExpressions"], scope]


def test_service_routes_443_to_the_webhook_port(defaults: list[dict[str, Any]]) -> None:
    service = one(defaults, "Service")
    ports = {p["name"]: (p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
    assert ports == {
        "http-metrics": (8080, "http-metrics"),
        "https-webhook": (443, "https-webhook"),
    }
    selector = one(defaults, "Deployment")["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector


def _serve_once(context: ssl.SSLContext) -> tuple[int, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def accept() -> None:
        with listener:
            connection, _ = listener.accept()
            with context.wrap_socket(connection, server_side=True) as tls:
                tls.sendall(b"ok")

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    return port, thread


def test_the_operator_provisions_its_certificate_for_the_service_name(
    defaults: list[dict[str, Any]], tmp_path: Path
) -> None:
    """By default the chart renders no certificate: the operator is told which Secret to
    keep, for which names, and which webhook configuration (its own) to keep trusting it;
    what it issues for those names is what the apiserver verifies against caBundle for
    `<service>.<namespace>.svc`, over TLS to the operator's own server context."""
    assert "Secret" not in kinds(defaults)
    configuration = one(defaults, "ValidatingWebhookConfiguration")
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])
    assert "annotations" not in configuration["metadata"]
    assert "webhook-tls" not in mounts_of(defaults)
    env = {name: entry["value"] for name, entry in env_of(defaults).items() if "value" in entry}
    settings = load_settings(env)
    assert settings.webhook_cert_secret_name == "prodready-webhook-tls"
    assert settings.webhook_configuration == configuration["metadata"]["name"]
    assert settings.webhook_cert_validity_seconds == 365 * 86400
    assert settings.webhook_cert_hosts == service_dns_names(RELEASE, NAMESPACE)
    issued = issue_certificate(
        settings.webhook_cert_hosts,
        validity=datetime.timedelta(seconds=settings.webhook_cert_validity_seconds),
    )
    (tmp_path / "tls.crt").write_bytes(issued.cert)
    (tmp_path / "tls.key").write_bytes(issued.key)
    server = load_server_context(tmp_path / "tls.crt", tmp_path / "tls.key")
    port, thread = _serve_once(server)
    client = ssl.create_default_context(cadata=issued.ca.decode())
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname=f"{RELEASE}.{NAMESPACE}.svc") as tls,
    ):
        assert tls.recv(2) == b"ok"
    thread.join(timeout=10)
    days = render({"webhook": {"certificateValidityDays": 30}})
    assert env_of(days)["PRODREADY_WEBHOOK_CERT_VALIDITY_SECONDS"]["value"] == str(30 * 86400)


def test_security_contexts_keep_their_defaults_and_leave_ids_to_openshift() -> None:
    """`podSecurityContext.runAsUser: null` (OpenShift's restricted-v2 assigns IDs from the
    namespace's range and refuses fixed ones) renders no fixed user, group or fsGroup."""
    objects = render()
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert pod == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container(objects)["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
    }
    openshift = render({"podSecurityContext": {"runAsUser": None}})
    pod = one(openshift, "Deployment")["spec"]["template"]["spec"]["securityContext"]
    assert pod == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    assert not {"runAsUser", "runAsGroup"} & set(container(openshift)["securityContext"])
    assert container(openshift)["securityContext"]["readOnlyRootFilesystem"] is True
    custom = render({"securityContext": {"runAsUser": 1000}, "podSecurityContext": {"fsGroup": 2}})
    assert container(custom)["securityContext"]["runAsUser"] == 1000
    assert one(custom, "Deployment")["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 2


def test_cert_manager_issues_the_certificate_and_injects_the_ca() -> None:
    objects = render({"webhook": {"certificate": "cert-manager"}})
    assert "Secret" not in kinds(objects)
    env = env_of(objects)
    assert "PRODREADY_WEBHOOK_CERT_SECRET_NAME" not in env
    cert = env["PRODREADY_WEBHOOK_CERT_FILE"]["value"]
    key = env["PRODREADY_WEBHOOK_KEY_FILE"]["value"]
    assert Path(cert).parent == Path(key).parent == Path(mounts_of(objects)["webhook-tls"])
    # Nothing of the operator's own certificate: no Role for a Secret, no caBundle patching.
    names = {o["metadata"]["name"] for o in objects if o["kind"] in {"Role", "ClusterRole"}}
    assert not {"prodready-webhook-certificate", "prodready-webhook-configuration"} & names
    issuer = one(objects, "Issuer")
    certificate = one(objects, "Certificate")
    assert issuer["spec"] == {"selfSigned": {}}
    assert certificate["spec"]["secretName"] == "prodready-webhook-tls"
    assert certificate["spec"]["dnsNames"] == service_dns_names(RELEASE, NAMESPACE)
    assert certificate["spec"]["issuerRef"] == {
        "name": issuer["metadata"]["name"],
        "kind": "Issuer",
        "group": "cert-manager.io",
    }
    configuration = one(objects, "ValidatingWebhookConfiguration")
    assert configuration["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{NAMESPACE}/{certificate['metadata']['name']}"
    }
    assert all("caBundle" not in w["clientConfig"] for w in configuration["webhooks"])


def test_cert_manager_with_an_existing_issuer_creates_none() -> None:
    issuer = {"kind": "ClusterIssuer", "name": "internal-ca", "group": "cert-manager.io"}
    objects = render(
        {"webhook": {"certificate": "cert-manager", "certManager": {"issuerRef": issuer}}}
    )
    assert "Issuer" not in kinds(objects)
    assert one(objects, "Certificate")["spec"]["issuerRef"] == issuer


def test_webhook_disabled_leaves_no_configuration_and_no_certificate() -> None:
    objects = render({"webhook": {"enabled": False}})
    assert not {"ValidatingWebhookConfiguration", "Secret"} & set(kinds(objects))
    assert "PRODREADY_WEBHOOK_CERT_FILE" not in env_of(objects)
    assert "PRODREADY_WEBHOOK_CERT_SECRET_NAME" not in env_of(objects)
    assert "prodready-webhook-certificate" not in {o["metadata"]["name"] for o in objects}
    # The operator then writes a throwaway certificate: /tmp must be writable.
    assert mounts_of(objects) == {"tmp": "/tmp"}


# -- monitoring --------------------------------------------------------------------------


def _exported_metric_names() -> set[str]:
    metrics = Metrics()
    metrics.record_webhook_request("Deployment", "CREATE", True, 0.01)
    metrics.api_errors.labels(reason="Forbidden").inc()
    metrics.children_applied.labels(kind="Deployment").inc()
    metrics.children_pruned.labels(kind="Deployment").inc()
    metrics.drift_corrections.labels(kind="Deployment").inc()
    metrics.set_namespace_findings("shop", {("PR-HC-001", "error", "fail"): 1})
    text = metrics.render_latest()[0].decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line[:1].isalpha()}


_METRIC = re.compile(r"\b((?:prodready|process)_[a-z_]+)")


def test_alerts_and_dashboard_query_metrics_the_operator_exports() -> None:
    objects = render(EVERYTHING_ON)
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["endpoints"] == [
        {
            "port": "http-metrics",
            "path": "/metrics",
            "interval": "30s",
            # /metrics wants a token allowed to get it (metrics.authentication, the default)
            "bearerTokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token",
        }
    ]
    labels = one(objects, "Service")["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    rules = one(objects, "PrometheusRule")["spec"]["groups"][0]["rules"]
    expressions = [rule["expr"] for rule in rules]
    dashboard = json.loads(one(objects, "ConfigMap")["data"]["prodready-operator.json"])
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {m for text in expressions + queries for m in _METRIC.findall(text)}
    exported = _exported_metric_names()
    assert len(used) >= 8
    assert used <= exported, f"not exported by the operator: {sorted(used - exported)}"
    assert {rule["alert"] for rule in rules} >= {"ProdreadyOperatorDown", "ProdreadyAuditStalled"}
    assert all(f'job="{RELEASE}"' in expression for expression in expressions)


def test_scrape_annotations_point_at_the_metrics_port(defaults: list[dict[str, Any]]) -> None:
    annotations = one(defaults, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"

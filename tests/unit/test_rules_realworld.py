"""Issue 17: the rules on shapes real-world manifests have, one case of the issue per test.

Stock images (postgres, node-exporter, nginx), workers with a metrics port, a private key
under an innocent name, a file holding only an Ingress, Gateway API routes, a probe fix
that must not guess, third-party images, and secrets that must never be printed in any
output format.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.cli import main
from prodready.rules import Finding, ObjectReport, Result, evaluate
from prodready.rules.config import ConfigError, parse_config

Objects = list[dict[str, Any]]

PRIVATE_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----"
)
# A canary: an AWS-shaped access key that must never appear in any output.
AWS_KEY = "AKIAZ7CANARY4Q2X9ZTW"


def _docs(text: str) -> Objects:
    return [d for d in yaml.safe_load_all(text) if d]


def _reports(objects: Objects, **options: Any) -> dict[str, ObjectReport]:
    return {f"{r.object.kind}/{r.object.name}": r for r in evaluate(objects, **options)}


def _findings(report: ObjectReport, rule: str) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == rule]


def _failed(report: ObjectReport, rule: str) -> list[Finding]:
    return [f for f in _findings(report, rule) if f.failed]


POSTGRES = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
        - name: postgres
          image: postgres:16.4
          ports: [{name: postgres, containerPort: 5432}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: shop}
spec:
  selector: {app: db}
  ports: [{name: postgres, port: 5432, targetPort: postgres}]
"""

NODE_EXPORTER = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-exporter, namespace: monitoring}
spec:
  selector: {matchLabels: {app: node-exporter}}
  template:
    metadata: {labels: {app: node-exporter}}
    spec:
      hostNetwork: true
      containers:
        - name: node-exporter
          image: quay.io/prometheus/node-exporter:v1.8.2
          ports: [{name: metrics, containerPort: 9100}]
"""


def _worker(ports: bool) -> Objects:
    container: dict[str, Any] = {"name": "worker", "image": "registry.example.com/worker:1.0"}
    if ports:
        container["ports"] = [{"name": "metrics", "containerPort": 9090}]
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "worker", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "worker"}},
                "template": {
                    "metadata": {"labels": {"app": "worker"}},
                    "spec": {"containers": [container]},
                },
            },
        }
    ]


def test_cors_is_not_asked_of_a_database_an_exporter_or_a_worker() -> None:
    for objects in (_docs(POSTGRES), _docs(NODE_EXPORTER), _worker(ports=True)):
        for report in evaluate(objects):
            assert _findings(report, "PR-SC-002") == [], report.object
            assert _findings(report, "PR-SC-003") == [], report.object


def test_a_database_behind_a_cluster_service_needs_readiness_but_is_not_exposed() -> None:
    report = _reports(_docs(POSTGRES))["StatefulSet/db"]
    assert _failed(report, "PR-HC-002"), "a Service sends it traffic: it needs readiness"
    assert _findings(report, "PR-SC-001") == []


@pytest.mark.parametrize("ports", [True, False], ids=["metrics-port", "no-ports"])
def test_a_worker_needs_liveness_with_or_without_a_metrics_port(ports: bool) -> None:
    (report,) = evaluate(_worker(ports))
    (liveness,) = _failed(report, "PR-HC-001")
    assert "runs continuously but has no livenessProbe" in liveness.message
    assert _findings(report, "PR-HC-002") == []  # nothing routes requests to it


def test_a_port_named_for_http_makes_a_server_without_a_service() -> None:
    objects = _worker(ports=True)
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"name": "http-api", "containerPort": 8080}]
    (report,) = evaluate(objects)
    assert "serves traffic" in _failed(report, "PR-HC-002")[0].message
    # ... but an HTTP port named for metrics is scraped, not served.
    container["ports"] = [{"name": "http-metrics", "containerPort": 3100}]
    (report,) = evaluate(objects)
    assert _findings(report, "PR-HC-002") == []


def test_a_private_key_under_an_innocent_name_is_found_and_never_printed() -> None:
    objects = _worker(ports=False)
    container = objects[0]["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "the_good_stuff", "value": PRIVATE_KEY}]
    (report,) = evaluate(objects)
    (finding,) = _failed(report, "PR-LG-003")
    assert finding.message == "container worker: the_good_stuff holds a literal private key"
    assert finding.path == "spec.template.spec.containers[0].env[0].value"
    assert _failed(report, "PR-CF-001")


def test_a_file_holding_only_an_ingress_is_checked() -> None:
    ingress = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": "web", "port": {"number": 80}}},
                            }
                        ]
                    },
                }
            ]
        },
    }
    (report,) = evaluate([ingress])
    (finding,) = _failed(report, "PR-SC-006")
    assert finding.message == "Ingress web has no tls section"
    assert finding.result is Result.FAIL


HTTP_ROUTE = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/web:1.0
          ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: shop}
spec:
  parentRefs: [{name: public}]
  rules:
    - backendRefs: [{name: web, port: 80}]
"""


def test_an_http_route_exposes_the_workload_behind_its_service() -> None:
    reports = _reports(_docs(HTTP_ROUTE))
    web = reports["Deployment/web"]
    assert _failed(web, "PR-SC-002"), "routed from outside: CORS applies"
    assert _failed(web, "PR-SC-003"), "routed from outside: rate limiting applies"
    # The Gateway is not in the input: where TLS is decided is said, not guessed.
    (route,) = _findings(reports["HTTPRoute/web"], "PR-SC-006")
    assert route.result is Result.PASS
    assert "Gateway public, which is not in the input" in route.message


def test_an_https_redirect_route_is_not_plain_traffic() -> None:
    objects = _docs(HTTP_ROUTE)
    objects[2]["spec"]["rules"] = [
        {"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}
    ]
    objects.append(
        {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "public", "namespace": "shop"},
            "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]},
        }
    )
    (route,) = _findings(_reports(objects)["HTTPRoute/web"], "PR-SC-006")
    assert route.result is Result.PASS


NGINX = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: proxy, namespace: shop}
spec:
  selector: {matchLabels: {app: proxy}}
  template:
    metadata: {labels: {app: proxy}}
    spec:
      containers:
        - name: nginx
          image: nginx:1.27.2
          ports: [{name: http, containerPort: 80}]
"""


def test_the_probe_fix_never_guesses_an_endpoint() -> None:
    (report,) = evaluate(_docs(NGINX))
    (liveness,) = _failed(report, "PR-HC-001")
    assert liveness.patch is None
    assert "prodready.io/health-path" in liveness.message


def test_the_probe_fix_uses_the_policys_health_path() -> None:
    config = parse_config({"health_path": "/healthz"})
    (report,) = evaluate(_docs(NGINX), config=config)
    (readiness,) = _failed(report, "PR-HC-002")
    assert readiness.patch == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/readinessProbe",
            "value": {
                "httpGet": {"path": "/healthz", "port": "http"},
                "initialDelaySeconds": 5,
                "periodSeconds": 10,
            },
        }
    ]


def test_an_annotation_beats_the_policys_health_path_and_needs_a_port() -> None:
    objects = _docs(NGINX)
    template = objects[0]["spec"]["template"]
    template["metadata"]["annotations"] = {"prodready.io/health-path": "/nginx_status"}
    container = template["spec"]["containers"][0]
    config = parse_config({"health_path": "/healthz"})
    (report,) = evaluate(objects, config=config)
    (liveness,) = _failed(report, "PR-HC-001")
    assert liveness.patch is not None
    assert liveness.patch[0]["value"]["httpGet"] == {"path": "/nginx_status", "port": "http"}
    # Two ports, neither named for HTTP: which one serves the path is not guessed.
    container["ports"] = [{"containerPort": 80}, {"containerPort": 81}]
    (report,) = evaluate(objects, config=config)
    (liveness,) = _failed(report, "PR-HC-001")
    assert liveness.patch is None
    assert "httpGet /nginx_status on the port that serves it" in liveness.message


def test_a_bad_health_path_in_the_config_names_the_field() -> None:
    with pytest.raises(ConfigError, match="health_path"):
        parse_config({"health_path": "healthz"})


def test_third_party_images_are_not_asked_for_the_apps_conventions() -> None:
    (report,) = evaluate(_docs(NGINX))
    assert _failed(report, "PR-LG-001"), "unmarked, nginx is judged like the app"
    config = parse_config({"third_party_images": ["nginx:*", "docker.io/library/*"]})
    (report,) = evaluate(_docs(NGINX), config=config)
    for rule in ("PR-LG-001", "PR-LG-002", "PR-ER-001"):
        (note,) = _findings(report, rule)
        assert note.result is Result.PASS
        assert "third-party (policy third_party_images 'nginx:*')" in note.message


def test_an_exposed_third_party_image_must_be_rate_limited_at_the_edge() -> None:
    objects = _docs(NGINX)
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "proxy", "namespace": "shop"},
            "spec": {
                "type": "LoadBalancer",
                "selector": {"app": "proxy"},
                "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
            },
        }
    )
    config = parse_config({"third_party_images": ["nginx:*"]})
    reports = _reports(objects, config=config)
    proxy = reports["Deployment/proxy"]
    (cors,) = _findings(proxy, "PR-SC-002")
    assert cors.result is Result.PASS
    assert "third-party" in cors.message
    (rate,) = _failed(proxy, "PR-SC-003")
    assert "third-party" in rate.message
    (open_balancer,) = _failed(reports["Service/proxy"], "PR-SC-007")
    assert open_balancer.result is Result.WARN


def test_a_config_map_holding_a_cloud_key_names_the_key_not_the_value() -> None:
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"S3_BUCKET": "assets", "aws.conf": f"[default]\nkey_id = {AWS_KEY}\n"},
    }
    (report,) = evaluate([config_map])
    (finding,) = _failed(report, "PR-CF-004")
    assert finding.message == "ConfigMap settings: aws.conf holds a literal AWS access key"
    assert finding.path == "data.aws.conf"


CANARY_INPUT = f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: leaky, namespace: shop}}
spec:
  selector: {{matchLabels: {{app: leaky}}}}
  template:
    metadata: {{labels: {{app: leaky}}}}
    spec:
      containers:
        - name: app
          image: registry.example.com/leaky:1.0
          env:
            - {{name: the_good_stuff, value: {json.dumps(PRIVATE_KEY)}}}
            - {{name: UPLOAD_KEY, value: {AWS_KEY}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: leaky, namespace: shop}}
data:
  id_rsa: {json.dumps(PRIVATE_KEY)}
  key: {AWS_KEY}
"""


@pytest.mark.parametrize("output", ["table", "json", "sarif", "junit", "admission", "html"])
def test_secret_canaries_never_reach_any_output(
    output: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "leaky.yaml"
    path.write_text(CANARY_INPUT)
    monkeypatch.chdir(tmp_path)
    code = main(["validate", str(path), "-o", output, "--show-passed"])
    captured = capsys.readouterr()
    assert code == 1
    text = captured.out + captured.err
    assert "LG-003" in text or output == "admission"
    for canary in (AWS_KEY, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ", "BEGIN OPENSSH"):
        assert canary not in text


def _timed(function: Callable[[], object]) -> float:
    import time

    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def test_a_large_config_map_is_scanned_in_linear_time() -> None:
    # Near-misses of every pattern, repeated to the size the apiserver admits (~1 MiB).
    near_misses = "eyJhbGciOi.eyJzdWIi. AKIA sk_live_ glpat- xox- -----BEGIN PUBLIC KEY----- "
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "big", "namespace": "shop"},
        "data": {f"k{i}": near_misses * 40 + "\n" for i in range(400)},
    }
    seconds = _timed(lambda: evaluate([config_map]))
    assert seconds < 5, f"{seconds:.1f} s for {len(near_misses) * 40 * 400:,} characters"
    (report,) = evaluate([config_map])
    assert not _failed(report, "PR-CF-004")


def test_the_rules_catalogue_lists_the_new_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rules", "-o", "json"]) == 0
    rules = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rules["PR-SC-006"]["kinds"] == ["GRPCRoute", "HTTPRoute", "Ingress"]
    assert rules["PR-SC-007"]["kinds"] == ["Service"]
    assert rules["PR-CF-004"]["kinds"] == ["ConfigMap"]
    assert all(rules[r]["why"] and rules[r]["fix"] for r in ("PR-SC-006", "PR-SC-007", "PR-CF-004"))
    assert sys.modules["prodready.rules.secrets"]


def test_an_object_checked_on_its_own_can_be_exempted_with_a_reason() -> None:
    ingress = _docs(
        """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: internal
  namespace: shop
  annotations:
    prodready.io/exempt: PR-SC-006
    prodready.io/exempt-reason: only reachable through the VPN
spec:
  rules: [{host: tools.internal}]
"""
    )
    (report,) = evaluate(ingress)
    (finding,) = _findings(report, "PR-SC-006")
    assert finding.result is Result.SKIP
    assert "only reachable through the VPN" in finding.message
    assert report.compliant

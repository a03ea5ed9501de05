"""The rules in detail, from a compliant baseline with one thing broken.

`tests/fixtures/rules/compliant.yaml` passes every rule under the prod profile; each test
below applies a change to it and checks what a rule says (messages, paths, patches, edge
cases). Every rule's plain passing and failing examples live beside it as fixture files,
`tests/fixtures/rules/<RULE-ID>/success*.yaml` and `failure*.yaml` (test_rule_fixtures.py,
which also fails when a rule has none).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.rules import RULES, Finding, ObjectReport, Result, evaluate
from prodready.rules.context import WORKLOAD_KINDS

FIXTURES = Path(__file__).parent.parent / "fixtures" / "rules"
_BASELINE: list[dict[str, Any]] = [
    d for d in yaml.safe_load_all((FIXTURES / "compliant.yaml").read_text()) if d
]

Objects = list[dict[str, Any]]
Change = Callable[[Objects], None]


def baseline() -> Objects:
    """A fresh deep copy of the compliant baseline."""
    return copy.deepcopy(_BASELINE)


def first(objects: Objects, kind: str) -> dict[str, Any]:
    """The first object of `kind`."""
    return next(o for o in objects if o["kind"] == kind)


def deployment(objects: Objects) -> dict[str, Any]:
    """The baseline Deployment."""
    return first(objects, "Deployment")


def app(objects: Objects) -> dict[str, Any]:
    """The Deployment's first container."""
    return deployment(objects)["spec"]["template"]["spec"]["containers"][0]


def set_env(objects: Objects, name: str, value: str | None) -> None:
    """Set (or, with None, remove) a literal env var on the app container."""
    env = app(objects)["env"]
    env[:] = [e for e in env if e["name"] != name]
    if value is not None:
        env.append({"name": name, "value": value})


def drop(objects: Objects, kind: str) -> None:
    """Remove every object of `kind`."""
    objects[:] = [o for o in objects if o["kind"] != kind]


def report_of(objects: Objects, environment: str | None = None) -> ObjectReport:
    """The single workload report for `objects` (an Ingress, a LoadBalancer Service or a
    ConfigMap in the context gets a report of its own, which these tests do not read)."""
    reports = [
        r
        for r in evaluate(objects, environment=environment)
        if r.object.kind in WORKLOAD_KINDS or r.object.kind == "ProductionService"
    ]
    assert len(reports) == 1
    return reports[0]


def findings(objects: Objects, rule_id: str, environment: str | None = None) -> list[Finding]:
    """The findings of one rule."""
    return [f for f in report_of(objects, environment).findings if f.rule_id == rule_id]


def _same_probes(objects: Objects) -> None:
    app(objects)["livenessProbe"] = copy.deepcopy(app(objects)["readinessProbe"])


def _probe_removed(field: str) -> Change:
    def change(objects: Objects) -> None:
        del app(objects)[field]

    return change


def _no_lifecycle(objects: Objects) -> None:
    del app(objects)["lifecycle"]


def test_the_baseline_passes_everything_in_prod() -> None:
    report = report_of(baseline())
    assert [f for f in report.findings if f.result is not Result.PASS] == []
    assert report.compliant
    assert report.score == 100.0


def test_every_rule_documents_itself() -> None:
    for rule in RULES:
        assert rule.id.startswith("PR-")
        assert rule.title
        assert rule.why
        assert rule.fix
        assert rule.section
        assert rule.kinds


# ------------------------------------------------------------------ individual rules


def test_liveness_patch_uses_the_declared_health_path() -> None:
    # Issue 17: a fix never guesses an endpoint; the workload declares it by annotation.
    objects = baseline()
    _probe_removed("livenessProbe")(objects)
    deployment(objects)["metadata"]["annotations"] = {"prodready.io/health-path": "/livez"}
    (finding,) = [f for f in findings(objects, "PR-HC-001") if f.failed]
    assert finding.container == "app"
    assert finding.path == "spec.template.spec.containers[0].livenessProbe"
    assert finding.patch == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/livenessProbe",
            "value": {
                "httpGet": {"path": "/livez", "port": "http"},
                "initialDelaySeconds": 10,
                "periodSeconds": 30,
            },
        }
    ]


def test_without_a_declared_health_path_the_probe_finding_says_what_to_set() -> None:
    # The seed used to patch in /health on the first port, which would restart-loop any
    # image that does not serve it (stock nginx answers 404 there).
    objects = baseline()
    _probe_removed("livenessProbe")(objects)
    (finding,) = [f for f in findings(objects, "PR-HC-001") if f.failed]
    assert finding.patch is None
    assert "prodready.io/health-path" in finding.message


def test_workers_need_liveness_but_no_readiness() -> None:
    # Issue 17: a long-running worker (no Service, no HTTP port) deadlocks like a server.
    objects = baseline()
    drop(objects, "Service")
    drop(objects, "Ingress")
    del app(objects)["ports"]
    _probe_removed("livenessProbe")(objects)
    _probe_removed("readinessProbe")(objects)
    (finding,) = [f for f in findings(objects, "PR-HC-001") if f.failed]
    assert "runs continuously but has no livenessProbe" in finding.message
    assert findings(objects, "PR-HC-002") == []


def test_init_containers_never_need_probes() -> None:
    objects = baseline()
    deployment(objects)["spec"]["template"]["spec"]["initContainers"] = [
        {"name": "migrate", "image": "shop/migrate:1", "ports": [{"containerPort": 1}]}
    ]
    assert {f.container for f in findings(objects, "PR-HC-001")} == {"app"}


@pytest.mark.parametrize(
    ("probe", "fragment"),
    [
        ({"tcpSocket": {"port": 8000}, "initialDelaySeconds": 5}, "only checks that the port"),
        ({"exec": {"command": ["sh", "-c", "exit 0"]}, "initialDelaySeconds": 5}, "no-op"),
        ({"exec": {"command": ["echo", "ok"]}, "initialDelaySeconds": 5}, "no-op"),
        ({"initialDelaySeconds": 5}, "has no handler"),
        ({"httpGet": {"path": "/livez", "port": 8000}}, "no initialDelaySeconds"),
        (
            {
                "httpGet": {"path": "/livez", "port": 8000},
                "initialDelaySeconds": 5,
                "periodSeconds": 5,
            },
            "less often",
        ),
    ],
)
def test_probe_quality_problems(probe: dict[str, Any], fragment: str) -> None:
    objects = baseline()
    app(objects)["livenessProbe"] = probe
    (finding,) = findings(objects, "PR-HC-003")
    assert finding.result is Result.WARN
    assert fragment in finding.message


def test_probe_quality_accepts_real_exec_checks_and_startup_probes() -> None:
    objects = baseline()
    app(objects)["livenessProbe"] = {"exec": {"command": ["pg_isready"]}}
    app(objects)["startupProbe"] = {"httpGet": {"path": "/livez", "port": 8000}}
    assert [f.result for f in findings(objects, "PR-HC-003")] == [Result.PASS]


def test_dependency_probes() -> None:
    objects = baseline()
    app(objects)["livenessProbe"]["httpGet"]["path"] = "/health/db"
    (finding,) = findings(objects, "PR-HC-004")
    assert finding.failed
    assert "looks like a dependency check" in finding.message
    objects = baseline()
    del app(objects)["readinessProbe"]
    (finding,) = findings(objects, "PR-HC-004")
    assert finding.failed
    assert "no readinessProbe" in finding.message


def test_dependencies_declared_by_annotation() -> None:
    objects = baseline()
    set_env(objects, "DATABASE_URL", None)
    app(objects)["env"] = [e for e in app(objects)["env"] if e["name"] != "DATABASE_URL"]
    assert findings(objects, "PR-HC-004") == []
    deployment(objects)["metadata"]["annotations"] = {
        "prodready.io/dependencies": '[{"name": "postgres", "type": "database"}]'
    }
    _same_probes(objects)
    (finding,) = findings(objects, "PR-HC-004")
    assert finding.failed
    assert "postgres" in finding.message


def test_malformed_dependency_annotation_declares_nothing() -> None:
    objects = baseline()
    app(objects)["env"] = [e for e in app(objects)["env"] if e["name"] != "DATABASE_URL"]
    deployment(objects)["metadata"]["annotations"] = {"prodready.io/dependencies": "{not json"}
    assert findings(objects, "PR-HC-004") == []


@pytest.mark.parametrize(
    ("env", "args", "grace", "result"),
    [
        ({}, [], 30, Result.PASS),  # nothing declared: the checklist's 30 s
        ({}, [], 20, Result.FAIL),
        ({"SHUTDOWN_TIMEOUT": "60s"}, [], 40, Result.FAIL),  # 60 s + 5 s preStop
        ({"SHUTDOWN_TIMEOUT": "1m"}, [], 65, Result.PASS),
        ({"SHUTDOWN_TIMEOUT": "10"}, [], 15, Result.PASS),
        ({}, ["--timeout-graceful-shutdown", "20"], 25, Result.PASS),
        ({}, ["--graceful-timeout=50"], 30, Result.FAIL),
        ({"SHUTDOWN_TIMEOUT": "soon"}, [], 30, Result.PASS),  # not a duration: the default
    ],
)
def test_grace_period_covers_the_declared_timeout(
    env: dict[str, str], args: list[str], grace: int, result: Result
) -> None:
    objects = baseline()
    for name, value in env.items():
        set_env(objects, name, value)
    app(objects)["args"] = args
    deployment(objects)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = grace
    (finding,) = findings(objects, "PR-GS-001")
    assert finding.result is result
    if result is Result.FAIL:
        assert finding.patch is not None
        assert finding.patch[0]["path"] == "/spec/template/spec/terminationGracePeriodSeconds"


def test_prestop_patch_keeps_a_declared_shutdown_budget() -> None:
    objects = baseline()
    _no_lifecycle(objects)
    set_env(objects, "SHUTDOWN_TIMEOUT", "40")
    (finding,) = findings(objects, "PR-GS-002")
    assert finding.patch == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/lifecycle",
            "value": {"preStop": {"sleep": {"seconds": 5}}},
        },
        {"op": "add", "path": "/spec/template/spec/terminationGracePeriodSeconds", "value": 45},
    ]


def test_prestop_accepts_exec_sleep_and_http_hooks() -> None:
    objects = baseline()
    app(objects)["lifecycle"] = {"preStop": {"exec": {"command": ["sh", "-c", "sleep 3"]}}}
    assert [f.result for f in findings(objects, "PR-GS-002")] == [Result.PASS]
    app(objects)["lifecycle"] = {"preStop": {"httpGet": {"path": "/drain", "port": 8000}}}
    assert [f.result for f in findings(objects, "PR-GS-002")] == [Result.PASS]


def test_rolling_update_default_and_daemonset() -> None:
    objects = baseline()
    del deployment(objects)["spec"]["strategy"]
    # 25% of the baseline's 3 replicas rounds down to 0: nothing is taken out (issue 17).
    assert [f.result for f in findings(objects, "PR-GS-003")] == [Result.PASS]
    deployment(objects)["spec"]["replicas"] = 4
    (finding,) = findings(objects, "PR-GS-003")
    assert "25%" in finding.message
    assert finding.patch == [
        {
            "op": "add",
            "path": "/spec/strategy",
            "value": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"},
            },
        }
    ]
    daemon = deployment(baseline())
    daemon["kind"] = "DaemonSet"
    del daemon["spec"]["strategy"]
    del daemon["spec"]["replicas"]
    (finding,) = findings([daemon], "PR-GS-003")
    assert finding.failed
    assert finding.patch is not None
    assert finding.patch[0]["value"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}


def test_rolling_update_is_judged_at_the_autoscalers_peak() -> None:
    objects = baseline()
    del deployment(objects)["spec"]["strategy"]
    objects.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 10,
            },
        }
    )
    (finding,) = findings(objects, "PR-GS-003")
    assert finding.failed


def test_log_settings_patches() -> None:
    objects = baseline()
    set_env(objects, "LOG_FORMAT", None)
    (finding,) = findings(objects, "PR-LG-001")
    assert finding.patch == [
        {
            "op": "add",
            "path": "/spec/template/spec/containers/0/env/-",
            "value": {"name": "LOG_FORMAT", "value": "json"},
        }
    ]
    objects = baseline()
    del app(objects)["env"]
    (finding,) = findings(objects, "PR-LG-001")
    assert finding.patch is not None
    assert finding.patch[0]["path"] == "/spec/template/spec/containers/0/env"
    objects = baseline()
    set_env(objects, "DEBUG", "True")
    (finding,) = findings(objects, "PR-ER-001")
    index = len(app(objects)["env"]) - 1
    assert finding.path == f"spec.template.spec.containers[0].env[{index}].value"
    assert finding.patch == [
        {
            "op": "replace",
            "path": f"/spec/template/spec/containers/0/env/{index}/value",
            "value": "false",
        }
    ]


@pytest.mark.parametrize(
    ("level", "result"),
    [("INFO", Result.PASS), ("warning", Result.PASS), ("30", Result.PASS), ("10", Result.WARN),
     ("trace", Result.WARN), ("loud", Result.WARN)],
)  # fmt: skip
def test_log_levels(level: str, result: Result) -> None:
    objects = baseline()
    set_env(objects, "LOG_LEVEL", level)
    assert [f.result for f in findings(objects, "PR-LG-002")] == [result]


def test_unset_log_level_and_debug_pass() -> None:
    objects = baseline()
    set_env(objects, "LOG_LEVEL", None)
    set_env(objects, "DEBUG", None)
    assert [f.result for f in findings(objects, "PR-LG-002")] == [Result.PASS]
    assert [f.result for f in findings(objects, "PR-ER-001")] == [Result.PASS]


def test_literal_secrets_are_named_never_echoed() -> None:
    objects = baseline()
    set_env(objects, "DB_PASSWORD", "hunter2-very-secret")
    set_env(objects, "CACHE_URL", "redis://user:pa55word@cache:6379/0")
    set_env(objects, "DB_PASSWORD_FILE", "/run/secrets/db")  # a path, not a secret
    set_env(objects, "SECRETARY_NAME", "Ann")  # not a secret word
    set_env(objects, "TOKEN", "$(OTHER_TOKEN)")  # a reference, not a literal
    report = report_of(objects)
    failing = [f for f in report.findings if f.rule_id == "PR-LG-003" and f.failed]
    assert sorted(f.message for f in failing) == [
        "container app: CACHE_URL embeds a password in a URL",
        "container app: DB_PASSWORD looks sensitive and carries a literal value",
    ]
    rendered = repr(report)
    assert "hunter2" not in rendered
    assert "pa55word" not in rendered


def test_secrets_in_visible_config_maps_fail_cf001() -> None:
    objects = baseline()
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "shop"},
            "data": {"API_KEY": "abc", "COLOUR": "blue"},
        }
    )
    app(objects)["envFrom"] = [{"configMapRef": {"name": "settings"}}]
    (finding,) = findings(objects, "PR-CF-001")
    assert finding.failed
    assert "API_KEY" in finding.message
    assert "abc" not in finding.message


def test_missing_secrets_only_judged_when_visible_or_complete() -> None:
    objects = baseline()
    drop(objects, "Secret")
    assert findings(objects, "PR-CF-002") == []
    objects.append(
        {
            "apiVersion": "external-secrets.io/v1beta1",
            "kind": "ExternalSecret",
            "metadata": {"name": "db", "namespace": "shop"},
            "spec": {"target": {"name": "db-credentials"}},
        }
    )
    assert [f.result for f in findings(objects, "PR-CF-002")] == [Result.PASS]


def test_every_kind_of_secret_reference_is_checked() -> None:
    objects = baseline()
    pod = deployment(objects)["spec"]["template"]["spec"]
    app(objects)["envFrom"] = [{"secretRef": {"name": "missing-env"}}]
    pod["volumes"].append(
        {
            "name": "certs",
            "secret": {"secretName": "db-credentials", "items": [{"key": "ca", "path": "ca"}]},
        }
    )
    pod["volumes"].append({"name": "p", "projected": {"sources": [{"secret": {"name": "gone"}}]}})
    pod["volumes"].append({"name": "o", "secret": {"secretName": "optional-one", "optional": True}})
    pod["imagePullSecrets"] = [{"name": "registry"}]
    report = evaluate(objects, config=_complete())[0]
    messages = sorted(f.message for f in report.findings if f.rule_id == "PR-CF-002" and f.failed)
    assert messages == [
        "Secret db-credentials has no key ca",
        "Secret gone does not exist",
        "Secret missing-env does not exist",
        "Secret registry does not exist",
    ]


def _complete() -> Any:
    from prodready.rules import RulesConfig

    return RulesConfig(secrets_complete=True)


def test_tls_problems() -> None:
    objects = baseline()
    first(objects, "Ingress")["spec"]["tls"][0]["hosts"] = ["other.example.com"]
    first(objects, "Ingress")["metadata"]["annotations"][
        "nginx.ingress.kubernetes.io/ssl-redirect"
    ] = "false"
    (finding,) = findings(objects, "PR-SC-001")
    assert "serves shop.example.com without TLS" in finding.message
    assert "turns off the HTTPS redirect" in finding.message
    objects = baseline()
    first(objects, "Ingress")["spec"]["tls"] = [{"secretName": "wildcard"}]
    assert [f.result for f in findings(objects, "PR-SC-001")] == [Result.PASS]


def test_load_balancer_tls() -> None:
    objects = baseline()
    drop(objects, "Ingress")
    service = first(objects, "Service")
    service["spec"]["type"] = "LoadBalancer"
    (finding,) = findings(objects, "PR-SC-001")
    assert "plain port(s) 80, 9090" in finding.message
    service["metadata"]["annotations"] = {
        "service.beta.kubernetes.io/aws-load-balancer-ssl-cert": "arn"
    }
    assert [f.result for f in findings(objects, "PR-SC-001")] == [Result.PASS]
    service["metadata"]["annotations"] = {}
    service["spec"]["ports"] = [{"name": "https", "port": 8443, "targetPort": "http"}]
    assert [f.result for f in findings(objects, "PR-SC-001")] == [Result.PASS]


def test_not_exposed_workloads_skip_tls_and_rate_limits() -> None:
    objects = baseline()
    drop(objects, "Ingress")
    assert findings(objects, "PR-SC-001") == []
    assert findings(objects, "PR-SC-003") == []


@pytest.mark.parametrize(
    ("annotations", "env", "result"),
    [
        ({"nginx.ingress.kubernetes.io/enable-cors": "true"}, None, Result.FAIL),  # default *
        (
            {
                "nginx.ingress.kubernetes.io/enable-cors": "true",
                "nginx.ingress.kubernetes.io/cors-allow-origin": "https://shop.example.com",
            },
            None,
            Result.PASS,
        ),
        ({}, '["https://a.example.com", "*"]', Result.FAIL),
        ({}, "https://a.example.com https://b.example.com", Result.PASS),
        ({}, None, Result.FAIL),
    ],
)
def test_cors(annotations: dict[str, str], env: str | None, result: Result) -> None:
    objects = baseline()
    first(objects, "Ingress")["metadata"]["annotations"].update(annotations)
    set_env(objects, "CORS_ALLOWED_ORIGINS", env)
    assert [f.result for f in findings(objects, "PR-SC-002")] == [result]


def test_cors_from_an_unseen_config_map_is_set_but_unknown() -> None:
    objects = baseline()
    set_env(objects, "CORS_ALLOWED_ORIGINS", None)
    app(objects)["envFrom"] = [{"configMapRef": {"name": "not-in-input"}}]
    (finding,) = findings(objects, "PR-SC-002")
    assert finding.result is Result.PASS


@pytest.mark.parametrize(
    ("annotations", "rate", "result"),
    [
        ({"nginx.ingress.kubernetes.io/limit-rpm": "600"}, None, Result.PASS),
        (
            {"traefik.ingress.kubernetes.io/router.middlewares": "shop-ratelimit@kubernetescrd"},
            None,
            Result.PASS,
        ),
        ({}, "off", Result.FAIL),
        ({}, "10/second", Result.PASS),
    ],
)
def test_rate_limits(annotations: dict[str, str], rate: str | None, result: Result) -> None:
    objects = baseline()
    first(objects, "Ingress")["metadata"]["annotations"] = annotations
    set_env(objects, "RATE_LIMIT", rate)
    assert [f.result for f in findings(objects, "PR-SC-003")] == [result]


def test_load_balancer_bypasses_ingress_rate_limits() -> None:
    objects = baseline()
    set_env(objects, "RATE_LIMIT", None)
    first(objects, "Service")["spec"]["type"] = "NodePort"
    assert [f.result for f in findings(objects, "PR-SC-003")] == [Result.FAIL]


def test_security_context_patch() -> None:
    objects = baseline()
    app(objects)["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN"]}}
    (finding,) = findings(objects, "PR-SC-004")
    assert "is privileged" in finding.message
    base = "/spec/template/spec/containers/0/securityContext"
    assert finding.patch == [
        {"op": "add", "path": f"{base}/privileged", "value": False},
        {"op": "add", "path": f"{base}/allowPrivilegeEscalation", "value": False},
        {"op": "add", "path": f"{base}/readOnlyRootFilesystem", "value": True},
        {"op": "add", "path": f"{base}/capabilities/drop", "value": ["ALL"]},
    ]
    app(objects)["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}
    (finding,) = findings(objects, "PR-SC-004")
    assert finding.patch is not None
    assert finding.patch[-1] == {"op": "add", "path": f"{base}/capabilities/drop/-", "value": "ALL"}


def test_root_user_has_no_automatic_fix() -> None:
    objects = baseline()
    app(objects)["securityContext"]["runAsUser"] = 0
    (finding,) = findings(objects, "PR-SC-004")
    assert "runs as root" in finding.message
    assert finding.patch is None
    app(objects)["securityContext"]["runAsUser"] = 1000
    deployment(objects)["spec"]["template"]["spec"]["securityContext"] = {}
    assert [f.result for f in findings(objects, "PR-SC-004")] == [Result.PASS]


@pytest.mark.parametrize(
    ("image", "result", "fragment"),
    [
        ("shop/api", Result.WARN, "has no tag"),
        ("localhost:5000/shop/api", Result.WARN, "has no tag"),
        ("localhost:5000/shop/api:2.0", Result.PASS, "pinned to tag 2.0; in prod a digest"),
        ("shop/api@sha256:" + "a" * 64, Result.PASS, "by digest"),
        ("", Result.WARN, "names no image"),
    ],
)
def test_image_pinning(image: str, result: Result, fragment: str) -> None:
    objects = baseline()
    app(objects)["image"] = image
    (finding,) = findings(objects, "PR-SC-005")
    assert finding.result is result
    assert fragment in finding.message


def test_metrics_scraping_sources() -> None:
    objects = baseline()
    drop(objects, "ServiceMonitor")
    (finding,) = findings(objects, "PR-MO-001")
    assert "port metrics of container app is declared" in finding.message
    deployment(objects)["spec"]["template"]["metadata"]["annotations"] = {
        "prometheus.io/scrape": "true"
    }
    assert [f.result for f in findings(objects, "PR-MO-001")] == [Result.PASS]
    objects = baseline()
    drop(objects, "ServiceMonitor")
    first(objects, "Service")["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    assert [f.result for f in findings(objects, "PR-MO-001")] == [Result.PASS]
    objects = baseline()
    drop(objects, "ServiceMonitor")
    objects.append(
        {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PodMonitor",
            "metadata": {"name": "pods", "namespace": "monitoring"},
            "spec": {
                "namespaceSelector": {"matchNames": ["shop"]},
                "selector": {"matchLabels": {"app": "api"}},
                "podMetricsEndpoints": [{"port": "metrics"}],
            },
        }
    )
    (finding,) = findings(objects, "PR-MO-001")
    assert finding.result is Result.PASS
    assert "PodMonitor pods" in finding.message


def test_service_monitor_must_name_a_service_port() -> None:
    objects = baseline()
    first(objects, "ServiceMonitor")["spec"]["endpoints"] = [{"port": "nope"}]
    del app(objects)["ports"][1]
    (finding,) = findings(objects, "PR-MO-001")
    assert finding.failed
    assert "no metrics endpoint" in finding.message


@pytest.mark.parametrize(
    ("metadata", "expr", "result"),
    [
        ({"name": "api"}, "up == 0", Result.PASS),
        ({"name": "api-slo"}, "up == 0", Result.PASS),
        ({"name": "generic"}, 'up{job="api"} == 0', Result.PASS),
        (
            {"name": "generic", "labels": {"app.kubernetes.io/name": "other"}},
            "up == 0",
            Result.WARN,
        ),
        (
            {
                "name": "generic",
                "labels": {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "x"},
            },
            "up == 0",
            Result.PASS,  # the workload has no instance label: the name label decides
        ),
    ],
)
def test_prometheus_rule_matching(metadata: dict[str, Any], expr: str, result: Result) -> None:
    objects = baseline()
    rule = first(objects, "PrometheusRule")
    rule["metadata"] = {**metadata, "namespace": "shop"}
    rule["spec"]["groups"][0]["rules"][0]["expr"] = expr
    assert [f.result for f in findings(objects, "PR-MO-002")] == [result]


def test_recording_rules_are_not_alerts() -> None:
    objects = baseline()
    first(objects, "PrometheusRule")["spec"]["groups"][0]["rules"] = [{"record": "x", "expr": "y"}]
    assert [f.result for f in findings(objects, "PR-MO-002")] == [Result.WARN]


def test_replicas_from_hpa_and_blocking_budgets() -> None:
    objects = baseline()
    objects.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "api", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "api"}, "minReplicas": 1},
        }
    )
    (finding,) = findings(objects, "PR-RS-002")
    assert "the HPA's minReplicas is 1" in finding.message
    assert finding.patch is None  # the fix belongs on the HPA
    objects = baseline()
    first(objects, "PodDisruptionBudget")["spec"] = {
        "minAvailable": 3,
        "selector": {"matchLabels": {"app": "api"}},
    }
    (finding,) = findings(objects, "PR-RS-002")
    assert "blocks every eviction" in finding.message


def test_bare_pods_and_missing_budgets() -> None:
    objects = baseline()
    drop(objects, "PodDisruptionBudget")
    (finding,) = findings(objects, "PR-RS-002")
    assert "no PodDisruptionBudget" in finding.message
    template = deployment(baseline())["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"prodready.io/environment": "prod"}},
        "spec": template["spec"],
    }
    (finding,) = findings([pod], "PR-RS-002")
    assert "bare Pod" in finding.message


def test_statefulset_scratch_space() -> None:
    objects = baseline()
    workload = deployment(objects)
    workload["kind"] = "StatefulSet"
    del workload["spec"]["strategy"]
    assert [f.result for f in findings(objects, "PR-RS-003")] == [Result.PASS]  # /tmp is scratch
    workload["spec"]["template"]["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "tmp", "mountPath": "/srv/state"}
    )
    (finding,) = findings(objects, "PR-RS-003")
    assert finding.failed
    assert "/srv/state" in finding.message
    assert finding.path == "spec.template.spec.volumes[0]"


def test_host_path_data() -> None:
    objects = baseline()
    deployment(objects)["spec"]["template"]["spec"]["volumes"].append(
        {"name": "h", "hostPath": {"path": "/mnt"}}
    )
    app(objects)["volumeMounts"].append({"name": "h", "mountPath": "/data"})
    (finding,) = findings(objects, "PR-RS-003")
    assert "hostPath" in finding.message


def test_batch_workloads_get_batch_rules_only() -> None:
    template = deployment(baseline())["spec"]["template"]
    cron = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "nightly",
            "namespace": "shop",
            "labels": {"prodready.io/environment": "prod"},
        },
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }
    report = report_of([cron])
    rules = {f.rule_id for f in report.findings}
    assert "PR-HC-001" not in rules
    assert "PR-MO-001" not in rules
    assert "PR-RS-002" not in rules
    assert {"PR-LG-001", "PR-SC-004", "PR-RS-001", "PR-GS-001"} <= rules
    finding = next(f for f in report.findings if f.rule_id == "PR-SC-004")
    assert finding.path == "spec.jobTemplate.spec.template.spec.containers[0].securityContext"


def test_controlled_pods_are_not_evaluated() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "api-1",
            "ownerReferences": [{"kind": "ReplicaSet", "name": "api", "controller": True}],
        },
        "spec": {"containers": [{"name": "app", "image": "x:1"}]},
    }
    assert evaluate([pod]) == []


def test_malformed_objects_do_not_crash() -> None:
    weird: list[Any] = [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": "nope", "spec": []},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
         "spec": {"template": {"spec": {"containers": ["nope", {"env": "x", "ports": 3}],
                                        "volumes": "x"}}}},
        {"kind": "Service", "spec": {"selector": ["x"]}},
        {"kind": "PodDisruptionBudget", "spec": {"selector": {"matchLabels": "x"}}},
        "not an object",
    ]  # fmt: skip
    reports = evaluate(weird)
    assert len(reports) == 2
    assert all(not r.compliant for r in reports)

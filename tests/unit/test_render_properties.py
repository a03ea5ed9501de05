"""Properties of `render` over generated valid ProductionServices.

Every rendered object validates against the real schema of its kind: Kubernetes' own
OpenAPI schema (kubernetes-validate, strict: unknown fields are errors) and, for
ServiceMonitor and PrometheusRule, prometheus-operator's CRD schema (made strict the
same way). Rendering is deterministic and never mutates its input.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from hypothesis import given, settings, strategies as st

from prodready.api import API_VERSION, KIND, parse_production_service
from prodready.api.crd import apply_defaults, openapi_schema
from prodready.api.sensitive import is_sensitive_name
from prodready.render import CHILD_KINDS, render
from prodready.render.command import format_objects

REPO = Path(__file__).resolve().parents[2]
CRD_FIXTURES = REPO / "tests" / "fixtures" / "crds"
KUBERNETES_VERSION = kubernetes_validate.utils.latest_version()
RESERVED = {"ENVIRONMENT", "LOG_FORMAT", "LOG_LEVEL", "DEBUG", "CORS_ALLOWED_ORIGINS", "RATE_LIMIT"}
PROPERTY_SETTINGS = settings(max_examples=50, deadline=None)


# -- schemas -------------------------------------------------------------------------------


def make_strict(schema: Any) -> Any:
    """Reject unknown fields wherever a structural schema lists properties."""
    if isinstance(schema, dict):
        strict = {key: make_strict(value) for key, value in schema.items()}
        if "properties" in strict and not strict.get("x-kubernetes-preserve-unknown-fields"):
            strict["additionalProperties"] = False
        return strict
    if isinstance(schema, list):
        return [make_strict(item) for item in schema]
    return schema


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft4Validator:
    """The strict validator for a vendored prometheus-operator kind."""
    for path in CRD_FIXTURES.glob("*.yaml"):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            return jsonschema.Draft4Validator(make_strict(schema))
    raise LookupError(kind)


def validate_object(obj: dict[str, Any]) -> None:
    """Raise when the object does not match its kind's real schema."""
    if obj["apiVersion"].startswith("monitoring.coreos.com/"):
        crd_validator(obj["kind"]).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_validators_reject_unknown_fields() -> None:
    """The checks below would prove nothing if unknown fields slipped through."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "a"},
        "spec": {"selector": {}, "template": {}, "replica": 1},
    }
    try:
        validate_object(deployment)
    except kubernetes_validate.ValidationError:
        pass
    else:
        raise AssertionError("kubernetes-validate accepted an unknown field")
    monitor = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "a"},
        "spec": {"selector": {}, "endpoint": []},
    }
    assert not crd_validator("ServiceMonitor").is_valid(monitor)


# -- strategies ----------------------------------------------------------------------------

dns_labels = st.from_regex(r"[a-z]([-a-z0-9]{0,14}[a-z0-9])?", fullmatch=True)
env_names = st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True).filter(
    lambda name: name not in RESERVED and not is_sensitive_name(name)
)
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
paths = st.from_regex(r"/[a-z0-9/_-]{0,12}", fullmatch=True)
durations = st.sampled_from(["15s", "30s", "1m", "5m", "1h30m"])


@st.composite
def health(draw: st.DrawFn) -> dict[str, Any]:
    liveness_period = draw(st.integers(1, 120))
    return {
        "path": draw(paths),
        "liveness": {
            "path": draw(st.none() | paths),
            "initialDelaySeconds": draw(st.integers(0, 60)),
            "periodSeconds": liveness_period,
            "timeoutSeconds": draw(st.integers(1, 10)),
            "failureThreshold": draw(st.integers(1, 10)),
        },
        "readiness": {
            "initialDelaySeconds": draw(st.integers(0, 60)),
            "periodSeconds": draw(st.integers(1, liveness_period)),
        },
        "startup": {"enabled": draw(st.booleans()), "failureThreshold": draw(st.integers(1, 60))},
        "dependencies": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"name": dns_labels, "type": st.sampled_from(["database", "redis", "external"])}
                ),
                max_size=3,
                unique_by=lambda d: d["name"],
            )
        ),
    }


@st.composite
def resources(draw: st.DrawFn) -> dict[str, Any]:
    cpu = draw(st.integers(10, 4000))
    memory = draw(st.integers(16, 4096))
    limits: dict[str, Any] = {"memory": f"{draw(st.integers(memory, 8192))}Mi"}
    if draw(st.booleans()):
        limits["cpu"] = draw(st.sampled_from([f"{draw(st.integers(cpu, 8000))}m", 8]))
    return {"requests": {"cpu": f"{cpu}m", "memory": f"{memory}Mi"}, "limits": limits}


@st.composite
def production_services(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ProductionService dict, covering every optional part of the spec."""
    name = draw(dns_labels)
    environment = draw(st.sampled_from(["dev", "staging", "prod"]))
    variable_names = draw(st.lists(env_names, max_size=8, unique=True))
    split = draw(st.integers(0, len(variable_names)))
    exemptions = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "rule": st.sampled_from(["PR-RS-002", "PR-SC-005", "PR-SC-001", "PR-LG-003"]),
                    "reason": st.text(min_size=1, max_size=20),
                }
            ),
            max_size=2,
            unique_by=lambda e: e["rule"],
        )
    )
    exempt_replicas = any(e["rule"] == "PR-RS-002" for e in exemptions)
    minimum = 2 if environment == "prod" and not exempt_replicas else 0
    http_port = draw(st.integers(1, 65535))
    spec: dict[str, Any] = {
        "image": draw(st.sampled_from(["ghcr.io/example/api", "api", "registry:5000/a/b"]))
        + draw(st.sampled_from([":1.0", ":latest", "", "@sha256:" + "a" * 64])),
        "environment": environment,
        "replicas": draw(st.integers(max(minimum, 0), 10)),
        "ports": {"http": http_port, "metrics": draw(st.none() | st.integers(1, 65535))},
        "health": draw(health()),
        "shutdown": draw(
            st.integers(1, 300).flatmap(
                lambda grace: st.fixed_dictionaries(
                    {
                        "gracePeriodSeconds": st.just(grace),
                        "preStopDelaySeconds": st.integers(0, grace - 1),
                    }
                )
            )
        ),
        "env": [{"name": n, "value": draw(text)} for n in variable_names[:split]],
        "secretEnv": [
            {
                "name": n,
                "secretName": draw(dns_labels),
                "key": draw(st.from_regex(r"[a-z][a-z0-9.-]{0,10}", fullmatch=True)),
                "optional": draw(st.booleans()),
            }
            for n in variable_names[split:]
        ],
        "envFromSecrets": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"secretName": dns_labels},
                    optional={"prefix": st.sampled_from(["", "APP_"]), "optional": st.booleans()},
                ),
                max_size=2,
            )
        ),
        "logging": {
            "format": draw(st.sampled_from(["json", "text"])),
            "level": draw(st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR"])),
        },
        "security": {
            "corsAllowedOrigins": draw(
                st.lists(
                    dns_labels.map(lambda h: f"https://{h}.example.com") | st.just("*"), max_size=3
                )
            ),
            "rateLimit": draw(st.none() | st.sampled_from(["100/minute", "10/second", "5000/day"])),
            "debug": draw(st.booleans()),
        },
        "metrics": {
            "enabled": draw(st.booleans()),
            "path": draw(paths),
            "interval": draw(durations),
            "alerts": {
                "enabled": draw(st.booleans()),
                "errorRatePercent": draw(st.floats(0.01, 100, allow_nan=False)),
                "for": draw(durations),
                "latencyP99Seconds": draw(st.none() | st.floats(0.001, 60)),
                "labels": draw(
                    st.dictionaries(st.sampled_from(["team", "tier"]), dns_labels, max_size=2)
                ),
            },
        },
        "resources": draw(resources()),
        "pod": {
            "serviceAccountName": draw(st.none() | dns_labels),
            "automountServiceAccountToken": draw(st.booleans()),
            "imagePullSecrets": draw(st.lists(dns_labels, max_size=2, unique=True)),
            "nodeSelector": draw(
                st.dictionaries(st.sampled_from(["pool", "zone"]), dns_labels, max_size=2)
            ),
            "tolerations": draw(
                st.lists(
                    st.fixed_dictionaries(
                        {"key": dns_labels, "operator": st.just("Exists")},
                        optional={"effect": st.sampled_from(["NoSchedule", "NoExecute"])},
                    ),
                    max_size=2,
                )
            ),
            "labels": draw(
                st.dictionaries(st.sampled_from(["team", "tier"]), dns_labels, max_size=2)
            ),
            "annotations": draw(
                st.dictionaries(st.sampled_from(["team", "example.com/x"]), text, max_size=2)
            ),
            "runAsUser": draw(st.none() | st.integers(1, 65534)),
        },
        "exemptions": exemptions,
        "command": draw(st.lists(text, max_size=2)),
        "args": draw(st.lists(text, max_size=3)),
    }
    if draw(st.booleans()):
        spec["health"]["port"] = draw(st.sampled_from([http_port, 1 + http_port % 65535]))
    if draw(st.booleans()):
        exposure: dict[str, Any] = {"host": draw(dns_labels) + ".example.com", "path": draw(paths)}
        if draw(st.booleans()):
            exposure["tlsSecretName"] = draw(dns_labels)
        if draw(st.booleans()):
            exposure["ingressClassName"] = "nginx"
        spec["exposure"] = exposure
    if draw(st.booleans()):
        low = draw(st.integers(max(minimum, 1), 5))
        spec["autoscaling"] = {
            "minReplicas": low,
            "maxReplicas": draw(st.integers(low, 20)),
            "targetCPUUtilizationPercentage": draw(st.integers(1, 100)),
        }
    metadata: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        metadata["namespace"] = draw(dns_labels)
    if draw(st.booleans()):
        metadata["uid"] = "6f2b1c9e-0000-4000-8000-000000000000"
    metadata["labels"] = draw(
        st.dictionaries(
            st.sampled_from(["team", "app.kubernetes.io/part-of"]), dns_labels, max_size=2
        )
    )
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": drop_none(spec)}


def drop_none(value: Any) -> Any:
    """What a user writes (and the apiserver keeps): absent rather than null."""
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(item) for item in value]
    return value


# -- properties ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(production_services())
def test_generated_services_are_valid_models_and_crd_objects(obj: dict[str, Any]) -> None:
    ps = parse_production_service(obj)
    schema = openapi_schema()
    defaulted = apply_defaults(obj, schema)
    jsonschema.Draft4Validator(make_strict(schema)).validate(defaulted)
    assert parse_production_service(defaulted) == ps


@PROPERTY_SETTINGS
@given(production_services())
def test_every_rendered_object_matches_its_real_schema(obj: dict[str, Any]) -> None:
    for rendered in render(obj):
        validate_object(rendered)


@PROPERTY_SETTINGS
@given(production_services())
def test_rendering_is_deterministic_and_pure(obj: dict[str, Any]) -> None:
    before = copy.deepcopy(obj)
    first = render(obj)
    assert obj == before
    second = render(copy.deepcopy(obj))
    assert format_objects(first, "yaml") == format_objects(second, "yaml")
    assert format_objects(first, "json") == format_objects(second, "json")


@PROPERTY_SETTINGS
@given(production_services())
def test_children_are_consistent(obj: dict[str, Any]) -> None:
    ps = parse_production_service(obj)
    objects = render(obj)
    by_kind = {o["kind"]: o for o in objects}
    order = [kind.kind for kind in CHILD_KINDS]
    assert [o["kind"] for o in objects] == [k for k in order if k in by_kind]
    for rendered in objects:
        assert (rendered["apiVersion"], rendered["kind"]) in {
            (k.api_version, k.kind) for k in CHILD_KINDS
        }
        metadata = rendered["metadata"]
        assert metadata["name"] == ps.name
        assert metadata["namespace"] == ps.namespace
        assert metadata["labels"]["prodready.io/service"] == ps.name
        assert metadata["labels"]["app.kubernetes.io/managed-by"] == "prodready"
        assert ("ownerReferences" in metadata) == bool(ps.metadata.uid)

    deployment, service = by_kind["Deployment"], by_kind["Service"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    template = deployment["spec"]["template"]
    assert service["spec"]["selector"] == selector
    assert selector.items() <= template["metadata"]["labels"].items()
    assert template["metadata"]["labels"]["prodready.io/environment"] == ps.spec.environment.value
    (container,) = template["spec"]["containers"]
    assert {"livenessProbe", "readinessProbe"} <= container.keys()
    container_ports = {port["name"] for port in container["ports"]}
    service_ports = {port["name"] for port in service["spec"]["ports"]}
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= container_ports
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        port = container.get(probe, {}).get("httpGet", {}).get("port")
        assert port is None or isinstance(port, int) or port in container_ports

    assert ("replicas" in deployment["spec"]) == (ps.spec.autoscaling is None)
    assert ("HorizontalPodAutoscaler" in by_kind) == (ps.spec.autoscaling is not None)
    assert ("PodDisruptionBudget" in by_kind) == (ps.spec.effective_min_replicas() >= 2)
    assert ("Ingress" in by_kind) == (ps.spec.exposure is not None)
    assert ("ServiceMonitor" in by_kind) == ps.spec.metrics.enabled
    if "ServiceMonitor" in by_kind:
        assert by_kind["ServiceMonitor"]["spec"]["endpoints"][0]["port"] in service_ports
    if "Ingress" in by_kind:
        backend = by_kind["Ingress"]["spec"]["rules"][0]["http"]["paths"][0]["backend"]
        assert backend["service"]["port"]["name"] in service_ports

    env = {entry["name"]: entry for entry in container["env"]}
    for name in ps.spec.settings_variables()[:4]:
        assert "value" in env[name]
    for entry in container["env"]:
        if "valueFrom" in entry:
            assert set(entry["valueFrom"]) == {"secretKeyRef"}
        elif entry["value"] and not ps.spec.is_exempt("PR-LG-003"):
            assert not is_sensitive_name(entry["name"]), entry["name"]
    # Secret values never reach a rendered object: only names and keys do.
    assert "stringData" not in json.dumps(objects)

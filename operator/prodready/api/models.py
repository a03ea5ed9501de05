"""The ProductionService API, modelled once: these classes validate objects in Python and
are the source the CRD's OpenAPI schema is generated from (`prodready.api.crd`).

Field descriptions become what `kubectl explain productionservice.spec…` prints. Every
cross-field rule exists twice, side by side: as a pydantic validator (so `prodready
render` and the controller refuse the object with a SpecError naming field and rule) and
as a CEL `x-kubernetes-validations` rule in the CRD (so the apiserver refuses it before
it is stored). `tests/unit/test_api_models.py` and the e2e tests check both agree.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

from prodready.api.cel import cel, validations
from prodready.api.environment import Environment as Environment  # noqa: PLC0414 - re-export
from prodready.api.errors import SCHEMA_RULE
from prodready.api.labels import RESERVED_PREFIXES
from prodready.api.quantity import QUANTITY_PATTERN, parse_quantity
from prodready.api.sensitive import DEFAULT as SENSITIVE_NAMES, is_sensitive_name

GROUP: Final = "prodready.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ProductionService"
LIST_KIND: Final = "ProductionServiceList"
PLURAL: Final = "productionservices"
SINGULAR: Final = "productionservice"
SHORT_NAMES: Final = ("ps", "prodsvc")
CATEGORIES: Final = ("prodready",)

# Condition types the controller writes into status.conditions.
CONDITION_READY: Final = "Ready"
CONDITION_RECONCILING: Final = "Reconciling"
CONDITION_STALLED: Final = "Stalled"
CONDITION_POLICY_COMPLIANT: Final = "PolicyCompliant"
CONDITION_MONITORING_READY: Final = "MonitoringReady"

MAX_FINDINGS: Final = 50
"""status.compliance.findings holds at most this many; the rest are only counted."""

# Patterns, in RE2 syntax so the apiserver accepts them too.
DNS_LABEL_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_1035_LABEL_PATTERN: Final = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
HOST_PATTERN: Final = r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME_PATTERN: Final = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
DATA_KEY_PATTERN: Final = r"^[-._a-zA-Z0-9]+$"
HTTP_PATH_PATTERN: Final = r"^/[^\s?#]*$"
# A rule ID: a checklist rule (PR-HC-001) or a policy's own custom rule (ACME-OWN-001). The
# checklist's IDs fit the custom shape; a custom rule's own ID may not start with PR-. One
# definition for a ProductionService's exemptions and a ReadinessPolicy's rule lists.
RULE_ID_PATTERN_ANY: Final = r"^[A-Z][A-Z0-9]{1,9}-[A-Z0-9]{1,10}(-[A-Z0-9]{1,10})?$"
RULE_ID_MAX_LENGTH: Final = 24
# The pattern prometheus-operator gives its Duration type, so a ServiceMonitor we render
# never fails its own schema.
DURATION_PATTERN: Final = (
    r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?"
    r"(([0-9]+)ms)?)$"
)
RATE_LIMIT_PATTERN: Final = r"^[1-9][0-9]*/(second|minute|hour|day)$"
CORS_ORIGIN_PATTERN: Final = r"^(\*|https?://[^\s,/]+)$"
IMAGE_PATTERN: Final = r"^[^\s]+$"


def _violation(rule: str, field: str, message: str) -> PydanticCustomError:
    """A validator error that carries the checklist rule and the field path below the model.

    `prodready.api.parse` turns it into a SpecError with the full path.
    """
    return PydanticCustomError(
        "prodready_rule", "{message}", {"rule": rule, "field": field, "message": message}
    )


def _int_to_str(value: Any) -> Any:
    # Quantities may be written as YAML integers (`cpu: 1`); Kubernetes stores them as
    # strings, and so do we.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Quantity = Annotated[
    str,
    BeforeValidator(_int_to_str),
    Field(pattern=QUANTITY_PATTERN, max_length=64),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity such as `100m`, `128Mi` or `1`."""

Port = Annotated[int, Field(ge=1, le=65535)]


class _Model(BaseModel):
    """Spec models: camelCase on the wire, unknown fields are errors, values immutable."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class Ports(_Model):
    """Ports the container listens on."""

    http: Port = Field(8000, description="Port of the HTTP server (seed: uvicorn on 8000).")
    metrics: Port | None = Field(
        None,
        description="Port serving Prometheus metrics; defaults to the HTTP port, where "
        "FastAPI apps usually mount /metrics.",
    )


class LivenessProbe(_Model):
    """Liveness probe timings: a failing liveness probe restarts the container."""

    path: str | None = Field(
        None,
        pattern=HTTP_PATH_PATTERN,
        max_length=1024,
        description="Path for the liveness probe; defaults to health.path. Set a path that "
        "does not check dependencies (for example /health/live) so a database outage "
        "takes pods out of rotation instead of restarting them (PR-HC-004).",
    )
    initial_delay_seconds: int = Field(
        10, ge=0, le=3600, description="Seconds after start before the first probe."
    )
    period_seconds: int = Field(30, ge=1, le=3600, description="Seconds between probes.")
    timeout_seconds: int = Field(5, ge=1, le=3600, description="Seconds before a probe fails.")
    failure_threshold: int = Field(
        3, ge=1, le=100, description="Consecutive failures before the container is restarted."
    )


class ReadinessProbe(_Model):
    """Readiness probe timings: a failing readiness probe removes the pod from Services."""

    initial_delay_seconds: int = Field(
        5, ge=0, le=3600, description="Seconds after start before the first probe."
    )
    period_seconds: int = Field(
        10,
        ge=1,
        le=3600,
        description="Seconds between probes; at most liveness.periodSeconds (PR-HC-003).",
    )
    timeout_seconds: int = Field(5, ge=1, le=3600, description="Seconds before a probe fails.")
    failure_threshold: int = Field(
        3, ge=1, le=100, description="Consecutive failures before the pod is marked not ready."
    )


class StartupProbe(_Model):
    """Startup probe: holds liveness off until the application has started."""

    enabled: bool = Field(True, description="Render a startup probe on the health path.")
    period_seconds: int = Field(5, ge=1, le=3600, description="Seconds between probes.")
    timeout_seconds: int = Field(5, ge=1, le=3600, description="Seconds before a probe fails.")
    failure_threshold: int = Field(
        30,
        ge=1,
        le=1000,
        description="Failures allowed while starting: the start-up budget is "
        "periodSeconds × failureThreshold (default 150 s).",
    )


class DependencyType(StrEnum):
    """What kind of dependency the health endpoint checks."""

    DATABASE = "database"
    REDIS = "redis"
    EXTERNAL = "external"


class Dependency(_Model):
    """A dependency the health endpoint checks."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_LABEL_PATTERN,
        description="Name of the dependency, e.g. postgres.",
    )
    type: DependencyType = Field(description="database, redis or external.")


_CEL_READINESS_PERIOD = cel(
    "self.readiness.periodSeconds <= self.liveness.periodSeconds",
    "PR-HC-003: health.readiness.periodSeconds must not exceed "
    "health.liveness.periodSeconds: a pod must leave rotation before it is restarted",
    field_path=".readiness.periodSeconds",
)


class Health(_Model):
    """The health endpoint and the probes that call it (PR-HC-001..004)."""

    model_config = ConfigDict(json_schema_extra=validations(_CEL_READINESS_PERIOD))

    path: str = Field(
        "/health",
        pattern=HTTP_PATH_PATTERN,
        max_length=1024,
        description="HTTP path of the health endpoint: 200 when healthy, 503 when not.",
    )
    port: Port | None = Field(
        None, description="Port of the health endpoint; defaults to ports.http."
    )
    liveness: LivenessProbe = Field(
        LivenessProbe(),
        description="Liveness probe (seed: initialDelaySeconds 10, periodSeconds 30).",
    )
    readiness: ReadinessProbe = Field(
        ReadinessProbe(),
        description="Readiness probe (seed: initialDelaySeconds 5, periodSeconds 10).",
    )
    startup: StartupProbe = Field(
        StartupProbe(), description="Startup probe, so slow starts are not killed by liveness."
    )
    dependencies: list[Dependency] = Field(
        [],
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Dependencies the health endpoint checks (database, redis, external). "
        "They are checked by readiness, not liveness (PR-HC-004); prodready records them "
        "in the prodready.io/dependencies annotation of the Deployment.",
    )

    @model_validator(mode="after")
    def _readiness_within_liveness(self) -> Self:
        if self.readiness.period_seconds > self.liveness.period_seconds:
            raise _violation(
                "PR-HC-003",
                "readiness.periodSeconds",
                f"readiness.periodSeconds ({self.readiness.period_seconds}) must not exceed "
                f"liveness.periodSeconds ({self.liveness.period_seconds}): a pod must leave "
                "rotation before it is restarted",
            )
        return self


_CEL_PRESTOP_WITHIN_GRACE = cel(
    "self.preStopDelaySeconds < self.gracePeriodSeconds",
    "PR-GS-002: shutdown.preStopDelaySeconds must be less than "
    "shutdown.gracePeriodSeconds, or the container is killed before it gets SIGTERM",
    field_path=".preStopDelaySeconds",
)


class Shutdown(_Model):
    """Graceful shutdown (PR-GS-001, PR-GS-002)."""

    model_config = ConfigDict(json_schema_extra=validations(_CEL_PRESTOP_WITHIN_GRACE))

    grace_period_seconds: int = Field(
        30,
        ge=1,
        le=3600,
        description="The pod's terminationGracePeriodSeconds: the time from the start of "
        "termination (the preStop delay included) until SIGKILL (seed: 30 s).",
    )
    pre_stop_delay_seconds: int = Field(
        5,
        ge=0,
        le=3599,
        description="Seconds the preStop hook sleeps before SIGTERM so endpoints and load "
        "balancers stop sending traffic first; 0 disables the hook.",
    )

    @model_validator(mode="after")
    def _pre_stop_within_grace(self) -> Self:
        if self.pre_stop_delay_seconds >= self.grace_period_seconds:
            raise _violation(
                "PR-GS-002",
                "preStopDelaySeconds",
                f"preStopDelaySeconds ({self.pre_stop_delay_seconds}) must be less than "
                f"gracePeriodSeconds ({self.grace_period_seconds}), or the container is "
                "killed before it gets SIGTERM",
            )
        return self


class EnvVar(_Model):
    """A plain environment variable. Never a secret: use secretEnv for those (PR-LG-003)."""

    name: str = Field(
        min_length=1, max_length=128, pattern=ENV_NAME_PATTERN, description="Variable name."
    )
    value: str = Field("", max_length=32768, description="Literal value.")


class SecretEnvVar(_Model):
    """An environment variable read from one key of a Secret (PR-CF-001)."""

    name: str = Field(
        min_length=1, max_length=128, pattern=ENV_NAME_PATTERN, description="Variable name."
    )
    secret_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret, in the ProductionService's namespace.",
    )
    key: str = Field(
        min_length=1, max_length=253, pattern=DATA_KEY_PATTERN, description="Key in the Secret."
    )
    optional: bool = Field(
        False, description="Start the container even if the Secret or key is missing."
    )


class SecretEnvSource(_Model):
    """Every key of a Secret as environment variables (envFrom secretRef)."""

    secret_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Name of the Secret, in the ProductionService's namespace.",
    )
    prefix: str = Field(
        "",
        max_length=128,
        pattern=r"^([A-Za-z_][A-Za-z0-9_.-]*)?$",
        description="Prefix added to every variable name.",
    )
    optional: bool = Field(False, description="Start the container even if the Secret is missing.")


class LogFormat(StrEnum):
    """Log output format."""

    JSON = "json"
    TEXT = "text"


class LogLevel(StrEnum):
    """Log level."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"


class Logging(_Model):
    """Structured logging settings, passed to the app as environment variables (PR-LG-001/002)."""

    format: LogFormat = Field(LogFormat.JSON, description="json (required by PR-LG-001) or text.")
    level: LogLevel = Field(
        LogLevel.INFO,
        description="DEBUG, INFO, WARNING or ERROR; INFO or above in prod (PR-LG-002).",
    )
    format_variable: str = Field(
        "LOG_FORMAT",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries the format.",
    )
    level_variable: str = Field(
        "LOG_LEVEL",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries the level.",
    )


class Security(_Model):
    """Application security settings, passed as environment variables (PR-ER-001, PR-SC-002/003)."""

    cors_allowed_origins: list[
        Annotated[str, Field(max_length=253, pattern=CORS_ORIGIN_PATTERN)]
    ] = Field(
        [],
        max_length=64,
        description="Origins allowed by CORS, e.g. https://app.example.com; never * in prod "
        "(PR-SC-002). Passed comma-separated; the variable is unset when the list is empty.",
    )
    rate_limit: str | None = Field(
        None,
        pattern=RATE_LIMIT_PATTERN,
        max_length=32,
        description="Rate limit of public endpoints, e.g. 100/minute (PR-SC-003); the "
        "variable is unset when this is.",
    )
    debug: bool = Field(
        False,
        description="Debug mode (stack traces in responses); must be off in prod (PR-ER-001).",
    )
    cors_variable: str = Field(
        "CORS_ALLOWED_ORIGINS",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries the CORS origins.",
    )
    rate_limit_variable: str = Field(
        "RATE_LIMIT",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries the rate limit.",
    )
    debug_variable: str = Field(
        "DEBUG",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries debug (true/false).",
    )


class Alerts(_Model):
    """Alerts rendered as a PrometheusRule (PR-MO-002)."""

    enabled: bool = Field(True, description="Render a PrometheusRule with the alerts below.")
    error_rate_percent: float = Field(
        5.0,
        gt=0,
        le=100,
        description="Alert when more than this percentage of requests answer 5xx.",
    )
    for_: str = Field(
        "5m",
        alias="for",
        pattern=DURATION_PATTERN,
        max_length=32,
        description="How long a condition must hold before the alert fires.",
    )
    latency_p99_seconds: float | None = Field(
        None,
        gt=0,
        le=3600,
        description="If set, alert when the 99th percentile request latency exceeds it.",
    )
    severity: Literal["critical", "warning"] = Field(
        "critical", description="severity label of the error-rate and target-down alerts."
    )
    requests_metric: str = Field(
        "http_requests_total",
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        max_length=128,
        description="Counter of HTTP requests (seed: http_requests_total).",
    )
    status_label: str = Field(
        "status",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        max_length=128,
        description="Label of requests_metric holding the HTTP status code (seed: status).",
    )
    latency_metric: str = Field(
        "http_request_duration_seconds",
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        max_length=128,
        description="Histogram of request latency (seed: http_request_duration_seconds).",
    )
    labels: dict[str, Annotated[str, Field(max_length=256)]] = Field(
        {},
        max_length=16,
        description="Extra labels on every alert, e.g. team, for Alertmanager routing.",
    )


class MetricsSpec(_Model):
    """`spec.metrics`: how a ServiceMonitor scrapes the app's Prometheus metrics (PR-MO-001).

    Not `observability.metrics.Metrics`, the operator's own metrics.
    """

    enabled: bool = Field(True, description="Render a ServiceMonitor that scrapes the app.")
    path: str = Field(
        "/metrics", pattern=HTTP_PATH_PATTERN, max_length=1024, description="Metrics path."
    )
    interval: str = Field(
        "30s", pattern=DURATION_PATTERN, max_length=32, description="Scrape interval."
    )
    alerts: Alerts = Field(Alerts(), description="Alerts on errors and unavailability.")


class ResourceRequests(_Model):
    """Resources the scheduler reserves for the container."""

    cpu: Quantity = Field("100m", description="CPU request.")
    memory: Quantity = Field("128Mi", description="Memory request.")


class ResourceLimits(_Model):
    """Resource ceilings."""

    memory: Quantity = Field(
        "256Mi", description="Memory limit; the container is OOM-killed above it."
    )
    cpu: Quantity | None = Field(
        None,
        description="CPU limit; unset by default because a CPU limit throttles the app "
        "even when the node is idle.",
    )


_CEL_LIMITS_COVER_REQUESTS = cel(
    "quantity(string(self.limits.memory)).compareTo(quantity(string(self.requests.memory)))"
    " >= 0 && (!has(self.limits.cpu) || "
    "quantity(string(self.limits.cpu)).compareTo(quantity(string(self.requests.cpu))) >= 0)",
    "resources.limits must not be lower than resources.requests",
    field_path=".limits",
)


class Resources(_Model):
    """CPU and memory (PR-RS-001)."""

    model_config = ConfigDict(json_schema_extra=validations(_CEL_LIMITS_COVER_REQUESTS))

    requests: ResourceRequests = Field(ResourceRequests(), description="Requests.")
    limits: ResourceLimits = Field(ResourceLimits(), description="Limits.")

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Self:
        pairs = [("memory", self.limits.memory, self.requests.memory)]
        if self.limits.cpu is not None:
            pairs.append(("cpu", self.limits.cpu, self.requests.cpu))
        for resource, limit, request in pairs:
            if parse_quantity(limit) < parse_quantity(request):
                raise _violation(
                    SCHEMA_RULE,
                    f"limits.{resource}",
                    f"limits.{resource} ({limit}) must not be lower than "
                    f"requests.{resource} ({request})",
                )
        return self


class Exposure(_Model):
    """Expose the service outside the cluster through an Ingress (PR-SC-001, PR-SC-003)."""

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=HOST_PATTERN,
        description="Host name the Ingress serves, e.g. api.example.com.",
    )
    path: str = Field(
        "/",
        pattern=HTTP_PATH_PATTERN,
        max_length=1024,
        description="Path prefix routed to the app.",
    )
    tls_secret_name: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="Secret (kubernetes.io/tls) with the certificate; required in prod "
        "(PR-SC-001). It may be created later, e.g. by cert-manager.",
    )
    ingress_class_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="IngressClass; the cluster default when unset.",
    )
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        {},
        max_length=64,
        description="Annotations on the Ingress (controller settings, cert-manager issuer…).",
    )


_CEL_AUTOSCALING_RANGE = cel(
    "self.minReplicas <= self.maxReplicas",
    "autoscaling.minReplicas must not exceed autoscaling.maxReplicas",
    field_path=".minReplicas",
)


class Autoscaling(_Model):
    """A HorizontalPodAutoscaler; with it the Deployment's replica count is the HPA's."""

    model_config = ConfigDict(json_schema_extra=validations(_CEL_AUTOSCALING_RANGE))

    min_replicas: int = Field(2, ge=1, le=1000, description="Fewest replicas.")
    max_replicas: int = Field(ge=1, le=1000, description="Most replicas.")
    target_cpu_utilization_percentage: int = Field(
        80,
        ge=1,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilisation (of the request) to scale at.",
    )
    target_memory_utilization_percentage: int | None = Field(
        None,
        ge=1,
        le=100,
        description="Average memory utilisation (of the request) to scale at; unset: CPU only.",
    )

    @model_validator(mode="after")
    def _min_within_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise _violation(
                SCHEMA_RULE,
                "minReplicas",
                f"minReplicas ({self.min_replicas}) must not exceed "
                f"maxReplicas ({self.max_replicas})",
            )
        return self


_CEL_TOLERATION = (
    cel(
        "(has(self.operator) && self.operator == 'Exists') || (has(self.key) && self.key != '')",
        "a toleration without a key matches every taint: use operator Exists",
        field_path=".operator",
    ),
    cel(
        "!(has(self.operator) && self.operator == 'Exists') || !has(self.value) "
        "|| self.value == ''",
        "a toleration with operator Exists takes no value",
        field_path=".value",
    ),
    cel(
        "!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
        "tolerationSeconds applies to the NoExecute effect only",
        field_path=".tolerationSeconds",
    ),
)


class Toleration(_Model):
    """A pod toleration (core/v1 Toleration), as the apiserver validates it in a pod."""

    model_config = ConfigDict(json_schema_extra=validations(*_CEL_TOLERATION))

    key: str | None = Field(None, max_length=316, description="Taint key; unset matches all.")
    operator: Literal["Exists", "Equal"] = Field("Equal", description="Exists or Equal.")
    value: str | None = Field(None, max_length=63, description="Taint value for Equal.")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        None, description="Taint effect; unset matches all."
    )
    toleration_seconds: int | None = Field(
        None, ge=0, description="For NoExecute: how long the pod stays bound after the taint."
    )

    @model_validator(mode="after")
    def _as_a_pod_accepts_it(self) -> Self:
        # The same three checks as the CEL rules above (and the apiserver's pod validation).
        if self.operator == "Equal" and not self.key:
            raise _violation(
                SCHEMA_RULE,
                "operator",
                "a toleration without a key matches every taint: use operator Exists",
            )
        if self.operator == "Exists" and self.value:
            raise _violation(
                SCHEMA_RULE, "value", "a toleration with operator Exists takes no value"
            )
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise _violation(
                SCHEMA_RULE,
                "tolerationSeconds",
                "tolerationSeconds applies to the NoExecute effect only",
            )
        return self


_CEL_NO_RESERVED_KEYS = cel(
    "self.all(k, !k.startsWith('app.kubernetes.io/') && !k.startsWith('prodready.io/'))",
    "keys under app.kubernetes.io/ and prodready.io/ are set by prodready",
)
_RESERVED_KEYS_SCHEMA: Final = validations(_CEL_NO_RESERVED_KEYS)


class Pod(_Model):
    """Pod-level settings."""

    service_account_name: str | None = Field(
        None,
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
        description="ServiceAccount the pods run as; the namespace default when unset.",
    )
    automount_service_account_token: bool = Field(
        False, description="Mount an API token into the pods; off unless the app calls the API."
    )
    image_pull_secrets: list[
        Annotated[str, Field(max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
    ] = Field([], max_length=16, description="Secrets for pulling the image.")
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        {}, max_length=32, description="Node labels the pods must run on."
    )
    tolerations: list[Toleration] = Field([], max_length=32, description="Tolerations.")
    annotations: dict[str, Annotated[str, Field(max_length=4096)]] = Field(
        {},
        max_length=64,
        json_schema_extra=_RESERVED_KEYS_SCHEMA,
        description="Extra annotations on the pods.",
    )
    labels: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        {},
        max_length=32,
        json_schema_extra=_RESERVED_KEYS_SCHEMA,
        description="Extra labels on the pods.",
    )
    run_as_user: int | None = Field(
        None, ge=1, description="UID the container runs as, for images that do not set USER."
    )
    run_as_group: int | None = Field(None, ge=0, description="GID the container runs as.")
    tmp_size_limit: Quantity = Field(
        "128Mi",
        description="Size limit of the writable /tmp (an emptyDir; the root filesystem is "
        "read-only).",
    )

    @model_validator(mode="after")
    def _no_reserved_keys(self) -> Self:
        for field, mapping in (("labels", self.labels), ("annotations", self.annotations)):
            for key in mapping:
                if key.startswith(RESERVED_PREFIXES):
                    raise _violation(
                        SCHEMA_RULE,
                        f"{field}[{key}]",
                        f"{key}: keys under {' and '.join(RESERVED_PREFIXES)} are set by prodready",
                    )
        return self


class Exemption(_Model):
    """An exemption from one checklist rule, with the reason (reported, never silent)."""

    rule: str = Field(
        pattern=RULE_ID_PATTERN_ANY,
        max_length=RULE_ID_MAX_LENGTH,
        description="Rule ID: a checklist rule (e.g. PR-RS-002) or a custom rule of the "
        "ReadinessPolicy that decides for the service (e.g. ACME-OWN-001).",
    )
    reason: str = Field(
        min_length=1, max_length=1024, description="Why the rule does not apply here."
    )


# CEL rules that need several spec fields. The sensitive-name test is api.sensitive's, the
# same patterns Python matches. The PR-LG-003 message cannot name the variable: a
# messageExpression that finds it costs more than the apiserver's budget for one
# (filtering 128 items with a regex).
_SENSITIVE_LITERAL = f"has(e.value) && size(e.value) > 0 && {SENSITIVE_NAMES.cel('e.name')}"
_CEL_SPEC_RULES: Final = validations(
    cel(
        "(has(self.exemptions) && self.exemptions.exists(x, x.rule == 'PR-LG-003')) || "
        f"!has(self.env) || !self.env.exists(e, {_SENSITIVE_LITERAL})",
        "PR-LG-003: a variable in spec.env whose name looks sensitive (password, token, "
        "secret, api_key, ...) has a literal value; move it to spec.secretEnv, or exempt "
        "PR-LG-003 in spec.exemptions with a reason",
        field_path=".env",
    ),
    cel(
        "self.environment != 'prod' || "
        "(has(self.exemptions) && self.exemptions.exists(x, x.rule == 'PR-RS-002')) || "
        "(has(self.autoscaling) ? self.autoscaling.minReplicas >= 2 : self.replicas >= 2)",
        "PR-RS-002: in prod, replicas (or autoscaling.minReplicas) must be at least 2; "
        "to run fewer, add {rule: PR-RS-002, reason: ...} to spec.exemptions",
        field_path=".replicas",
    ),
    cel(
        "!has(self.env) || !has(self.secretEnv) || "
        "!self.env.exists(e, self.secretEnv.exists(s, s.name == e.name))",
        "a variable must not be set in both spec.env and spec.secretEnv",
        field_path=".secretEnv",
    ),
    cel(
        "[self.environmentVariable, self.logging.formatVariable, self.logging.levelVariable, "
        "self.security.debugVariable, self.security.corsVariable, "
        "self.security.rateLimitVariable].all(v, [self.environmentVariable, "
        "self.logging.formatVariable, self.logging.levelVariable, "
        "self.security.debugVariable, self.security.corsVariable, "
        "self.security.rateLimitVariable].filter(w, w == v).size() == 1)",
        "the variables of spec.environmentVariable, spec.logging.formatVariable/"
        "levelVariable and spec.security.debugVariable/corsVariable/rateLimitVariable "
        "must all differ",
    ),
    cel(
        "[has(self.env) ? self.env.map(e, e.name) : [], "
        "has(self.secretEnv) ? self.secretEnv.map(e, e.name) : []].all(names, "
        "names.all(n, !(n in [self.environmentVariable, self.logging.formatVariable, "
        "self.logging.levelVariable, self.security.debugVariable, "
        "self.security.corsVariable, self.security.rateLimitVariable])))",
        "spec.env and spec.secretEnv must not set the variables prodready sets from "
        "spec.environment, spec.logging and spec.security; use those fields",
        field_path=".env",
    ),
)


class ProductionServiceSpec(_Model):
    """What a team declares; prodready renders a production-ready workload from it."""

    model_config = ConfigDict(json_schema_extra=_CEL_SPEC_RULES)

    image: str = Field(
        min_length=1,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Container image; pin a tag or, in prod, a digest (PR-SC-005).",
    )
    environment: Environment = Field(
        description="dev, staging or prod. Severities of the checklist depend on it (PR-CF-003)."
    )
    environment_variable: str = Field(
        "ENVIRONMENT",
        min_length=1,
        max_length=128,
        pattern=ENV_NAME_PATTERN,
        description="Environment variable that carries the environment to the app.",
    )
    replicas: int = Field(
        2,
        ge=0,
        le=1000,
        description="Pod count; at least 2 in prod (PR-RS-002). Ignored with autoscaling.",
    )
    command: list[Annotated[str, Field(max_length=4096)]] = Field(
        [], max_length=64, description="Entrypoint override; the image's ENTRYPOINT when empty."
    )
    args: list[Annotated[str, Field(max_length=4096)]] = Field(
        [], max_length=256, description="Arguments; the image's CMD when empty."
    )
    ports: Ports = Field(Ports(), description="Ports the container listens on.")
    health: Health = Field(Health(), description="Health endpoint and probes.")
    shutdown: Shutdown = Field(Shutdown(), description="Graceful shutdown.")
    env: list[EnvVar] = Field(
        [],
        max_length=128,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Plain environment variables. Names that look sensitive (password, "
        "token, secret, api_key, …) may not have literal values here (PR-LG-003).",
    )
    secret_env: list[SecretEnvVar] = Field(
        [],
        max_length=128,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        description="Environment variables from Secret keys (secretKeyRef, PR-CF-001).",
    )
    env_from_secrets: list[SecretEnvSource] = Field(
        [],
        max_length=16,
        description="Secrets whose every key becomes an environment variable (envFrom).",
    )
    logging: Logging = Field(Logging(), description="Log format and level.")
    security: Security = Field(Security(), description="CORS, rate limiting and debug mode.")
    metrics: MetricsSpec = Field(MetricsSpec(), description="Prometheus metrics and alerts.")
    resources: Resources = Field(Resources(), description="CPU and memory.")
    exposure: Exposure | None = Field(
        None, description="Expose through an Ingress; the service is cluster-internal when unset."
    )
    autoscaling: Autoscaling | None = Field(
        None, description="Scale with a HorizontalPodAutoscaler instead of a fixed replicas."
    )
    pod: Pod = Field(Pod(), description="Pod-level settings.")
    exemptions: list[Exemption] = Field(
        [],
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["rule"]},
        description="Checklist rules this service is exempt from, each with a reason; "
        "written to the prodready.io/exempt annotations of the Deployment and reported.",
    )

    def is_exempt(self, rule: str) -> bool:
        """True when spec.exemptions names the rule."""
        return any(exemption.rule == rule for exemption in self.exemptions)

    def settings_variables(self) -> list[str]:
        """Names of the environment variables prodready sets from the spec."""
        return [
            self.environment_variable,
            self.logging.format_variable,
            self.logging.level_variable,
            self.security.debug_variable,
            self.security.cors_variable,
            self.security.rate_limit_variable,
        ]

    def effective_min_replicas(self) -> int:
        """The replica count the service never goes below."""
        return self.autoscaling.min_replicas if self.autoscaling else self.replicas

    @model_validator(mode="after")
    def _cross_field_rules(self) -> Self:
        if not self.is_exempt("PR-LG-003"):
            for index, variable in enumerate(self.env):
                if variable.value and is_sensitive_name(variable.name):
                    raise _violation(
                        "PR-LG-003",
                        f"env[{index}].value",
                        f"{variable.name} looks sensitive but has a literal value; a secret "
                        "must come from a Secret: move it to spec.secretEnv",
                    )
        if (
            self.environment is Environment.PROD
            and self.effective_min_replicas() < 2
            and not self.is_exempt("PR-RS-002")
        ):
            field = "autoscaling.minReplicas" if self.autoscaling else "replicas"
            raise _violation(
                "PR-RS-002",
                field,
                f"in prod, {field} must be at least 2; to run fewer, add "
                "{rule: PR-RS-002, reason: ...} to spec.exemptions",
            )
        secret_names = {variable.name for variable in self.secret_env}
        for index, variable in enumerate(self.env):
            if variable.name in secret_names:
                raise _violation(
                    SCHEMA_RULE,
                    f"env[{index}].name",
                    f"{variable.name} is set in both spec.env and spec.secretEnv",
                )
        settings_fields = (
            "environmentVariable",
            "logging.formatVariable",
            "logging.levelVariable",
            "security.debugVariable",
            "security.corsVariable",
            "security.rateLimitVariable",
        )
        seen: dict[str, str] = {}
        for field, name in zip(settings_fields, self.settings_variables(), strict=True):
            if name in seen:
                raise _violation(
                    SCHEMA_RULE,
                    field,
                    f"{name} is already the variable of spec.{seen[name]}; each setting "
                    "needs its own variable",
                )
            seen[name] = field
        reserved = set(self.settings_variables())
        named_lists = (
            ("env", [variable.name for variable in self.env]),
            ("secretEnv", [variable.name for variable in self.secret_env]),
        )
        for field, names in named_lists:
            for index, name in enumerate(names):
                if name in names[:index]:
                    raise _violation(
                        SCHEMA_RULE, f"{field}[{index}].name", f"{name} is set twice in {field}"
                    )
                if name in reserved:
                    raise _violation(
                        SCHEMA_RULE,
                        f"{field}[{index}].name",
                        f"{name} is set by prodready from spec.environment, "
                        "spec.logging or spec.security; use those fields",
                    )
        return self


class _StatusModel(BaseModel):
    """Status models: camelCase, tolerant of fields a newer controller may add."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(_StatusModel):
    """A condition in the shape of metav1.Condition."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Condition type: Ready, Reconciling, Stalled, PolicyCompliant or "
        "MonitoringReady.",
    )
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation the condition was set for."
    )
    last_transition_time: datetime = Field(description="When status last changed.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="CamelCase reason for the last transition.",
    )
    message: str = Field(max_length=32768, description="Human-readable details.")


class ChildReference(_StatusModel):
    """An object prodready manages for this ProductionService."""

    api_version: str = Field(max_length=253, description="apiVersion of the child.")
    kind: str = Field(max_length=63, description="Kind of the child.")
    name: str = Field(max_length=253, description="Name of the child (same namespace).")


class Finding(_StatusModel):
    """One result of a checklist rule."""

    rule_id: str = Field(
        max_length=RULE_ID_MAX_LENGTH,
        description="Rule ID: a checklist rule (e.g. PR-HC-001) or a policy's custom rule.",
    )
    severity: str = Field(max_length=16, description="Effective severity: error or warning.")
    result: str = Field(max_length=16, description="fail, exempt or skip.")
    path: str = Field("", max_length=1024, description="Object and field the finding is about.")
    message: str = Field("", max_length=4096, description="What is wrong and how to fix it.")


class ComplianceSummary(_StatusModel):
    """The checklist's verdict on the rendered workload."""

    compliant: bool = Field(description="No rule at error severity fails.")
    errors: int = Field(0, ge=0, description="Failing rules at error severity.")
    warnings: int = Field(0, ge=0, description="Failing rules at warning severity.")
    skipped: int = Field(0, ge=0, description="Rules skipped or exempted.")
    score: int = Field(0, ge=0, le=100, description="Percentage of applicable rules that pass.")
    findings: list[Finding] = Field(
        [], max_length=MAX_FINDINGS, description=f"The first {MAX_FINDINGS} findings."
    )
    omitted_findings: int = Field(
        0, ge=0, description="Findings left out of findings to keep the status small."
    )


class ProductionServiceStatus(_StatusModel):
    """What the controller observed; written by prodready, never by users."""

    observed_generation: int | None = Field(
        None, ge=0, description="metadata.generation of the spec last reconciled."
    )
    conditions: list[Condition] = Field(
        [],
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        description="Ready (children applied and the Deployment available), Reconciling "
        "(rollout in progress), Stalled (cannot progress without a change: invalid spec, "
        "missing Secret), PolicyCompliant (the checklist verdict) and MonitoringReady.",
    )
    children: list[ChildReference] = Field(
        [], max_length=32, description="Objects rendered and applied for this service."
    )
    compliance: ComplianceSummary | None = Field(
        None, description="Checklist results for the rendered workload."
    )
    replicas: int | None = Field(None, ge=0, description="Pods of the Deployment.")
    ready_replicas: int | None = Field(None, ge=0, description="Ready pods of the Deployment.")


class ObjectMeta(BaseModel):
    """The parts of metadata prodready reads; everything else is kept as is."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS_1035_LABEL_PATTERN,
        description="Name; children share it, so it must be a valid Service name.",
    )
    namespace: str | None = Field(None, max_length=63, pattern=DNS_LABEL_PATTERN)
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}


class ProductionService(BaseModel):
    """A ProductionService object: apiVersion, kind, metadata, spec and status."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    api_version: Literal["prodready.io/v1alpha1"]
    kind: Literal["ProductionService"]
    metadata: ObjectMeta
    spec: ProductionServiceSpec
    status: ProductionServiceStatus | None = None

    @property
    def name(self) -> str:
        """metadata.name."""
        return self.metadata.name

    @property
    def namespace(self) -> str:
        """metadata.namespace, or `default` like kubectl."""
        return self.metadata.namespace or "default"

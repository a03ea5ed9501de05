"""The operator's settings: environment variables with the `PRODREADY_` prefix.

Every knob has a default and a description, and is validated once at start-up by
`load_settings`, which turns any mistake into a `SettingsError` that names the variable
(`PRODREADY_HEALTH_PORT: must be between 1 and 65535 (got 'x')`) instead of a pydantic
traceback. The same field metadata generates `.env.example` (`env_example`) and the
README's configuration table (`settings_reference_markdown`), so the three cannot drift.
"""

from __future__ import annotations

import contextvars
import json
import os
import re
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Final, Literal, get_args, get_origin

import annotated_types
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX: Final = "PRODREADY_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "console"]
FailurePolicy = Literal["Fail", "Ignore"]
DefaultEnvironment = Literal["dev", "staging", "prod", "unset"]
ReportApi = Literal["auto", "openreports", "wgpolicyk8s"]

# Binding every interface is deliberate: in a pod the kubelet probes and Prometheus scrapes
# through the pod IP, and the webhook is reached through a Service.
_ALL_INTERFACES: Final = "0.0.0.0"  # noqa: S104

# RFC 1123 label: what Kubernetes accepts as a namespace name.
_DNS1123_LABEL: Final = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# RFC 1123 subdomain: what Kubernetes accepts as an object name (the Lease).
_DNS1123_SUBDOMAIN: Final = re.compile(
    r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
)
# What a ProductionService may ask of the ingress controller and the scheduler unless the
# platform team says otherwise (prodready.rules.grants): cert-manager's annotations and
# ingress-nginx settings that change no configuration outside the service's own location
# (never a snippet, an auth URL or a mirror target); the eviction tolerations every pod
# gets by default; the well-known topology labels, never the control plane's node roles.
_DEFAULT_INGRESS_ANNOTATIONS: Final = (
    "cert-manager.io/*",
    "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/force-ssl-redirect",
    "nginx.ingress.kubernetes.io/proxy-body-size",
    "nginx.ingress.kubernetes.io/proxy-connect-timeout",
    "nginx.ingress.kubernetes.io/proxy-read-timeout",
    "nginx.ingress.kubernetes.io/proxy-send-timeout",
    "nginx.ingress.kubernetes.io/backend-protocol",
    "nginx.ingress.kubernetes.io/limit-rps",
    "nginx.ingress.kubernetes.io/limit-rpm",
    "nginx.ingress.kubernetes.io/limit-connections",
)
_DEFAULT_TOLERATIONS: Final = (
    "node.kubernetes.io/not-ready:NoExecute",
    "node.kubernetes.io/unreachable:NoExecute",
)
_DEFAULT_NODE_SELECTORS: Final = (
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "node.kubernetes.io/instance-type",
)
_TOLERATION_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# The apiserver rejects managedFields managers longer than this.
_FIELD_MANAGER_MAX: Final = 128

# Variables that were renamed, old name → new name (`load_settings` refuses the old one).
_RENAMED_VARIABLES: Final = {f"{ENV_PREFIX}PEERING": f"{ENV_PREFIX}LEASE_NAME"}

# Set only while `load_settings` runs, so that it reads exactly the mapping it was given
# rather than the process environment.
_ENVIRON: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "prodready_settings_environ", default=None
)


class SettingsError(ValueError):
    """The settings are invalid; the message names each offending variable, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class _MappingEnvSource(EnvSettingsSource):
    """pydantic-settings' environment source, reading a given mapping instead of os.environ."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        # The same normalisation the stock source applies: case-insensitive names, and an
        # empty value means "not set" (env_ignore_empty), so `FOO=` in a manifest is a no-op.
        self.env_vars = {key.lower(): value for key, value in environ.items() if value != ""}


def _invalid(message: str) -> PydanticCustomError:
    # One error type for our own checks, so `_describe_error` knows the message is ours.
    return PydanticCustomError("prodready_setting", message)


def _choose(value: Any, choices: tuple[str, ...]) -> Any:
    """Map a case-insensitive spelling onto the canonical choice; leave anything else as is."""
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    return value


class Settings(BaseSettings):
    """Everything the operator can be told, from `PRODREADY_*` environment variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_ignore_empty=True,
        frozen=True,
        validate_default=True,
    )

    namespaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Namespaces to watch, comma-separated; empty watches all namespaces.",
    )
    log_level: LogLevel = Field(
        default="INFO",
        description="Lowest level logged, for the operator and the libraries it uses.",
    )
    log_format: LogFormat = Field(
        default="json",
        description="Log line format: json for log pipelines, console for people at a terminal.",
    )
    health_host: str = Field(
        default=_ALL_INTERFACES,
        description="Address the health and metrics server listens on.",
    )
    health_port: int = Field(
        default=8080,
        ge=1,
        le=65535,
        description="Port of /healthz (liveness), /readyz (readiness) and /metrics (Prometheus).",
    )
    dashboard_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of the read-only readiness dashboard (HTTP, on the health server's "
        "address), the pages of `prodready dashboard`; unset: not served.",
    )
    metrics_findings_by_namespace: bool = Field(
        default=True,
        description="Keep prodready_findings per resource_namespace; false: one series per "
        "failing rule for the whole cluster (for clusters with many namespaces).",
    )
    metrics_auth: bool = Field(
        default=True,
        description="Serve /metrics only to a bearer token the apiserver authenticates "
        "(TokenReview) and authorises for get on the non-resource URL /metrics "
        "(SubjectAccessReview), as controller-runtime does; /healthz and /readyz stay open "
        "for the kubelet. false: /metrics is open to whoever reaches the port.",
    )
    webhook_host: str = Field(
        default=_ALL_INTERFACES,
        description="Address the admission webhook server listens on.",
    )
    webhook_port: int = Field(
        default=9443,
        ge=1,
        le=65535,
        description="Port of the admission webhook server (HTTPS).",
    )
    webhook_cert_file: Path | None = Field(
        default=None,
        description="PEM certificate of the webhook server (e.g. mounted from cert-manager's "
        "Secret; reloaded when it changes). Unset: PRODREADY_WEBHOOK_CERT_SECRET_NAME, else a "
        "throwaway self-signed certificate (for local runs). Set together with "
        "PRODREADY_WEBHOOK_KEY_FILE.",
    )
    webhook_key_file: Path | None = Field(
        default=None,
        description="PEM private key of the webhook certificate. Set together with "
        "PRODREADY_WEBHOOK_CERT_FILE.",
    )
    webhook_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA certificate(s): when set, the webhook answers only clients "
        "presenting a certificate signed by it (the apiserver, given a client certificate "
        "for webhooks in its admission configuration); anyone else fails the TLS handshake. "
        "Unset: any client that reaches the port may post reviews.",
    )
    webhook_cert_secret_name: str | None = Field(
        default=None,
        description="Name of a Secret in the operator's namespace (POD_NAMESPACE) holding the "
        "webhook's serving certificate, which the operator creates when absent, renews when "
        "a third of its validity is left (a new CA each time, the previous one trusted until "
        "then) and serves on every replica as it changes. Unset: PRODREADY_WEBHOOK_CERT_FILE, "
        "else a throwaway self-signed certificate.",
    )
    webhook_cert_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="DNS names and IP addresses the certificate of "
        "PRODREADY_WEBHOOK_CERT_SECRET_NAME is issued for, comma-separated: in a cluster, the "
        "webhook Service's names (the chart sets them). Empty: localhost, 127.0.0.1 and ::1.",
    )
    webhook_cert_validity_seconds: int = Field(
        default=365 * 24 * 3600,
        ge=30,
        description="Lifetime of the certificate the operator issues for "
        "PRODREADY_WEBHOOK_CERT_SECRET_NAME; renewed when a third of it is left.",
    )
    webhook_configuration: str | None = Field(
        default=None,
        description="Name of the ValidatingWebhookConfiguration whose caBundle the leader keeps "
        "equal to the CA of PRODREADY_WEBHOOK_CERT_SECRET_NAME (that one only; the chart names "
        "its own). Unset: no webhook configuration is patched.",
    )
    webhook_failure_policy: FailurePolicy = Field(
        default="Fail",
        description="What the apiserver does when the enforce entries of the webhook cannot "
        "answer: Fail rejects the object, Ignore admits it unchecked. The audit entry always "
        "ignores; the authorization entry (/authorize) always fails closed.",
    )
    webhook_timeout_seconds: int = Field(
        default=5,
        ge=1,
        le=30,
        description="How long the apiserver waits for an answer from the webhook.",
    )
    allowed_ingress_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Host names a ProductionService's Ingress may serve, as globs, "
        "comma-separated: * matches any run of characters but never the star of a wildcard "
        "host, [*].apps.example.com allows that wildcard host, {namespace} stands for the "
        "service's namespace. The default allows every host except wildcards.",
    )
    allowed_ingress_annotations: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_INGRESS_ANNOTATIONS),
        description="Annotation keys a ProductionService may put on its Ingress, as globs, "
        "comma-separated. The default allows cert-manager's and a few ingress-nginx "
        "settings, never its snippets.",
    )
    allowed_tolerations: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_TOLERATIONS),
        description="Taints a ProductionService's pods may tolerate: KEY or KEY:EFFECT "
        "entries (KEY a glob), comma-separated. A toleration with no key tolerates every "
        "taint and needs the entry *.",
    )
    allowed_node_selectors: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(_DEFAULT_NODE_SELECTORS),
        description="Node labels a ProductionService's pods may select: KEY or KEY=VALUE "
        "entries (globs), comma-separated. The default allows OS, architecture, zone, region "
        "and instance type, not the control plane's node-role labels.",
    )
    allowed_service_accounts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="ServiceAccounts a ProductionService's pods may run as (globs, "
        "comma-separated). Its author must also be allowed to create pods in the namespace, "
        "as Kubernetes requires to use a ServiceAccount.",
    )
    resync_interval_seconds: int = Field(
        default=300,
        ge=10,
        description="How often each ProductionService is reconciled again even without "
        "changes, which repairs drift of its children.",
    )
    shutdown_timeout_seconds: int = Field(
        default=25,
        ge=1,
        description="How long a SIGTERM waits for in-flight work before exiting; keep it "
        "below the pod's terminationGracePeriodSeconds (30 in the chart).",
    )
    field_manager: str = Field(
        default="prodready",
        description="Field manager name for server-side apply of child objects.",
    )
    lease_name: str = Field(
        default="prodready",
        description="Name of the Lease (in the operator's namespace) through which "
        "replicas elect the one leader that reconciles and audits (high availability).",
    )
    standalone: bool = Field(
        default=False,
        description="Run without leader election: only safe with exactly one replica.",
    )
    shards: int = Field(
        default=1,
        ge=1,
        le=1024,
        description="How many shards the watched namespaces are split into, each held by "
        "one replica through a Lease named after the lease name; the replicas share them "
        "out. 1: one leader reconciles everything. Every replica must have the same value.",
    )
    audit_interval_seconds: int = Field(
        default=600,
        ge=10,
        description="How often all workloads in the watched namespaces are audited against "
        "the checklist.",
    )
    report_max_results: int = Field(
        default=1000,
        ge=1,
        description="Most results written into one policy report; the rest are counted "
        "but not listed.",
    )
    report_api: ReportApi = Field(
        default="auto",
        description="Which policy report API the audit writes and `prodready report` reads: "
        "auto (OpenReports if its CRD is installed, else wgpolicyk8s.io PolicyReport), "
        "openreports or wgpolicyk8s (that one only, even when both CRDs are installed).",
    )
    status_max_findings: int = Field(
        default=20,
        ge=1,
        description="Most findings written into a ProductionService's status; the rest are "
        "counted but not listed.",
    )
    rules_config_file: Path | None = Field(
        default=None,
        description="YAML file that configures the rules (severities, environments). "
        "Unset: the built-in defaults.",
    )
    environment_default: DefaultEnvironment = Field(
        default="unset",
        description="Environment assumed for plain workloads that declare none; unset "
        "leaves it undeclared (and PR-CF-003 reports it).",
    )
    kubeconfig: Path | None = Field(
        default=None,
        description="kubeconfig file to use; it beats the pod's service account. Unset: "
        "$KUBECONFIG (several files joined by ':'), else the service account when running "
        "in a pod, else ~/.kube/config.",
    )
    context: str | None = Field(
        default=None,
        description="kubeconfig context to use (kubectl's --context). Unset: the "
        "kubeconfig's current-context.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read keyword arguments, then the environment (the mapping given to load_settings)."""
        environ = _ENVIRON.get()
        if environ is None:
            return (init_settings, env_settings)
        return (init_settings, _MappingEnvSource(settings_cls, environ))

    @field_validator(
        "namespaces",
        "allowed_ingress_hosts",
        "allowed_ingress_annotations",
        "allowed_tolerations",
        "allowed_node_selectors",
        "allowed_service_accounts",
        "webhook_cert_hosts",
        mode="before",
    )
    @classmethod
    def _split_namespaces(cls, value: Any) -> Any:
        # The natural spelling in a manifest is `a,b`; a JSON list is accepted as well.
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("["):
            try:
                return json.loads(text)
            except json.JSONDecodeError as error:
                raise _invalid("must be a comma-separated list or a JSON list") from error
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("namespaces")
    @classmethod
    def _check_namespaces(cls, value: list[str]) -> list[str]:
        for namespace in value:
            if len(namespace) > 63 or not _DNS1123_LABEL.fullmatch(namespace):
                raise _invalid(f"{namespace!r} is not a valid namespace name")
        # Watching a namespace twice would start two watch streams for it.
        return list(dict.fromkeys(value))

    @field_validator(
        "allowed_ingress_hosts",
        "allowed_ingress_annotations",
        "allowed_node_selectors",
        "allowed_service_accounts",
    )
    @classmethod
    def _check_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern or any(character.isspace() for character in pattern):
                raise _invalid(f"{pattern!r} is not a pattern (no spaces, not empty)")
        return list(dict.fromkeys(value))

    @field_validator("allowed_tolerations")
    @classmethod
    def _check_tolerations(cls, value: list[str]) -> list[str]:
        for entry in value:
            key, found, effect = entry.partition(":")
            if not key or any(character.isspace() for character in entry):
                raise _invalid(f"{entry!r} is not KEY or KEY:EFFECT")
            if found and effect not in _TOLERATION_EFFECTS:
                raise _invalid(
                    f"{entry!r}: the effect must be one of {', '.join(_TOLERATION_EFFECTS)}"
                )
        return list(dict.fromkeys(value))

    @field_validator("log_level", mode="before")
    @classmethod
    def _normalise_log_level(cls, value: Any) -> Any:
        return _choose(value, get_args(LogLevel))

    @field_validator("log_format", mode="before")
    @classmethod
    def _normalise_log_format(cls, value: Any) -> Any:
        return _choose(value, get_args(LogFormat))

    @field_validator("report_api", mode="before")
    @classmethod
    def _normalise_report_api(cls, value: Any) -> Any:
        return _choose(value, get_args(ReportApi))

    @field_validator("webhook_failure_policy", mode="before")
    @classmethod
    def _normalise_failure_policy(cls, value: Any) -> Any:
        return _choose(value, get_args(FailurePolicy))

    @field_validator("environment_default", mode="before")
    @classmethod
    def _normalise_environment(cls, value: Any) -> Any:
        return _choose(value, get_args(DefaultEnvironment))

    @field_validator("health_host", "webhook_host")
    @classmethod
    def _check_host(cls, value: str) -> str:
        if not value or any(character.isspace() for character in value):
            raise _invalid("must be a host name or IP address")
        return value

    @field_validator("field_manager")
    @classmethod
    def _check_field_manager(cls, value: str) -> str:
        if not value or len(value) > _FIELD_MANAGER_MAX or not value.isprintable():
            raise _invalid(f"must be 1 to {_FIELD_MANAGER_MAX} printable characters")
        return value

    @field_validator("lease_name", "webhook_cert_secret_name", "webhook_configuration")
    @classmethod
    def _check_lease_name(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _DNS1123_SUBDOMAIN.fullmatch(value)):
            raise _invalid("must be a Kubernetes object name (lower-case letters, digits, '-')")
        return value

    @field_validator("webhook_cert_hosts")
    @classmethod
    def _check_cert_hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not host or any(character.isspace() for character in host):
                raise _invalid(f"{host!r} is not a host name or IP address")
        return list(dict.fromkeys(value))

    @field_validator(
        "webhook_cert_file",
        "webhook_key_file",
        "webhook_client_ca_file",
        "rules_config_file",
        "kubeconfig",
    )
    @classmethod
    def _check_file_exists(cls, value: Path | None) -> Path | None:
        # Caught here rather than when first opened, minutes later, deep in a handler.
        if value is not None and not value.expanduser().is_file():
            raise _invalid("file does not exist")
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _check_webhook_pair(self) -> Settings:
        # A certificate without its key (or the reverse) cannot serve TLS; generating a
        # self-signed pair instead would hide the mistake until the apiserver rejects it.
        if (self.webhook_cert_file is None) != (self.webhook_key_file is None):
            missing = "webhook_key_file" if self.webhook_key_file is None else "webhook_cert_file"
            given = "webhook_cert_file" if missing == "webhook_key_file" else "webhook_key_file"
            raise PydanticCustomError(
                "prodready_setting_pair",
                "{missing}: must be set together with {given}",
                {"missing": env_name(missing), "given": env_name(given)},
            )
        # Two sources of the serving certificate: which one is served would be a guess.
        if self.webhook_cert_secret_name is not None and self.webhook_cert_file is not None:
            raise PydanticCustomError(
                "prodready_setting_pair",
                "{secret}: set either it or {file}, not both",
                {
                    "secret": env_name("webhook_cert_secret_name"),
                    "file": env_name("webhook_cert_file"),
                },
            )
        return self


def env_name(field_name: str) -> str:
    """The environment variable of a settings field: `health_port` → `PRODREADY_HEALTH_PORT`."""
    return f"{ENV_PREFIX}{field_name.upper()}"


def _fields() -> Iterator[tuple[str, FieldInfo]]:
    yield from Settings.model_fields.items()


def _requirement(field: FieldInfo) -> str | None:
    """What a valid value looks like, derived from the field's type and constraints."""
    annotation = field.annotation
    if get_origin(annotation) is Literal:
        return "must be one of " + ", ".join(str(choice) for choice in get_args(annotation))
    if annotation is bool:
        return "must be true or false"
    if annotation is int:
        lower = next((m.ge for m in field.metadata if isinstance(m, annotated_types.Ge)), None)
        upper = next((m.le for m in field.metadata if isinstance(m, annotated_types.Le)), None)
        if lower is not None and upper is not None:
            return f"must be between {lower} and {upper}"
        if lower is not None:
            return f"must be a whole number of at least {lower}"
        return "must be a whole number"
    if Path in get_args(annotation):
        return "must be the path of an existing file"
    return None


def _default_text(field: FieldInfo) -> str:
    """The default as it would be written in the environment."""
    default = field.get_default(call_default_factory=True)
    if default is None:
        return ""
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, list):
        return ",".join(str(item) for item in default)
    return str(default)


def _describe_error(error: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """One line per pydantic error, naming the variable and the raw value given."""
    if error["type"] == "prodready_setting_pair":
        return str(error["msg"])
    field_name = str(error["loc"][0])
    variable = env_name(field_name)
    lowered = {key.lower(): value for key, value in environ.items()}
    raw = lowered.get(variable.lower(), error.get("input"))
    if error["type"] == "prodready_setting":
        problem = str(error["msg"])
    else:
        problem = _requirement(Settings.model_fields[field_name]) or str(error["msg"])
    return f"{variable}: {problem} (got {raw!r})"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from `environ` (default: the process environment).

    Raises `SettingsError` listing every invalid variable; never a pydantic traceback.
    """
    mapping = os.environ if environ is None else environ
    problems = _renamed_variables(mapping)
    token = _ENVIRON.set(dict(mapping))
    try:
        settings = Settings()
    except ValidationError as error:
        problems += [_describe_error(item, mapping) for item in error.errors()]
        raise SettingsError(problems) from None
    finally:
        _ENVIRON.reset(token)
    if problems:
        raise SettingsError(problems)
    return settings


def _renamed_variables(environ: Mapping[str, str]) -> list[str]:
    """One problem per variable set under a name it no longer has.

    An error, not a warning: ignoring the old name would quietly change what an upgraded
    operator does (another Lease, so two leaders during a rollout).
    """
    given = {key.upper() for key, value in environ.items() if value != ""}
    return [
        f"{old}: renamed to {new}; set {new} instead"
        for old, new in _RENAMED_VARIABLES.items()
        if old in given
    ]


def _documentation(field: FieldInfo) -> str:
    """The description followed by the validation rule, as one sentence list."""
    text = (field.description or "").strip()
    requirement = _requirement(field)
    if requirement:
        text = f"{text} {requirement[0].upper()}{requirement[1:]}."
    return text


def env_example() -> str:
    """The content of `.env.example`: every variable, its default and its description."""
    lines = [
        "# prodready operator settings. Every variable is optional: the value shown is the",
        "# default, and an empty value means unset. Generated by",
        "# prodready.config.env_example(); a unit test fails when this file is out of date.",
    ]
    for name, field in _fields():
        lines.append("")
        wrapped = textwrap.wrap(_documentation(field), width=86, break_on_hyphens=False)
        lines.extend(f"# {line}" for line in wrapped)
        lines.append(f"{env_name(name)}={_default_text(field)}")
    return "\n".join(lines) + "\n"


def settings_reference_markdown() -> str:
    """A Markdown table of every variable, its default and its description (for the README)."""
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    for name, field in _fields():
        default = _default_text(field)
        if default:
            default_cell = f"`{default}`"
        else:
            default_cell = "(unset)" if field.default is None else "(empty)"
        description = _documentation(field).replace("|", "\\|")
        rows.append(f"| `{env_name(name)}` | {default_cell} | {description} |")
    return "\n".join(rows) + "\n"

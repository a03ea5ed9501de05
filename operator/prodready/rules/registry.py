"""The rule catalogue: every rule's metadata as data, and the function that checks it.

IDs are stable (CHECKLIST.md): reports, exemptions and dashboards key on them. Three rules
beyond the checklist keep the engine honest about its own inputs: PR-EX-001 (an exemption
annotation that names an unknown rule or gives no reason), PR-PS-001 (a
ProductionService whose spec cannot be rendered) and PR-LM-001 (a workload over one of the
caps that bound an evaluation, `prodready.rules.limits`; it cannot be exempted, disabled
or downgraded, since it is what keeps one object from costing unbounded time).

Profiles: a `prod_only` rule applies only under the prod profile (PR-GS-003, PR-LG-002,
PR-ER-001, PR-SC-001, PR-SC-002, PR-RS-002 — so dev and staging never see them); a rule
marked `relaxed_in_dev` drops from error to warning under dev (PR-SC-003; PR-SC-004 and
PR-SC-005 are warnings already, and a warning never blocks, so they stay warnings rather
than disappear). Configured severity overrides win over both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prodready.rules.checks import (
    configuration,
    health,
    logs,
    monitoring,
    resources,
    security,
    shutdown,
)
from prodready.rules.context import (
    LONG_RUNNING_KINDS,
    PRODUCTION_SERVICE_KIND,
    WORKLOAD_KINDS,
)
from prodready.rules.limits import DEFAULT_LIMITS, LIMITS_RULE_ID
from prodready.rules.model import Environment, Severity
from prodready.rules.subject import Outcome, Subject

CheckFunction = Callable[[Subject], Iterable[Outcome]]

ALL_KINDS = WORKLOAD_KINDS
ROLLING_KINDS = frozenset({"Deployment", "DaemonSet"})
REPLICATED_KINDS = frozenset({"Deployment", "StatefulSet", "Pod"})


@dataclass(frozen=True, slots=True)
class Rule:
    """One checklist rule: identity, documentation, where it applies, and its check.

    `check` is None only for the rules the engine reports itself: PR-PS-001 when
    rendering a ProductionService fails, PR-LM-001 when a workload is over a cap.
    """

    id: str
    title: str
    section: str
    severity: Severity
    why: str
    fix: str
    kinds: frozenset[str]
    check: CheckFunction | None
    prod_only: bool = False
    relaxed_in_dev: bool = False
    scope: str = "container"

    def severity_in(self, environment: Environment) -> Severity | None:
        """The profile's severity for this rule, or None when it does not apply there."""
        if self.prod_only and environment is not Environment.PROD:
            return None
        if self.relaxed_in_dev and environment is Environment.DEV:
            return Severity.WARNING
        return self.severity


def _exemption_check(subject: Subject) -> Iterator[Outcome]:
    return configuration.exemption_annotations(subject, RULE_IDS)


E, W = Severity.ERROR, Severity.WARNING

RULES: tuple[Rule, ...] = (
    Rule(
        "PR-HC-001",
        "every serving container has a liveness probe",
        "1",
        E,
        "Without a liveness probe a deadlocked process keeps its pod and its share of traffic "
        "until someone notices.",
        "Add a livenessProbe: httpGet on the health endpoint (the seed: /health, "
        "initialDelaySeconds 10, periodSeconds 30).",
        LONG_RUNNING_KINDS,
        health.liveness_probe,
    ),
    Rule(
        "PR-HC-002",
        "every serving container has a readiness probe",
        "1",
        E,
        "Without a readiness probe a pod receives traffic before it can answer and while "
        "its dependencies are down.",
        "Add a readinessProbe: httpGet on the readiness endpoint (the seed: initialDelaySeconds "
        "5, periodSeconds 10).",
        LONG_RUNNING_KINDS,
        health.readiness_probe,
    ),
    Rule(
        "PR-HC-003",
        "probes are HTTP or gRPC health checks with sane timings",
        "1",
        W,
        "An exec no-op or a bare TCP check passes while the application is broken; readiness "
        "slower than liveness or a liveness probe with no start-up allowance kills healthy pods.",
        "Use httpGet or grpc on a health endpoint; keep readiness periodSeconds at or below "
        "liveness; give liveness an initialDelaySeconds or add a startupProbe.",
        LONG_RUNNING_KINDS,
        health.probe_quality,
    ),
    Rule(
        "PR-HC-004",
        "declared dependencies are checked by readiness, not liveness",
        "1",
        W,
        "A liveness probe that checks the database restarts every pod during a database "
        "outage, turning a dependency failure into a full outage and a restart storm.",
        "Check the database, Redis and external services in the readiness endpoint; keep the "
        "liveness endpoint to the process itself (e.g. /livez vs /readyz).",
        LONG_RUNNING_KINDS,
        health.dependencies_in_readiness,
    ),
    Rule(
        "PR-GS-001",
        "terminationGracePeriodSeconds covers the shutdown timeout",
        "2",
        E,
        "The kubelet kills the container when the grace period ends: in-flight requests and "
        "open database connections are cut if shutdown needs longer.",
        "Set terminationGracePeriodSeconds to at least the shutdown timeout (default 30 s) "
        "plus any preStop delay.",
        ALL_KINDS,
        shutdown.grace_period,
        scope="workload",
    ),
    Rule(
        "PR-GS-002",
        "a preStop delay lets endpoints drain before SIGTERM",
        "2",
        W,
        "Endpoints are removed asynchronously: without a short delay the process stops while "
        "proxies still send it new requests, which fail.",
        "Add lifecycle.preStop.sleep.seconds: 5 (or an exec sleep) and keep the grace period "
        "above shutdown timeout + delay.",
        LONG_RUNNING_KINDS,
        shutdown.prestop_delay,
    ),
    Rule(
        "PR-GS-003",
        "rolling updates never drop below desired capacity in prod",
        "2",
        W,
        "With maxUnavailable above 0 (the Deployment default is 25%) a rollout removes serving "
        "pods before their replacements are ready.",
        "Use a RollingUpdate strategy with maxUnavailable: 0 and a maxSurge above 0.",
        ROLLING_KINDS,
        shutdown.rolling_update,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        "PR-LG-001",
        "logs are JSON",
        "3",
        E,
        "Log pipelines index JSON fields (request_id, level, endpoint); free text cannot be "
        "searched or correlated reliably.",
        "Set the log-format variable (LOG_FORMAT) to json.",
        ALL_KINDS,
        logs.json_logs,
    ),
    Rule(
        "PR-LG-002",
        "log level is INFO or above in prod",
        "3, 8",
        W,
        "DEBUG logs in production cost money, drown signals and tend to contain request data.",
        "Set the log-level variable (LOG_LEVEL) to INFO, WARNING or ERROR.",
        ALL_KINDS,
        logs.log_level,
        prod_only=True,
    ),
    Rule(
        "PR-LG-003",
        "no sensitive-looking variable carries a literal value",
        "3, 5",
        E,
        "A literal password or token in a manifest lives in git history, CI logs and "
        "`kubectl get -o yaml` output.",
        "Move the value into a Secret and reference it with valueFrom.secretKeyRef.",
        ALL_KINDS,
        logs.no_literal_secrets,
    ),
    Rule(
        "PR-ER-001",
        "DEBUG is off in prod",
        "4",
        E,
        "Debug mode returns stack traces and internals to clients: an information leak and "
        "an attack aid.",
        "Set the debug variable (DEBUG) to false or remove it.",
        ALL_KINDS,
        logs.debug_off,
        prod_only=True,
    ),
    Rule(
        "PR-CF-001",
        "secrets reach the container only by Secret reference",
        "5",
        E,
        "Secrets in literals or ConfigMaps are readable by anyone who can read the workload "
        "or ConfigMaps, and are not encrypted at rest.",
        "Store secrets in Secrets and use secretKeyRef, envFrom.secretRef or a Secret volume.",
        ALL_KINDS,
        configuration.secrets_by_reference,
    ),
    Rule(
        "PR-CF-002",
        "every referenced Secret and key exists",
        "5",
        E,
        "A missing Secret or key keeps the pod in CreateContainerConfigError: the rollout stalls.",
        "Create the Secret (or fix the name and key), or mark the reference optional.",
        ALL_KINDS,
        configuration.referenced_secrets_exist,
        scope="workload",
    ),
    Rule(
        "PR-CF-003",
        "the environment (dev / staging / prod) is declared",
        "5",
        W,
        "The profile decides which rules apply; an undeclared environment is checked as prod.",
        "Label the workload prodready.io/environment: dev|staging|prod (or set it in the "
        "ProductionService spec).",
        ALL_KINDS,
        configuration.environment_declared,
        scope="workload",
    ),
    Rule(
        "PR-SC-001",
        "an exposed workload in prod is served over TLS only",
        "6",
        E,
        "Plain HTTP exposes credentials and session cookies to anyone on the path.",
        "Add a tls section covering every host of the Ingress and keep the HTTPS redirect; "
        "serve LoadBalancer/NodePort Services on TLS ports or terminate TLS at the balancer.",
        LONG_RUNNING_KINDS,
        security.tls_only,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        "PR-SC-002",
        "CORS allowed origins are set and not * in prod",
        "6",
        E,
        "A wildcard CORS policy lets any website call the API from a user's browser.",
        "Set the CORS variable (CORS_ALLOWED_ORIGINS) to the exact origins, or configure CORS "
        "with explicit origins at the Ingress.",
        LONG_RUNNING_KINDS,
        security.cors_origins,
        prod_only=True,
    ),
    Rule(
        "PR-SC-003",
        "an exposed workload has rate limiting configured",
        "6",
        E,
        "Public endpoints without a rate limit fall over under a burst, a scraper or a "
        "credential-stuffing run.",
        "Set the rate-limit variable (RATE_LIMIT) or rate-limit at the Ingress (e.g. "
        "nginx.ingress.kubernetes.io/limit-rps).",
        LONG_RUNNING_KINDS,
        security.rate_limited,
        relaxed_in_dev=True,
    ),
    Rule(
        "PR-SC-004",
        "containers run as non-root, without privilege escalation, read-only, all caps dropped",
        "6",
        W,
        "A compromised process with root, capabilities and a writable filesystem can persist "
        "and escalate.",
        "Set runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true "
        "and capabilities.drop: [ALL].",
        ALL_KINDS,
        security.hardened_security_context,
        relaxed_in_dev=True,
    ),
    Rule(
        "PR-SC-005",
        "images are pinned",
        "8",
        W,
        "latest (or no tag) changes under you: rollbacks and node restarts pull different code.",
        "Use an immutable tag, and in prod an @sha256 digest.",
        ALL_KINDS,
        security.pinned_images,
        relaxed_in_dev=True,
    ),
    Rule(
        "PR-MO-001",
        "a metrics endpoint is declared and scraped",
        "7",
        E,
        "Without request metrics there is no latency, error-rate or saturation signal to alert on.",
        "Expose /metrics and add a ServiceMonitor or PodMonitor (or prometheus.io/scrape "
        "annotations).",
        LONG_RUNNING_KINDS,
        monitoring.metrics_scraped,
        scope="workload",
    ),
    Rule(
        "PR-MO-002",
        "alerts exist for the workload's critical errors",
        "7, 8",
        W,
        "Metrics nobody alerts on are found during the post-mortem.",
        "Add a PrometheusRule with alerts for the workload (label it app.kubernetes.io/name, "
        "or name it after the workload).",
        LONG_RUNNING_KINDS,
        monitoring.alerts_exist,
        scope="workload",
    ),
    Rule(
        "PR-RS-001",
        "CPU and memory requests and a memory limit are set",
        "—",
        W,
        "Without requests the scheduler overpacks nodes; without a memory limit one leak "
        "evicts its neighbours.",
        "Set resources.requests.cpu, resources.requests.memory and resources.limits.memory.",
        ALL_KINDS,
        resources.resource_requests,
    ),
    Rule(
        "PR-RS-002",
        "replicas ≥ 2 in prod, with a PodDisruptionBudget",
        "8",
        W,
        "One replica means every node drain, eviction or crash is an outage.",
        "Run at least 2 replicas (or an HPA with minReplicas ≥ 2) and add a "
        "PodDisruptionBudget that still allows one eviction.",
        REPLICATED_KINDS,
        resources.replicas_and_budget,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        "PR-RS-003",
        "persistent data lives on PersistentVolumeClaims, not emptyDir",
        "8",
        W,
        "emptyDir and hostPath data disappears with the pod or the node.",
        "Use volumeClaimTemplates (StatefulSet) or a PersistentVolumeClaim volume for data.",
        ALL_KINDS,
        resources.persistent_volumes,
        scope="workload",
    ),
    Rule(
        "PR-EX-001",
        "exemption annotations name known rules and give a reason",
        "—",
        W,
        "A mistyped rule ID silently exempts nothing, and an exemption without a reason "
        "cannot be reviewed.",
        "List known rule IDs in prodready.io/exempt and explain in prodready.io/exempt-reason.",
        ALL_KINDS,
        _exemption_check,
        scope="workload",
    ),
    Rule(
        "PR-PS-001",
        "the ProductionService spec renders",
        "5",
        E,
        "A spec the operator cannot render is never applied: the service does not deploy.",
        "Fix the field named in the message (see `prodready render`).",
        frozenset({PRODUCTION_SERVICE_KIND}),
        None,
        scope="workload",
    ),
    Rule(
        LIMITS_RULE_ID,
        "the workload is within the limits prodready evaluates",
        "—",
        E,
        "Far more containers, variables, ports or volumes than any real pod declares would "
        "make one object cost unbounded time to check (and stall admission); such an object "
        "is refused unchecked rather than admitted unchecked. It cannot be exempted.",
        "Split the workload, or move bulk configuration into a ConfigMap or Secret mounted "
        "as a volume; the message names the field and its cap (at most "
        f"{DEFAULT_LIMITS.containers:,} containers per pod; per container "
        f"{DEFAULT_LIMITS.env_per_container:,} env entries, "
        f"{DEFAULT_LIMITS.ports_per_container:,} ports; {DEFAULT_LIMITS.entries:,} entries "
        "per pod).",
        ALL_KINDS | {PRODUCTION_SERVICE_KIND},
        None,
        scope="workload",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
RULE_IDS: frozenset[str] = frozenset(RULES_BY_ID)

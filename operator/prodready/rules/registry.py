"""The rule catalogue: every rule's metadata as data, and the function that checks it.

IDs are stable (CHECKLIST.md): reports, exemptions and dashboards key on them. Three rules
beyond the checklist keep the engine honest about its own inputs: PR-EX-001 (an exemption
annotation that names an unknown rule or gives no reason), PR-PS-001 (a
ProductionService whose spec cannot be rendered) and PR-LM-001 (a workload over one of the
caps that bound an evaluation, `prodready.rules.limits`; it cannot be exempted, disabled
or downgraded, since it is what keeps one object from costing unbounded time).

Profiles: a `prod_only` rule applies only under the prod profile (PR-GS-003, PR-LG-002,
PR-ER-001, PR-SC-001, PR-SC-002, PR-SC-006, PR-RS-002 — so dev and staging never see
them); a rule marked `relaxed_in_dev` drops from error to warning under dev (PR-SC-003;
PR-SC-004 and PR-SC-005 are warnings already, and a warning never blocks, so they stay
warnings rather than disappear). Configured severity overrides win over both.

Most rules judge workloads; PR-SC-006, PR-SC-007 and PR-CF-004 judge an Ingress or route,
a LoadBalancer Service and a ConfigMap on their own (`checks.exposure`).

Each rule's examples live under its ID, as Polaris keeps its checks: minimal manifests
that pass it and fail it, `tests/fixtures/rules/<ID>/success*.yaml` and `failure*.yaml`. A
rule added here without both fails the test suite (tests/unit/test_rule_fixtures.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prodready.rules.checks import (
    configuration,
    exposure,
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


@dataclass(frozen=True, slots=True, kw_only=True)
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
    return configuration.exemption_annotations(subject, RULE_IDS | subject.settings.custom_rule_ids)


E, W = Severity.ERROR, Severity.WARNING

RULES: tuple[Rule, ...] = (
    Rule(
        id="PR-HC-001",
        title="every long-running container has a liveness probe",
        section="1",
        severity=E,
        why=(
            "Without a liveness probe a deadlocked process keeps its pod (and its share of "
            "traffic or queue) until someone notices, whether it serves requests or not."
        ),
        fix=(
            "Add a livenessProbe: httpGet on the health endpoint (initialDelaySeconds 10, "
            "periodSeconds 30), or an exec check for a worker. A patch is offered once the path "
            "is declared: annotation prodready.io/health-path or the policy's health_path."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=health.liveness_probe,
    ),
    Rule(
        id="PR-HC-002",
        title="every serving container has a readiness probe",
        section="1",
        severity=E,
        why=(
            "Without a readiness probe a pod receives traffic before it can answer and while its "
            "dependencies are down."
        ),
        fix=(
            "Add a readinessProbe: httpGet on the readiness endpoint (initialDelaySeconds 5, "
            "periodSeconds 10); a patch is offered once the path is declared (annotation "
            "prodready.io/health-path or the policy's health_path)."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=health.readiness_probe,
    ),
    Rule(
        id="PR-HC-003",
        title="probes are HTTP or gRPC health checks with sane timings",
        section="1",
        severity=W,
        why=(
            "An exec no-op or a bare TCP check passes while the application is broken; readiness "
            "slower than liveness or a liveness probe with no start-up allowance kills healthy "
            "pods."
        ),
        fix=(
            "Use httpGet or grpc on a health endpoint; keep readiness periodSeconds at or below "
            "liveness; give liveness an initialDelaySeconds or add a startupProbe."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=health.probe_quality,
    ),
    Rule(
        id="PR-HC-004",
        title="declared dependencies are checked by readiness, not liveness",
        section="1",
        severity=W,
        why=(
            "A liveness probe that checks the database restarts every pod during a database "
            "outage, turning a dependency failure into a full outage and a restart storm."
        ),
        fix=(
            "Check the database, Redis and external services in the readiness endpoint; keep the "
            "liveness endpoint to the process itself (e.g. /livez vs /readyz)."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=health.dependencies_in_readiness,
    ),
    Rule(
        id="PR-GS-001",
        title="terminationGracePeriodSeconds covers the shutdown timeout",
        section="2",
        severity=E,
        why=(
            "The kubelet kills the container when the grace period ends: in-flight requests and "
            "open database connections are cut if shutdown needs longer."
        ),
        fix=(
            "Set terminationGracePeriodSeconds to at least the shutdown timeout (default 30 s) "
            "plus any preStop delay."
        ),
        kinds=ALL_KINDS,
        check=shutdown.grace_period,
        scope="workload",
    ),
    Rule(
        id="PR-GS-002",
        title="a preStop delay lets endpoints drain before SIGTERM",
        section="2",
        severity=W,
        why=(
            "Endpoints are removed asynchronously: without a short delay the process stops while "
            "proxies still send it new requests, which fail."
        ),
        fix=(
            "Add lifecycle.preStop.sleep.seconds: 5 (or an exec sleep) and keep the grace period "
            "above shutdown timeout + delay."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=shutdown.prestop_delay,
    ),
    Rule(
        id="PR-GS-003",
        title="rolling updates never drop below desired capacity in prod",
        section="2",
        severity=W,
        why=(
            "With maxUnavailable above 0 (the Deployment default is 25%) a rollout removes serving "
            "pods before their replacements are ready."
        ),
        fix="Use a RollingUpdate strategy with maxUnavailable: 0 and a maxSurge above 0.",
        kinds=ROLLING_KINDS,
        check=shutdown.rolling_update,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        id="PR-LG-001",
        title="logs are JSON",
        section="3",
        severity=E,
        why=(
            "Log pipelines index JSON fields (request_id, level, endpoint); free text cannot be "
            "searched or correlated reliably."
        ),
        fix="Set the log-format variable (LOG_FORMAT) to json.",
        kinds=ALL_KINDS,
        check=logs.json_logs,
    ),
    Rule(
        id="PR-LG-002",
        title="log level is INFO or above in prod",
        section="3, 8",
        severity=W,
        why="DEBUG logs in production cost money, drown signals and tend to contain request data.",
        fix="Set the log-level variable (LOG_LEVEL) to INFO, WARNING or ERROR.",
        kinds=ALL_KINDS,
        check=logs.log_level,
        prod_only=True,
    ),
    Rule(
        id="PR-LG-003",
        title="no sensitive-looking variable carries a literal value",
        section="3, 5",
        severity=E,
        why=(
            "A literal password or token in a manifest lives in git history, CI logs and `kubectl "
            "get -o yaml` output."
        ),
        fix="Move the value into a Secret and reference it with valueFrom.secretKeyRef.",
        kinds=ALL_KINDS,
        check=logs.no_literal_secrets,
    ),
    Rule(
        id="PR-ER-001",
        title="DEBUG is off in prod",
        section="4",
        severity=E,
        why=(
            "Debug mode returns stack traces and internals to clients: an information leak and an "
            "attack aid."
        ),
        fix="Set the debug variable (DEBUG) to false or remove it.",
        kinds=ALL_KINDS,
        check=logs.debug_off,
        prod_only=True,
    ),
    Rule(
        id="PR-CF-001",
        title="secrets reach the container only by Secret reference",
        section="5",
        severity=E,
        why=(
            "Secrets in literals or ConfigMaps are readable by anyone who can read the workload or "
            "ConfigMaps, and are not encrypted at rest."
        ),
        fix="Store secrets in Secrets and use secretKeyRef, envFrom.secretRef or a Secret volume.",
        kinds=ALL_KINDS,
        check=configuration.secrets_by_reference,
    ),
    Rule(
        id="PR-CF-004",
        title="a ConfigMap holds no secret",
        section="5",
        severity=E,
        why=(
            "ConfigMap data is readable by anyone who may read ConfigMaps, is not encrypted at "
            "rest and ends up in git and CI logs: a private key, cloud key or token there is "
            "leaked."
        ),
        fix=(
            "Move the value into a Secret (or an ExternalSecret), rotate it, and reference it "
            "with secretKeyRef or a Secret volume."
        ),
        kinds=frozenset({"ConfigMap"}),
        check=exposure.config_map_secrets,
        scope="workload",
    ),
    Rule(
        id="PR-CF-002",
        title="every referenced Secret and key exists",
        section="5",
        severity=E,
        why=(
            "A missing Secret or key keeps the pod in CreateContainerConfigError: the rollout "
            "stalls."
        ),
        fix="Create the Secret (or fix the name and key), or mark the reference optional.",
        kinds=ALL_KINDS,
        check=configuration.referenced_secrets_exist,
        scope="workload",
    ),
    Rule(
        id="PR-CF-003",
        title="the environment (dev / staging / prod) is declared",
        section="5",
        severity=W,
        why="The profile decides which rules apply; an undeclared environment is checked as prod.",
        fix=(
            "Label the workload prodready.io/environment: dev|staging|prod (or set it in the "
            "ProductionService spec)."
        ),
        kinds=ALL_KINDS,
        check=configuration.environment_declared,
        scope="workload",
    ),
    Rule(
        id="PR-SC-001",
        title="an exposed workload in prod is served over TLS only",
        section="6",
        severity=E,
        why="Plain HTTP exposes credentials and session cookies to anyone on the path.",
        fix=(
            "Add a tls section covering every host of the Ingress and keep the HTTPS redirect; "
            "serve LoadBalancer/NodePort Services on TLS ports or terminate TLS at the balancer."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=security.tls_only,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        id="PR-SC-002",
        title="an exposed workload's CORS allowed origins are set and not * in prod",
        section="6",
        severity=E,
        why=(
            "A wildcard CORS policy lets any website call the API from a user's browser. Only "
            "what is exposed outside the cluster (Ingress, route, LoadBalancer or NodePort "
            "Service) is reached by browsers."
        ),
        fix=(
            "Set the CORS variable (CORS_ALLOWED_ORIGINS) to the exact origins, or configure CORS "
            "with explicit origins at the Ingress; list images you do not build in the policy's "
            "third_party_images."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=security.cors_origins,
        prod_only=True,
    ),
    Rule(
        id="PR-SC-003",
        title="an exposed workload has rate limiting configured",
        section="6",
        severity=E,
        why=(
            "Public endpoints without a rate limit fall over under a burst, a scraper or a "
            "credential-stuffing run."
        ),
        fix=(
            "Set the rate-limit variable (RATE_LIMIT) or rate-limit at the Ingress (e.g. "
            "nginx.ingress.kubernetes.io/limit-rps)."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=security.rate_limited,
        relaxed_in_dev=True,
    ),
    Rule(
        id="PR-SC-006",
        title="an Ingress or Gateway API route serves its hosts over TLS only in prod",
        section="6",
        severity=E,
        why=(
            "A route without TLS sends credentials and session cookies in clear text to "
            "whatever it exposes, whether or not the workload behind it is in the same input."
        ),
        fix=(
            "Give the Ingress a tls section covering every host (and keep the HTTPS redirect); "
            "attach an HTTPRoute or GRPCRoute to an HTTPS listener of its Gateway, or make it "
            "a RequestRedirect to https."
        ),
        kinds=frozenset({"Ingress", "HTTPRoute", "GRPCRoute"}),
        check=exposure.route_tls,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        id="PR-SC-007",
        title="a LoadBalancer Service is internal or limits its source ranges",
        section="6",
        severity=W,
        why=(
            "A public load balancer without loadBalancerSourceRanges accepts connections from "
            "the whole internet, bypassing any Ingress rate limits or authentication in front."
        ),
        fix=(
            "Set spec.loadBalancerSourceRanges to the networks that need it, or make the load "
            "balancer internal with the cloud's annotation (e.g. "
            "networking.gke.io/load-balancer-type: Internal)."
        ),
        kinds=frozenset({"Service"}),
        check=exposure.load_balancer_source_ranges,
        scope="workload",
    ),
    Rule(
        id="PR-SC-004",
        title=(
            "containers run as non-root, without privilege escalation, read-only, all caps dropped"
        ),
        section="6",
        severity=W,
        why=(
            "A compromised process with root, capabilities and a writable filesystem can persist "
            "and escalate."
        ),
        fix=(
            "Set runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true "
            "and capabilities.drop: [ALL]."
        ),
        kinds=ALL_KINDS,
        check=security.hardened_security_context,
        relaxed_in_dev=True,
    ),
    Rule(
        id="PR-SC-005",
        title="images are pinned",
        section="8",
        severity=W,
        why=(
            "latest (or no tag) changes under you: rollbacks and node restarts pull different code."
        ),
        fix="Use an immutable tag, and in prod an @sha256 digest.",
        kinds=ALL_KINDS,
        check=security.pinned_images,
        relaxed_in_dev=True,
    ),
    Rule(
        id="PR-MO-001",
        title="a metrics endpoint is declared and scraped",
        section="7",
        severity=E,
        why=(
            "Without request metrics there is no latency, error-rate or saturation signal to alert "
            "on."
        ),
        fix=(
            "Expose /metrics and add a ServiceMonitor or PodMonitor (or prometheus.io/scrape "
            "annotations)."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=monitoring.metrics_scraped,
        scope="workload",
    ),
    Rule(
        id="PR-MO-002",
        title="alerts exist for the workload's critical errors",
        section="7, 8",
        severity=W,
        why="Metrics nobody alerts on are found during the post-mortem.",
        fix=(
            "Add a PrometheusRule with alerts for the workload (label it app.kubernetes.io/name, "
            "or name it after the workload)."
        ),
        kinds=LONG_RUNNING_KINDS,
        check=monitoring.alerts_exist,
        scope="workload",
    ),
    Rule(
        id="PR-RS-001",
        title="CPU and memory requests and a memory limit are set",
        section="—",
        severity=W,
        why=(
            "Without requests the scheduler overpacks nodes; without a memory limit one leak "
            "evicts its neighbours."
        ),
        fix="Set resources.requests.cpu, resources.requests.memory and resources.limits.memory.",
        kinds=ALL_KINDS,
        check=resources.resource_requests,
    ),
    Rule(
        id="PR-RS-002",
        title="replicas ≥ 2 in prod, with a PodDisruptionBudget",
        section="8",
        severity=W,
        why="One replica means every node drain, eviction or crash is an outage.",
        fix=(
            "Run at least 2 replicas (or an HPA with minReplicas ≥ 2) and add a "
            "PodDisruptionBudget that still allows one eviction."
        ),
        kinds=REPLICATED_KINDS,
        check=resources.replicas_and_budget,
        prod_only=True,
        scope="workload",
    ),
    Rule(
        id="PR-RS-003",
        title="persistent data lives on PersistentVolumeClaims, not emptyDir",
        section="8",
        severity=W,
        why="emptyDir and hostPath data disappears with the pod or the node.",
        fix="Use volumeClaimTemplates (StatefulSet) or a PersistentVolumeClaim volume for data.",
        kinds=ALL_KINDS,
        check=resources.persistent_volumes,
        scope="workload",
    ),
    Rule(
        id="PR-EX-001",
        title="exemption annotations name known rules and give a reason",
        section="—",
        severity=W,
        why=(
            "A mistyped rule ID silently exempts nothing, and an exemption without a reason cannot "
            "be reviewed."
        ),
        fix="List known rule IDs in prodready.io/exempt and explain in prodready.io/exempt-reason.",
        kinds=ALL_KINDS,
        check=_exemption_check,
        scope="workload",
    ),
    Rule(
        id="PR-PS-001",
        title="the ProductionService spec renders",
        section="5",
        severity=E,
        why="A spec the operator cannot render is never applied: the service does not deploy.",
        fix="Fix the field named in the message (see `prodready render`).",
        kinds=frozenset({PRODUCTION_SERVICE_KIND}),
        check=None,
        scope="workload",
    ),
    Rule(
        id=LIMITS_RULE_ID,
        title="the workload is within the limits prodready evaluates",
        section="—",
        severity=E,
        why=(
            "Far more containers, variables, ports or volumes than any real pod declares would "
            "make one object cost unbounded time to check (and stall admission); such an object is "
            "refused unchecked rather than admitted unchecked. It cannot be exempted."
        ),
        fix=(
            "Split the workload, or move bulk configuration into a ConfigMap or Secret mounted "
            "as a volume; the message names the field and its cap (at most "
            f"{DEFAULT_LIMITS.containers:,} containers per pod; per container "
            f"{DEFAULT_LIMITS.env_per_container:,} env entries, "
            f"{DEFAULT_LIMITS.ports_per_container:,} ports; {DEFAULT_LIMITS.entries:,} entries "
            "per pod)."
        ),
        kinds=ALL_KINDS | {PRODUCTION_SERVICE_KIND},
        check=None,
        scope="workload",
    ),
)

RULES_BY_ID: dict[str, Rule] = {rule.id: rule for rule in RULES}
RULE_IDS: frozenset[str] = frozenset(RULES_BY_ID)

"""The compiled CEL and the Python rules agree (issue 16, part 4): a differential test.

A ReadinessPolicy that compiles every translated rule (PR-HC-001, PR-HC-002, PR-LG-003,
and PR-HC-003, PR-HC-004, PR-RS-001, PR-RS-003, PR-SC-004 and PR-SC-005 raised to error)
and three custom rules (one reading
`namespaceObject`), with a name-glob exemption, annotation
exemptions allowed for every rule, and a ReadinessException, is turned into a
ValidatingAdmissionPolicy by `prodready.rules.vap` and applied to the real apiserver. Each
workload is then created with `dryRun=All`:

1. in a namespace no binding selects, which gives the object as the apiserver admits it
   (defaulted: a Pod's requests copied from its limits, a container port's unknown
   `appProtocol` dropped) — an object the apiserver refuses there is not a case;
2. in the namespace the binding selects, where the VAP denies it or not;

and the verdict is compared with `rules.evaluate` on the admitted object under the same
policy: denied exactly when the engine finds an error-severity failure (`blocking_errors`)
of a compiled rule. The workloads: generated ones (Hypothesis: every kind, probes of
every handler and timing, port names, images, resources, init containers, variables with
sensitive-looking names and secret-shaped values, dependency annotations, exemption
annotations, names the exemption and the exception cover), edge cases that vary one thing
on a compliant workload, the Deployments rendered from test_fuzz's ProductionService cases,
and the benchmark corpus's workloads. The bar is 0 disagreements.

The default run takes a few hundred cases; the `slow` variant several thousand.
"""

from __future__ import annotations

import copy
import json
import re
import ssl
import tempfile
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st

from prodready import rules
from prodready.api.errors import SpecError
from prodready.render import render
from prodready.rules.admission import blocking_errors
from prodready.rules.policy import policy_set_from_objects
from prodready.rules.vap import policy_objects
from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import wait_for

SELECT_LABEL = "prodready.io/vap-e2e"

_RESOURCES = {
    "Deployment": "/apis/apps/v1",
    "StatefulSet": "/apis/apps/v1",
    "DaemonSet": "/apis/apps/v1",
    "ReplicaSet": "/apis/apps/v1",
    "Job": "/apis/batch/v1",
    "CronJob": "/apis/batch/v1",
    "Pod": "/api/v1",
}


def plural(kind: str) -> str:
    return kind.lower() + "s"


def admin_context(cluster: ControlPlane) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    context.load_cert_chain(*(str(part) for part in cluster.certs.pair("admin")))
    return context


_WARNED_RULE = re.compile(r"with binding '[^']*': ([A-Z][A-Z0-9]*-[A-Z0-9]+(?:-[A-Z0-9]+)?):")


def create_dry_run(
    cluster: ControlPlane,
    context: ssl.SSLContext,
    namespace: str,
    obj: dict[str, Any],
    warnings: list[str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of a POST with dryRun=All of `obj` into `namespace`; the
    response's Warning headers are added to `warnings`."""
    kind = obj["kind"]
    url = f"{cluster.api_url}{_RESOURCES[kind]}/namespaces/{namespace}/{plural(kind)}?dryRun=All"
    body = copy.deepcopy(obj)
    body["metadata"]["namespace"] = namespace
    request = urllib.request.Request(  # noqa: S310 - the local apiserver
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=60) as response:  # noqa: S310
            if warnings is not None:
                warnings.extend(response.headers.get_all("Warning") or ())
            return int(response.status), dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return int(error.code), dict(json.loads(error.read() or b"{}"))


def denied_by_vap(status: int, body: dict[str, Any]) -> bool:
    return status == 403 and "ValidatingAdmissionPolicy" in str(body.get("message", ""))


# -- the policy -------------------------------------------------------------------------------


def differential_policy(select: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": f"vap-{select}"},
        "spec": {
            "mode": "Enforce",
            "namespaceSelector": {"matchLabels": {SELECT_LABEL: select}},
            "severity": {
                "PR-HC-003": "error",
                "PR-HC-004": "error",
                "PR-RS-001": "error",
                "PR-RS-003": "error",
                "PR-SC-004": "error",
                "PR-SC-005": "error",
            },
            "exemptions": [
                {"rules": ["PR-HC-002"], "name": "legacy-*", "reason": "the old API"},
                {"rules": ["PR-RS-001"], "image": "busybox*", "reason": "tools"},
            ],
            "annotationExemptions": {"allow": "All"},
            "customRules": CUSTOM_RULES,
        },
    }


# Custom rules run as written in both places: the same text, two CEL implementations.
CUSTOM_RULES = [
    {
        "id": "ACME-OWN-001",
        "title": "Workloads name an owning team",
        "expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
        "messageExpression": "'label team is missing on ' + object.metadata.name",
    },
    {
        "id": "ACME-NS-001",
        "title": "DaemonSets only in namespaces that opt in",
        "kinds": ["DaemonSet"],
        "expression": "has(namespaceObject.metadata.labels) && "
        f"'{SELECT_LABEL}' in namespaceObject.metadata.labels",
    },
    {
        "id": "ACME-CPU-001",
        "title": "Deployments cap their containers' CPU",
        "kinds": ["Deployment"],
        "expression": "object.spec.template.spec.containers.all(c, has(c.resources) && "
        "has(c.resources.limits) && 'cpu' in c.resources.limits)",
    },
]


def differential_exception(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessException",
        "metadata": {"name": "excepted", "namespace": namespace},
        "spec": {
            "rules": [{"rule": "PR-HC-001", "reason": "a migration"}],
            "match": {"names": ["excepted"]},
            "expires": (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "approvedBy": "the platform team",
        },
    }


# -- the workloads ----------------------------------------------------------------------------

IMAGES = [
    "nginx",
    "nginx:latest",
    "nginx:1.27",
    "registry.example.com:5000/team/api",
    "registry.example.com:5000/team/api:2.1",
    "ghcr.io/acme/api@sha256:" + "a" * 64,
    "ghcr.io/acme/api:latest@sha256:" + "b" * 64,
    "busybox:1.36",
    "busybox",
]
PORT_NAMES = [
    None,
    "http",
    "https",
    "metrics",
    "http-metrics",
    "web",
    "web-ui",
    "grpc",
    "admin-http",
    "api",
    "db",
    "h2c",
    "http2",
    "www-x",
    "grpcs",
    "apix",
]
ANNOTATIONS = [
    ("PR-HC-001", "PR-HC-001: a worker probed by its queue"),
    ("PR-HC-001", "plain text for the one rule"),
    ("PR-HC-001,PR-RS-001", "plain text shared by two rules"),
    ("PR-HC-001, PR-RS-001", "PR-RS-001: sized by VPA; PR-HC-001: probed elsewhere"),
    ("PR-HC-002", ""),
    ("PR-SC-005", "PR-SC-005:   "),
    ("PR-HC-001", "PR-HC-002: other; why not"),
    (" PR-HC-002 ,", "  PR-HC-002 :  ok "),
    ("PR-RS-001", "PR-SC-005: digest soon"),
    ("PR-SC-005,,", "pinned by the registry"),
]
NAMES = ["api", "worker", "legacy-api", "legacy", "excepted", "excepted-2"]

HARDENED = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
SECURITY_CONTEXTS = [
    HARDENED,
    {**HARDENED, "runAsNonRoot": False, "runAsUser": 1000},
    {**HARDENED, "runAsNonRoot": False},
    {k: v for k, v in HARDENED.items() if k != "runAsNonRoot"},
    {**{k: v for k, v in HARDENED.items() if k != "runAsNonRoot"}, "runAsUser": 1000},
    {**HARDENED, "runAsUser": 0},
    {**HARDENED, "allowPrivilegeEscalation": True},
    {k: v for k, v in HARDENED.items() if k != "allowPrivilegeEscalation"},
    {**HARDENED, "readOnlyRootFilesystem": False},
    {**HARDENED, "capabilities": {"drop": ["all", "NET_RAW"]}},
    {**HARDENED, "capabilities": {"drop": ["NET_RAW"], "add": ["NET_ADMIN"]}},
    {**HARDENED, "capabilities": {}},
    {**HARDENED, "privileged": True, "allowPrivilegeEscalation": True},
    {},
]
VOLUMES = [
    {"name": "scratch", "emptyDir": {}},
    {"name": "host", "hostPath": {"path": "/srv/host"}},
    {"name": "claim", "persistentVolumeClaim": {"claimName": "data"}},
]
MOUNT_PATHS = [
    "/data",
    "/tmp",
    "/var/lib/app",
    "/srv",
    "/cache",
    "/app/db",
    "/run/lock",
    "/home/app",
    "/var/tmp/x",
    "/bitnami/postgresql",
    "/app/cache",
]
mounts = st.lists(
    st.tuples(st.sampled_from([v["name"] for v in VOLUMES]), st.sampled_from(MOUNT_PATHS)),
    max_size=3,
    unique_by=lambda mount: mount[1],
)
POD_SECURITY_CONTEXTS = [{"runAsNonRoot": True}, {"runAsUser": 1000}, {"runAsUser": 0}, {}]
HANDLERS = [
    {"httpGet": {"path": "/healthz", "port": 8080}},
    {"httpGet": {"path": "/ready", "port": 8080}},
    {"httpGet": {"path": "/api/db/ping", "port": 8080}},
    {"httpGet": {"path": "/Readiness", "port": "http"}},
    {"grpc": {"port": 9090}},
    {"tcpSocket": {"port": 8080}},
    {"exec": {"command": ["true"]}},
    {"exec": {"command": [" /bin/true "]}},
    {"exec": {"command": ["exit", "0"]}},
    {"exec": {"command": ["exit 0"]}},
    {"exec": {"command": ["/bin/echo", "ok"]}},
    {"exec": {"command": ["sh", "-c", "exit 0;"]}},
    {"exec": {"command": [" bash", "-ec ", " true ; ; "]}},
    {"exec": {"command": ["sh", "-c", "echo ok"]}},
    {"exec": {"command": ["sh", "-c", "echo ;"]}},
    {"exec": {"command": ["sh", "-c", "echo ; ;"]}},
    {"exec": {"command": ["sh", "-c", "echo\u3000ok"]}},
    {"exec": {"command": ["sh", "-c", "pg_isready -h localhost"]}},
    {"exec": {"command": ["/app/healthcheck", "--live"]}},
]
probe = st.builds(
    lambda handler, timings: {**handler, **timings},
    st.sampled_from(HANDLERS),
    st.fixed_dictionaries(
        {},
        optional={
            "periodSeconds": st.sampled_from([5, 10, 30]),
            "initialDelaySeconds": st.sampled_from([0, 10]),
        },
    ),
)
ENV_NAMES = [
    "DB_PASSWORD",
    "dbPassword",
    "DBPassword",
    "db-password",
    "API_KEY",
    "apiKey",
    "APIKEY",
    "SECRETARY",
    "TOKEN_TTL",
    "DB_PASSWORD_FILE",
    "AWS_ACCESS_KEY_ID",
    "PASSPHRASE",
    "LOG_LEVEL",
    "DATABASE_URL",
    "REDIS_HOST",
    "redis_url",
    "PAYMENTS_API_URL",
    "KAFKA_MAIN_BROKERS",
    "MYDB_URL",
]
ENV_VALUES = [
    {"value": "hunter2"},
    {"value": ""},
    {},
    {"value": "$(OTHER)"},
    {"value": "$(A)$(B)\n"},
    {"value": "postgres://app:s3cret@db:5432/app"},
    {"value": "postgres://db:5432/app"},
    {"value": "AKIA" + "ABCDEFGHIJKLMNOP"},
    {"value": "xAKIA" + "ABCDEFGHIJKLMNOP"},
    {"value": "ghp_" + "a" * 36},
    {"value": "éghp_" + "a" * 36},
    {"value": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnopqrstuv"},
    {"value": "-----BEGIN RSA PRIVATE KEY-----"},
    {"value": "sk-ant-api03-" + "x" * 90},
    {"value": "info"},
    {"valueFrom": {"secretKeyRef": {"name": "app", "key": "password"}}},
    {"valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
]
env_entry = st.builds(
    lambda name, value: {"name": name, **value},
    st.sampled_from(ENV_NAMES),
    st.sampled_from(ENV_VALUES),
)
DEPENDENCIES = [
    '[{"name":"orders-db","type":"database"}]',
    '[ {"type": "redis", "name": "cache"} ]',
    "[]",
    '[{"type":"database"}]',
    "not json",
    '[{"name":"orders-db","type":"database"},]',
    '{"name":"orders-db"}',
]
resources = st.fixed_dictionaries(
    {},
    optional={
        "requests": st.fixed_dictionaries(
            {}, optional={"cpu": st.just("100m"), "memory": st.just("64Mi")}
        ),
        "limits": st.fixed_dictionaries(
            {}, optional={"cpu": st.just("1"), "memory": st.just("128Mi")}
        ),
    },
)
container = st.fixed_dictionaries(
    {
        "image": st.sampled_from(IMAGES),
        "ports": st.lists(st.sampled_from(PORT_NAMES), max_size=3),
    },
    optional={
        "livenessProbe": probe,
        "readinessProbe": probe,
        "startupProbe": probe,
        "env": st.lists(env_entry, max_size=3),
        "resources": resources,
        "securityContext": st.sampled_from(SECURITY_CONTEXTS),
        "volumeMounts": mounts,
    },
)
init_container = st.fixed_dictionaries(
    {"image": st.sampled_from(IMAGES)},
    optional={"resources": resources, "securityContext": st.sampled_from(SECURITY_CONTEXTS)},
)
annotation = st.sampled_from(ANNOTATIONS)
workload_case = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(
            ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"]
        ),
        "name": st.sampled_from(NAMES),
        "containers": st.lists(container, min_size=1, max_size=3),
        "init": st.lists(init_container, max_size=1),
    },
    optional={
        "annotation": annotation,
        "template_annotation": annotation,
        "app_protocol": st.just(True),
        "team": st.booleans(),
        "pod_security": st.sampled_from(POD_SECURITY_CONTEXTS),
        "dependencies": st.sampled_from(DEPENDENCIES),
        "template_dependencies": st.sampled_from(DEPENDENCIES),
    },
)


def _pod_spec(case: dict[str, Any]) -> dict[str, Any]:
    used: set[str] = set()
    port_number = 8000
    containers = []
    for index, raw in enumerate(case["containers"]):
        body = {k: v for k, v in raw.items() if k != "ports"}
        body["name"] = f"c{index}"
        ports = []
        for name in raw["ports"]:
            port_number += 1
            port: dict[str, Any] = {"containerPort": port_number}
            if name is not None and name not in used:
                used.add(name)
                port["name"] = name
            if case.get("app_protocol"):
                port["appProtocol"] = "http"  # not a container port field: dropped
            ports.append(port)
        if ports:
            body["ports"] = ports
        containers.append(body)
    for body in containers:
        if "volumeMounts" in body:
            body["volumeMounts"] = [{"name": n, "mountPath": p} for n, p in body["volumeMounts"]]
    spec: dict[str, Any] = {"containers": containers}
    if any(body.get("volumeMounts") for body in containers):
        spec["volumes"] = VOLUMES
    if "pod_security" in case:
        spec["securityContext"] = case["pod_security"]
    if case["init"]:
        spec["initContainers"] = [
            {**raw, "name": f"init{index}", "command": ["true"]}
            for index, raw in enumerate(case["init"])
        ]
    if case["kind"] in ("Job", "CronJob"):
        spec["restartPolicy"] = "Never"
    return spec


def _annotations(pair: tuple[str, str] | None) -> dict[str, str]:
    if pair is None:
        return {}
    listed, reason = pair
    found = {"prodready.io/exempt": listed}
    if reason:
        found["prodready.io/exempt-reason"] = reason
    return found


def build_workload(case: dict[str, Any]) -> dict[str, Any]:
    """A valid workload object of `case["kind"]` from the generated parts."""
    kind, name = case["kind"], case["name"]
    labels = {"app": name, **({"team": "payments"} if case.get("team", True) else {})}
    metadata: dict[str, Any] = {"name": name, "labels": labels}
    own = _annotations(case.get("annotation"))
    if "dependencies" in case:
        own["prodready.io/dependencies"] = case["dependencies"]
    if own:
        metadata["annotations"] = own
    spec = _pod_spec(case)
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}
    template: dict[str, Any] = {"metadata": {"labels": labels}, "spec": spec}
    template_annotations = _annotations(case.get("template_annotation"))
    if "template_dependencies" in case:
        template_annotations["prodready.io/dependencies"] = case["template_dependencies"]
    if template_annotations:
        template["metadata"]["annotations"] = template_annotations
    if kind == "Job":
        body: dict[str, Any] = {"template": template}
    elif kind == "CronJob":
        body = {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}
    else:
        body = {"selector": {"matchLabels": labels}, "template": template}
        if kind == "StatefulSet":
            body["serviceName"] = name
    group = "batch/v1" if kind in ("Job", "CronJob") else "apps/v1"
    return {"apiVersion": group, "kind": kind, "metadata": metadata, "spec": body}


def generated_workloads(count: int, random_seed: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    @seed(random_seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(workload_case)
    def collect(case: dict[str, Any]) -> None:
        found.append(build_workload(case))

    collect()
    return found


def edge_workloads() -> list[dict[str, Any]]:
    """One thing varied at a time on an otherwise compliant Deployment: each port name
    without a readiness probe, each image, each exemption annotation on a workload failing
    only PR-HC-001 (so a wrong answer on one of them is not hidden by another rule)."""
    sound = {
        "image": "nginx:1.27",
        "securityContext": HARDENED,
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "initialDelaySeconds": 10},
        "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}},
    }
    found = []
    ready = {"httpGet": {"path": "/ready", "port": 8080}}
    for handler in HANDLERS:
        # PR-HC-003 on each handler, as liveness (with and without a start-up allowance)
        # and as readiness; PR-HC-004 with a dependency variable beside it.
        for live, extra in (
            ({**handler, "initialDelaySeconds": 5}, {}),
            (handler, {}),
            (handler, {"startupProbe": {"tcpSocket": {"port": 8080}}}),
        ):
            parts = {**sound, "ports": ["http"], "livenessProbe": live, "readinessProbe": ready}
            found.append(
                build_workload(
                    {"kind": "Deployment", "name": "api", "containers": [parts | extra], "init": []}
                )
            )
        parts = {**sound, "ports": ["http"], "readinessProbe": handler}
        parts["env"] = [{"name": "DATABASE_URL", "value": "postgres://db/app"}]
        found.append(
            build_workload({"kind": "Deployment", "name": "api", "containers": [parts], "init": []})
        )
    for ready_period, live_period in ((5, 10), (10, 10), (30, 10), (None, 5), (15, None)):
        live = {**sound["livenessProbe"], "periodSeconds": live_period}
        readiness = {**ready, "periodSeconds": ready_period}
        parts = {
            **sound,
            "ports": ["http"],
            "livenessProbe": {k: v for k, v in live.items() if v is not None},
            "readinessProbe": {k: v for k, v in readiness.items() if v is not None},
        }
        found.append(
            build_workload({"kind": "Deployment", "name": "api", "containers": [parts], "init": []})
        )
    for name in ENV_NAMES:
        for value in ENV_VALUES:
            parts = {**sound, "ports": [], "env": [{"name": name, **value}]}
            found.append(
                build_workload({"kind": "Job", "name": "api", "containers": [parts], "init": []})
            )
    for dependencies in DEPENDENCIES:
        for where in ("dependencies", "template_dependencies"):
            parts = {**sound, "ports": ["http"], "readinessProbe": ready}
            case = {"kind": "Deployment", "name": "api", "containers": [parts], "init": []}
            found.append(build_workload({**case, where: dependencies}))
            no_readiness = {**sound, "ports": ["web"]}
            found.append(
                build_workload({**case, "containers": [no_readiness], where: dependencies})
            )
    for port in PORT_NAMES:
        parts = {**sound, "ports": [port]}
        found.append(
            build_workload({"kind": "Deployment", "name": "api", "containers": [parts], "init": []})
        )
    for image in IMAGES:
        parts = {**sound, "image": image, "ports": []}
        found.append(
            build_workload({"kind": "Pod", "name": "api", "containers": [parts], "init": []})
        )
    for volume in VOLUMES:
        for path in MOUNT_PATHS:
            for kind in ("StatefulSet", "Deployment"):
                parts = {**sound, "ports": [], "volumeMounts": [(volume["name"], path)]}
                found.append(
                    build_workload({"kind": kind, "name": "api", "containers": [parts], "init": []})
                )
    for context in SECURITY_CONTEXTS:
        for pod in POD_SECURITY_CONTEXTS:
            parts = {**sound, "ports": [], "securityContext": context}
            case = {"kind": "Job", "name": "api", "containers": [parts], "init": []}
            found.append(build_workload({**case, "pod_security": pod}))
    unprobed = {k: v for k, v in sound.items() if k != "livenessProbe"} | {"ports": []}
    for pair in ANNOTATIONS:
        for where in ("annotation", "template_annotation"):
            case = {"kind": "StatefulSet", "name": "api", "containers": [unprobed], "init": []}
            found.append(build_workload({**case, where: pair}))
    return found


def rendered_workloads(count: int, random_seed: int) -> list[dict[str, Any]]:
    """The workloads rendered from test_fuzz's ProductionService cases."""
    from tests.e2e.test_fuzz import cases

    found = []
    for case in cases(count, random_seed):
        case["metadata"]["namespace"] = "default"
        try:
            children = render(case)
        except SpecError:
            continue
        found.extend(c for c in children if c["kind"] in ("Deployment", "StatefulSet"))
    return found


def corpus_workloads(count: int) -> list[dict[str, Any]]:
    """The benchmark corpus's Deployments and StatefulSets."""
    from benchmarks.corpus import generate

    with tempfile.TemporaryDirectory(prefix="prodready-vap-corpus-") as directory:
        generate(Path(directory), workloads=count)
        found = []
        for path in sorted(Path(directory).glob("*.yaml")):
            for document in yaml.safe_load_all(path.read_text()):
                if document and document.get("kind") in ("Deployment", "StatefulSet"):
                    found.append(document)
    return found


# -- the comparison ---------------------------------------------------------------------------


@dataclass
class Outcome:
    cases: int = 0
    denied: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_rule: Counter[str] = field(default_factory=Counter)
    disagreements: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Setup:
    cluster: ControlPlane
    context: ssl.SSLContext
    enforced: str
    warned: str
    plain: str
    compiled: frozenset[str]
    policies: rules.PolicySet
    namespace_object: dict[str, Any]


def engine_denies(setup: Setup, admitted: dict[str, Any]) -> tuple[bool, list[str]]:
    obj = copy.deepcopy(admitted)
    obj["metadata"]["namespace"] = setup.enforced
    reports = rules.evaluate([setup.namespace_object, obj], policies=setup.policies)
    errors = [
        f"{f.rule_id} {f.message}"
        for report in reports
        for f in blocking_errors(report)
        if f.rule_id in setup.compiled
    ]
    return bool(errors), errors


Judged = tuple[str, bool, str | None, frozenset[str]]


def judge(setup: Setup, source: str, obj: dict[str, Any]) -> Judged:
    """(what happened, denied by the VAP, a disagreement or None, the rules the VAP warned
    of) for one workload."""
    status, admitted = create_dry_run(setup.cluster, setup.context, setup.plain, obj)
    if status >= 300:
        return f"refused {status}", False, None, frozenset()
    expected, errors = engine_denies(setup, admitted)
    warnings: list[str] = []
    status, answer = create_dry_run(setup.cluster, setup.context, setup.warned, obj, warnings)
    if status >= 300:
        message = f"{source} {obj['kind']}: warned namespace {status} {answer}"
        return "case", False, message, frozenset()
    warned = frozenset(m.group(1) for w in warnings for m in _WARNED_RULE.finditer(w))
    status, answer = create_dry_run(setup.cluster, setup.context, setup.enforced, obj)
    actual = denied_by_vap(status, answer)
    if status >= 300 and not actual:
        return "case", False, f"{source} {obj['kind']}: unexpected {status} {answer}", warned
    failing = {error.split(" ", 1)[0] for error in errors}
    if expected == actual and failing == warned:
        return "case", actual, None, warned
    return (
        "case",
        actual,
        f"{source} {obj['kind']} {obj['metadata']['name']}: engine "
        f"{'denies' if expected else 'admits'} ({errors}), VAP "
        f"{'denies: ' + str(answer.get('message')) if actual else 'admits'}, warns {warned}; "
        f"object: {json.dumps(admitted.get('spec'))[:1500]} "
        f"metadata: {json.dumps(admitted.get('metadata', {}).get('annotations'))}",
        warned,
    )


def run_cases(setup: Setup, batches: list[tuple[str, list[dict[str, Any]]]]) -> Outcome:
    outcome = Outcome()
    work = [(source, obj) for source, objects in batches for obj in objects]
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda item: judge(setup, item[0], item[1]), work))
    for (source, _), (what, denied, disagreement, warned) in zip(work, answers, strict=True):
        if what != "case":
            outcome.refused[f"{source} {what}"] += 1
            continue
        outcome.cases += 1
        outcome.denied += denied
        outcome.by_source[source] += 1
        outcome.by_rule.update(warned)
        if disagreement is not None:
            outcome.disagreements.append(disagreement)
    print(
        f"\nVAP differential: {outcome.cases} cases ({dict(outcome.by_source)}), "
        f"{outcome.denied} denied, refused before the VAP: {dict(outcome.refused)}; "
        f"{len(outcome.disagreements)} disagreements; cases failing each rule: "
        f"{dict(sorted(outcome.by_rule.items()))}"
    )
    return outcome


@pytest.fixture(scope="module")
def setup(cluster: ControlPlane) -> Iterator[Setup]:
    suffix = format(abs(hash(cluster.api_url)) % 10_000, "04d")
    enforced, warned, plain = (f"vap-{what}-{suffix}" for what in ("diff", "warn", "plain"))
    for namespace in (enforced, warned, plain):
        cluster.kubectl("create", "namespace", namespace)
    cluster.kubectl("label", "namespace", enforced, f"{SELECT_LABEL}=differential")
    cluster.kubectl("label", "namespace", warned, f"{SELECT_LABEL}=warned")
    policy = differential_policy("differential")
    exception = differential_exception(enforced)
    generated, plan = policy_objects(policy, others=[policy], exceptions=[exception])
    assert set(plan.compiled) == {
        "PR-HC-001",
        "PR-HC-002",
        "PR-HC-003",
        "PR-HC-004",
        "PR-LG-003",
        "PR-RS-001",
        "PR-RS-003",
        "PR-SC-004",
        "PR-SC-005",
    } | {rule["id"] for rule in CUSTOM_RULES}
    # The same policy in Audit mode warns (every failing validation, where Deny stops at
    # the first) in a namespace of its own, with its own exception: the per-rule comparison.
    audit = differential_policy("warned")
    audit["spec"]["mode"] = "Audit"
    warn_objects, warn_plan = policy_objects(
        audit, others=[audit], exceptions=[differential_exception(warned)]
    )
    assert warn_plan.compiled == plan.compiled
    assert warn_objects[1]["spec"]["validationActions"] == ["Warn"]
    generated += warn_objects
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps({"kind": "List", "apiVersion": "v1", "items": generated}),
    )
    namespace_object = json.loads(
        cluster.kubectl("get", "namespace", enforced, "-o", "json").stdout
    )
    context = admin_context(cluster)
    probe_object = build_workload(
        {
            "kind": "Deployment",
            "name": "probe",
            "containers": [{"image": "nginx:1", "ports": []}],
            "init": [],
        }
    )
    wait_for(
        lambda: denied_by_vap(*create_dry_run(cluster, context, enforced, probe_object)),
        30,
        "the generated VAP to deny",
    )
    yield Setup(
        cluster=cluster,
        context=context,
        enforced=enforced,
        warned=warned,
        plain=plain,
        compiled=frozenset(plan.compiled),
        policies=policy_set_from_objects([policy, exception]),
        namespace_object=namespace_object,
    )
    for obj in generated:
        cluster.kubectl(
            "delete", obj["kind"].lower(), obj["metadata"]["name"], "--wait=false", check=False
        )
    for namespace in (enforced, warned, plain):
        cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_vap_and_engine_agree(setup: Setup) -> None:
    outcome = run_cases(
        setup,
        [
            ("edge", edge_workloads()),
            ("generated", generated_workloads(200, 16)),
            ("fuzz", rendered_workloads(40, 16)),
            ("corpus", corpus_workloads(80)),
        ],
    )
    assert outcome.cases >= 300, outcome
    assert 0 < outcome.denied < outcome.cases
    # Every compiled built-in rule is seen failing (and so compared) somewhere; ACME-NS-001
    # cannot fail in the namespaces the policy selects.
    assert {r for r in setup.compiled if r.startswith("PR-")} <= set(outcome.by_rule)
    assert not outcome.disagreements, "\n".join(outcome.disagreements[:10])


@pytest.mark.slow
def test_vap_and_engine_agree_on_thousands(setup: Setup) -> None:
    outcome = run_cases(
        setup,
        [
            ("edge", edge_workloads()),
            ("generated", generated_workloads(2500, 1616)),
            ("fuzz", rendered_workloads(300, 1616)),
            ("corpus", corpus_workloads(1000)),
        ],
    )
    assert outcome.cases >= 3000, outcome
    assert not outcome.disagreements, "\n".join(outcome.disagreements[:10])

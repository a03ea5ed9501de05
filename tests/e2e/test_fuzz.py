"""ProductionService specs from a Hypothesis strategy, through the real CRD admission and
the renderer.

Every case — most valid-ish, some broken in one or more fields — must end one of three
ways: the apiserver rejects it (`kubectl apply --dry-run=server`) naming a field; the
renderer rejects it with a SpecError naming a field that exists in (or directly under
something in) the object; or it renders to objects the apiserver accepts. Anything else
is a bug: a renderer exception other than SpecError, an object the CRD admitted but the
renderer turned into something the apiserver refuses, a rejection that names no field.

`make test` runs a small sample (25 cases through the apiserver in one batched kubectl
call, 500 through the renderer alone); the `slow` variants, run by `make bench`, run
300 through the apiserver and 10,000 through the renderer.
"""

from __future__ import annotations

import json
import re
import ssl
import traceback
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st

from prodready import rules
from prodready.api.errors import SpecError
from prodready.kube.client import APPLY_PATCH, encode_body
from prodready.render import CHILD_KINDS, render
from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import CRD_FILE, MONITORING_CRDS, install_crds

API_VERSION = "prodready.io/v1alpha1"
KIND = "ProductionService"
BATCH = 100

# -- the strategy ------------------------------------------------------------------------


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`good` nine times in ten, `bad` otherwise (a case has many fields)."""
    return st.integers(0, 9).flatmap(lambda roll: bad if roll == 0 else good)


def maybe(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """A mapping with any subset of `fields`."""
    return st.fixed_dictionaries({}, optional=fields)


small_int = st.integers(min_value=-3, max_value=4000)
huge_int = st.sampled_from([2**31, 2**53 + 1, 2**63 - 1, -(2**31)])
odd_scalar = st.one_of(
    st.none(), st.booleans(), st.just(""), st.just("7"), st.floats(-10, 10), huge_int
)
dns_label = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
env_name = mostly(
    st.from_regex(r"[A-Z_][A-Z0-9_]{0,12}", fullmatch=True),
    st.sampled_from(
        [
            "PASSWORD",
            "API_TOKEN",
            "db.password",
            "1BAD",
            "",
            "HAS SPACE",
            "LOG_LEVEL",
            "ENVIRONMENT",
            "x" * 129,
        ]
    ),
)
quantity = mostly(
    st.sampled_from(["100m", "1", "0.5", "128Mi", "1Gi", "2", "250m", "1e3", "64Ki", "1.5Gi"]),
    st.sampled_from(["abc", "-1", "1.5.5", "", "1 Mi", "0.1m", ".5", "+1", "1E3", "1Mi ", 2]),
)
http_path = mostly(
    st.sampled_from(["/health", "/healthz", "/live", "/metrics", "/a/b-c_d"]),
    st.sampled_from(["health", "/has space", "/q?x=1", "", "/" + "p" * 1100, "/#frag"]),
)
duration = mostly(
    st.sampled_from(["30s", "1m", "5m", "1h30m", "0", "500ms"]),
    st.sampled_from(["", "5 m", "1.5m", "forever", "-1s", "5M"]),
)
label_key = mostly(
    st.sampled_from(["team", "tier", "example.com/owner", "cost-centre"]),
    st.sampled_from(
        ["app.kubernetes.io/name", "prodready.io/x", "bad key", "-lead", "a/b/c", "x" * 70, ""]
    ),
)
label_value = mostly(
    st.sampled_from(["web", "gold", "a-b.c_d", ""]),
    st.sampled_from(["has space", "-lead", "x" * 64, "ünïcode", "a/b"]),
)
port = mostly(st.integers(1, 65535), st.one_of(st.sampled_from([0, 65536, -1, "80"]), huge_int))

probe_timing = maybe(
    {
        "initialDelaySeconds": mostly(st.integers(0, 60), small_int),
        "periodSeconds": mostly(st.integers(1, 60), small_int),
        "timeoutSeconds": mostly(st.integers(1, 10), small_int),
        "failureThreshold": mostly(st.integers(1, 10), small_int),
    }
)

health = maybe(
    {
        "path": http_path,
        "port": port,
        "liveness": st.builds(
            lambda timing, path: {**timing, **path},
            probe_timing,
            maybe({"path": http_path}),
        ),
        "readiness": probe_timing,
        "startup": maybe(
            {
                "enabled": mostly(st.booleans(), odd_scalar),
                "periodSeconds": mostly(st.integers(1, 10), small_int),
                "failureThreshold": mostly(st.integers(1, 60), small_int),
            }
        ),
        "dependencies": st.lists(
            st.fixed_dictionaries(
                {
                    "name": mostly(dns_label, st.sampled_from(["Bad_Name", "", "x" * 70])),
                    "type": mostly(
                        st.sampled_from(["database", "redis", "external"]), st.just("kafka")
                    ),
                }
            ),
            max_size=3,
        ),
    }
)

env_var = st.fixed_dictionaries(
    {"name": env_name}, optional={"value": mostly(st.text(max_size=20), odd_scalar)}
)
secret_env_var = st.fixed_dictionaries(
    {
        "name": env_name,
        "secretName": mostly(dns_label, st.sampled_from(["Bad", "a..b", ""])),
        "key": mostly(st.from_regex(r"[a-z][a-z0-9._-]{0,8}", fullmatch=True), st.just("bad key")),
    },
    optional={"optional": st.booleans()},
)

alerts = maybe(
    {
        "enabled": st.booleans(),
        "errorRatePercent": mostly(st.floats(0.1, 100), st.sampled_from([0, 150, -1, "5"])),
        "for": duration,
        "latencyP99Seconds": mostly(st.floats(0.01, 30), st.sampled_from([0, -1, 99999])),
        "severity": mostly(st.sampled_from(["critical", "warning"]), st.just("page")),
        "requestsMetric": mostly(st.just("http_requests_total"), st.just("bad-metric")),
        "statusLabel": mostly(st.just("code"), st.just("bad:label")),
        "labels": st.dictionaries(
            mostly(st.sampled_from(["team", "route"]), st.sampled_from(["bad key", ""])),
            st.text(max_size=10),
            max_size=3,
        ),
    }
)

spec_fields: dict[str, st.SearchStrategy[Any]] = {
    "replicas": mostly(st.integers(0, 5), st.one_of(small_int, odd_scalar)),
    "environmentVariable": env_name,
    "command": st.lists(st.text(max_size=10), max_size=3),
    "args": st.lists(mostly(st.text(max_size=10), odd_scalar), max_size=3),
    "ports": maybe({"http": port, "metrics": port}),
    "health": health,
    "shutdown": maybe(
        {
            "gracePeriodSeconds": mostly(st.integers(1, 120), small_int),
            "preStopDelaySeconds": mostly(st.integers(0, 30), small_int),
        }
    ),
    "env": st.lists(env_var, max_size=4),
    "secretEnv": st.lists(secret_env_var, max_size=3),
    "envFromSecrets": st.lists(
        st.fixed_dictionaries(
            {"secretName": mostly(dns_label, st.just("Bad"))},
            optional={
                "prefix": mostly(st.just("APP_"), st.just("1bad")),
                "optional": st.booleans(),
            },
        ),
        max_size=2,
    ),
    "logging": maybe(
        {
            "format": mostly(st.sampled_from(["json", "text"]), st.just("xml")),
            "level": mostly(
                st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR"]), st.just("info")
            ),
            "formatVariable": env_name,
            "levelVariable": env_name,
        }
    ),
    "security": maybe(
        {
            "corsAllowedOrigins": st.lists(
                mostly(
                    st.sampled_from(["https://shop.example.com", "http://localhost:3000"]),
                    st.sampled_from(["*", "shop.example.com", "https://a.com/path", ""]),
                ),
                max_size=3,
            ),
            "rateLimit": mostly(
                st.sampled_from(["100/minute", "10/second", "5000/hour", "1/day"]),
                st.sampled_from(["0/minute", "100/week", "fast", "", "100 / minute"]),
            ),
            "debug": mostly(st.booleans(), odd_scalar),
            "corsVariable": env_name,
        }
    ),
    "metrics": maybe(
        {"enabled": st.booleans(), "path": http_path, "interval": duration, "alerts": alerts}
    ),
    "resources": maybe(
        {
            "requests": maybe({"cpu": quantity, "memory": quantity}),
            "limits": maybe({"cpu": quantity, "memory": quantity}),
        }
    ),
    "exposure": st.fixed_dictionaries(
        {
            "host": mostly(
                st.sampled_from(["api.example.com", "*.example.com", "a-b.c.example.org"]),
                st.sampled_from(["API.example.com", "-bad.example.com", "", "a..b", "x" * 260]),
            )
        },
        optional={
            "path": http_path,
            "tlsSecretName": mostly(dns_label, st.just("Bad_TLS")),
            "ingressClassName": mostly(st.just("nginx"), st.just("NGINX")),
            "annotations": st.dictionaries(label_key, st.text(max_size=10), max_size=2),
        },
    ),
    "autoscaling": st.fixed_dictionaries(
        {"maxReplicas": mostly(st.integers(1, 20), small_int)},
        optional={
            "minReplicas": mostly(st.integers(1, 20), small_int),
            "targetCPUUtilizationPercentage": mostly(st.integers(1, 100), small_int),
            "targetMemoryUtilizationPercentage": mostly(st.integers(1, 100), small_int),
        },
    ),
    "pod": maybe(
        {
            "serviceAccountName": mostly(dns_label, st.just("Bad")),
            "automountServiceAccountToken": st.booleans(),
            "imagePullSecrets": st.lists(mostly(dns_label, st.just("Bad")), max_size=2),
            "nodeSelector": st.dictionaries(label_key, label_value, max_size=2),
            "tolerations": st.lists(
                maybe(
                    {
                        "key": label_key,
                        "operator": mostly(st.sampled_from(["Exists", "Equal"]), st.just("In")),
                        "value": label_value,
                        "effect": mostly(
                            st.sampled_from(["NoSchedule", "PreferNoSchedule", "NoExecute"]),
                            st.just("Never"),
                        ),
                        "tolerationSeconds": mostly(st.integers(0, 600), small_int),
                    }
                ),
                max_size=2,
            ),
            "annotations": st.dictionaries(label_key, st.text(max_size=10), max_size=2),
            "labels": st.dictionaries(label_key, label_value, max_size=2),
            "runAsUser": mostly(st.integers(1, 65535), st.sampled_from([0, -1])),
            "runAsGroup": mostly(st.integers(0, 65535), st.just(-1)),
            "tmpSizeLimit": quantity,
        }
    ),
    "exemptions": st.lists(
        st.fixed_dictionaries(
            {
                "rule": mostly(
                    st.sampled_from(["PR-RS-002", "PR-LG-003", "PR-SC-001", "PR-HC-001"]),
                    st.sampled_from(["PR-XX", "pr-rs-002", ""]),
                ),
                "reason": mostly(st.just("a reason"), st.just("")),
            }
        ),
        max_size=2,
    ),
    "bogusField": st.just(1),
}

specs = st.builds(
    lambda required, optional: {**required, **optional},
    st.fixed_dictionaries(
        {
            "image": mostly(
                st.sampled_from(
                    [
                        "registry.example.com/shop/web:1.4.2",
                        "ghcr.io/example/api:latest",
                        "nginx",
                        "example/app@sha256:" + "a" * 64,
                    ]
                ),
                st.sampled_from(["", "has space:1", "x" * 600, 5]),
            ),
            "environment": mostly(
                st.sampled_from(["dev", "staging", "prod"]), st.sampled_from(["production", ""])
            ),
        }
    ),
    # Few optional fields per case (each is then likely valid), now and then many.
    st.dictionaries(st.sampled_from(sorted(spec_fields)), st.just(None), max_size=5).flatmap(
        lambda chosen: st.fixed_dictionaries({name: spec_fields[name] for name in chosen})
    ),
)


def cases(count: int, random_seed: int) -> list[dict[str, Any]]:
    """`count` ProductionServices named case-0 … from the strategy, the same every time."""
    found: list[dict[str, Any]] = []

    @seed(random_seed)
    @settings(
        max_examples=count,
        database=None,
        phases=[Phase.generate],
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(specs)
    def collect(spec: dict[str, Any]) -> None:
        found.append(spec)

    collect()
    return [
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": f"case-{index}"},
            "spec": spec,
        }
        for index, spec in enumerate(found)
    ]


# -- the oracle --------------------------------------------------------------------------

_PATH_TOKEN = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_]*)|\[([^\]]*)\]")


def resolve(obj: Any, path: str) -> tuple[bool, bool]:
    """(the path exists, its parent exists) in `obj`, for `spec.env[2].value` paths."""
    current, parent_found = obj, True
    tokens = [(m[1], m[2]) for m in _PATH_TOKEN.finditer(path)]
    for position, (name, bracket) in enumerate(tokens):
        key: Any = name if name else bracket
        if isinstance(current, list) and not name and bracket.isdigit():
            key = int(bracket)
            if key >= len(current):
                return False, position == len(tokens) - 1
            current = current[key]
            continue
        if not isinstance(current, dict) or key not in current:
            return False, position == len(tokens) - 1 and isinstance(current, dict)
        current = current[key]
    return True, parent_found


def _schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_FILE.read_text())
    return dict(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])


SCHEMA = _schema()


def in_schema(path: str) -> bool:
    """Whether `spec.health.readiness.periodSeconds`-style paths name a field of the CRD."""
    node: dict[str, Any] = SCHEMA
    for name, bracket in ((m[1], m[2]) for m in _PATH_TOKEN.finditer(path)):
        if name and name in (node.get("properties") or {}):
            node = node["properties"][name]
        elif bracket and bracket.isdigit() and "items" in node:
            node = node["items"]
        elif bracket and isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return False
    return True


def names_a_field(case: dict[str, Any], path: str) -> bool:
    """A field of the object (or where one is missing), or of the schema (a default)."""
    exists, parent_exists = resolve(case, path)
    return exists or parent_exists or in_schema(path)


@dataclass
class Verdict:
    """What the renderer made of one case."""

    objects: list[dict[str, Any]] | None = None
    spec_error: SpecError | None = None
    crash: str | None = None


def judge_renderer(case: dict[str, Any]) -> Verdict:
    """Render; a SpecError must name a field the object has (or could have)."""
    try:
        objects = render(case)
    except SpecError as error:
        if not names_a_field(case, error.field):
            return Verdict(crash=f"SpecError names {error.field!r}, not in the object: {error}")
        if error.field not in str(error):
            return Verdict(crash=f"SpecError message does not name its field: {error}")
        return Verdict(spec_error=error)
    except Exception:  # any other exception is a renderer bug
        return Verdict(crash=traceback.format_exc())
    try:
        json.dumps(objects)
        assert render(case) == objects, "rendering is not deterministic"
        kinds = {(o["apiVersion"], o["kind"]) for o in objects}
        assert kinds <= {(k.api_version, k.kind) for k in CHILD_KINDS}, kinds
        rules.evaluate(objects)
    except Exception:
        return Verdict(crash=traceback.format_exc())
    return Verdict(objects=objects)


@dataclass
class DryRun:
    """The apiserver's answer for each object of a batch, by `kind/name`."""

    accepted: set[str] = field(default_factory=set)
    rejected: dict[str, str] = field(default_factory=dict)


def _key(obj: dict[str, Any]) -> str:
    return f"{obj['kind'].lower()}/{obj['metadata']['name']}"


def kubectl_dry_run(cluster: ControlPlane, namespace: str, objects: list[dict[str, Any]]) -> DryRun:
    """`kubectl apply --dry-run=server`, as users apply a ProductionService: one call per
    batch of `BATCH`; the rejected ones again one by one for each one's message."""
    answer = DryRun()
    for start in range(0, len(objects), BATCH):
        _kubectl_batch(cluster, namespace, objects[start : start + BATCH], answer)
    return answer


def _kubectl_batch(
    cluster: ControlPlane, namespace: str, batch: list[dict[str, Any]], answer: DryRun
) -> None:
    result = cluster.kubectl(
        "apply",
        "--dry-run=server",
        "-n",
        namespace,
        "-o",
        "name",
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": batch}),
        check=False,
        timeout=300,
    )
    # `-o name` prints `kind.group/name` for each object the apiserver accepted.
    printed = {
        line.strip().split(".")[0] + "/" + line.strip().rsplit("/", 1)[-1]
        for line in result.stdout.splitlines()
        if "/" in line
    }
    accepted = {_key(obj) for obj in batch if _key(obj) in printed}
    answer.accepted |= accepted
    rest = [obj for obj in batch if _key(obj) not in accepted]
    if len(batch) == 1 and rest:
        answer.rejected[_key(batch[0])] = result.stderr.strip() or "(no message)"
        return
    for obj in rest:
        _kubectl_batch(cluster, namespace, [obj], answer)


_PLURALS = {kind.kind: kind for kind in CHILD_KINDS}


def ssa_dry_run(
    cluster: ControlPlane, context: ssl.SSLContext, obj: dict[str, Any]
) -> tuple[str | None, dict[str, Any]]:
    """(the apiserver's refusal or None, the object it would store) for one SSA."""
    kind = _PLURALS[obj["kind"]]
    group = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
    metadata = obj["metadata"]
    url = (
        f"{cluster.api_url}{group}/namespaces/{metadata['namespace']}/{kind.plural}/"
        f"{metadata['name']}?fieldManager=prodready&force=true&dryRun=All"
    )
    request = urllib.request.Request(  # noqa: S310 - the local apiserver
        url,
        data=encode_body(obj, APPLY_PATCH).encode(),
        method="PATCH",
        headers={"Content-Type": APPLY_PATCH, "Accept": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, context=context, timeout=60) as response:  # noqa: S310
            return None, dict(json.loads(response.read()))
    except urllib.error.HTTPError as error:
        return f"{error.code}: {error.read().decode(errors='replace')}", {}


def admin_context(cluster: ControlPlane) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(cluster.certs.ca))
    context.load_cert_chain(*(str(part) for part in cluster.certs.pair("admin")))
    return context


def server_side_apply_dry_run(cluster: ControlPlane, objects: list[dict[str, Any]]) -> DryRun:
    """Server-side apply with a JSON body and `dryRun=All`: exactly what the operator sends
    for each child (kubectl's --server-side re-encodes as YAML, which differs for strings
    with control characters)."""
    context = admin_context(cluster)
    answer = DryRun()
    with ThreadPoolExecutor(max_workers=8) as pool:
        for obj, (problem, _) in zip(
            objects, pool.map(lambda o: ssa_dry_run(cluster, context, o), objects), strict=True
        ):
            if problem is None:
                answer.accepted.add(_key(obj))
            else:
                answer.rejected[_key(obj)] = problem
    return answer


# -- the tests ---------------------------------------------------------------------------


@dataclass
class Tally:
    """How the cases ended, for the report and for the assertions."""

    outcomes: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)


def run_renderer_only(count: int, random_seed: int) -> Tally:
    """The renderer alone on `count` cases: no crash, no unnamed field, deterministic."""
    tally = Tally()
    for case in cases(count, random_seed):
        verdict = judge_renderer(case)
        if verdict.crash:
            tally.failures.append(f"{json.dumps(case['spec'])}\n{verdict.crash}")
            tally.outcomes["crash"] += 1
        elif verdict.spec_error:
            tally.outcomes[f"SpecError {verdict.spec_error.rule}"] += 1
        else:
            tally.outcomes["rendered"] += 1
    return tally


def run_through_apiserver(
    cluster: ControlPlane, namespace: str, count: int, random_seed: int
) -> Tally:
    """Each case through admission and the renderer, and what rendered through admission."""
    tally = Tally()
    batch = cases(count, random_seed)
    for case in batch:
        case["metadata"]["namespace"] = namespace
    admitted = kubectl_dry_run(cluster, namespace, batch)
    verdicts = {case["metadata"]["name"]: judge_renderer(case) for case in batch}
    children: list[tuple[str, dict[str, Any]]] = []
    for case in batch:
        name, key = case["metadata"]["name"], _key(case)
        verdict = verdicts[name]
        spec = json.dumps(case["spec"], sort_keys=True)
        if verdict.crash:
            tally.failures.append(f"{name} {spec}: renderer crashed:\n{verdict.crash}")
            tally.outcomes["renderer crash"] += 1
            continue
        if key in admitted.rejected:
            message = admitted.rejected[key]
            if "spec" not in message or "InternalError" in message or "Internal error" in message:
                tally.failures.append(f"{name} {spec}: rejection without a field:\n{message}")
            if verdict.objects is not None:
                first = message.splitlines()[0][-300:]
                tally.disagreements.append(
                    f"{name}: the CRD refuses, the renderer renders: {first}"
                )
            tally.outcomes["rejected by the apiserver"] += 1
            continue
        if verdict.spec_error is not None:
            # Admitted, then refused by the renderer: the operator reports it as
            # Stalled/InvalidSpec naming the field. Allowed, but counted.
            tally.disagreements.append(f"{name}: admitted, renderer says {verdict.spec_error}")
            tally.outcomes["admitted, SpecError"] += 1
            continue
        assert verdict.objects is not None
        tally.outcomes["admitted and rendered"] += 1
        children.extend((name, obj) for obj in verdict.objects)
    rendered = server_side_apply_dry_run(cluster, [obj for _, obj in children])
    for name, obj in children:
        key = _key(obj)
        if key in rendered.rejected:
            spec = json.dumps(next(c["spec"] for c in batch if c["metadata"]["name"] == name))
            tally.failures.append(
                f"{name} {spec}: admitted and rendered, but the apiserver refuses the rendered "
                f"{obj['kind']}:\n{rendered.rejected[key]}"
            )
            tally.outcomes["rendered object refused"] += 1
    return tally


def report(tally: Tally, what: str) -> None:
    print(f"\n{what}: {dict(tally.outcomes)}; {len(tally.disagreements)} disagreements")
    for line in tally.disagreements[:20]:
        print("  ", line)


@pytest.fixture(scope="module")
def crds(cluster: ControlPlane) -> ControlPlane:
    install_crds(cluster, CRD_FILE, *MONITORING_CRDS)
    return cluster


def check(tally: Tally, minimum_accepted: int, accepted_outcome: str) -> None:
    assert not tally.failures, "\n\n".join(tally.failures[:10])
    # The strategy must reach the renderer's success path often, or it proves little.
    assert tally.outcomes[accepted_outcome] >= minimum_accepted, dict(tally.outcomes)


def test_renderer_sample_never_crashes() -> None:
    tally = run_renderer_only(500, random_seed=1)
    report(tally, "renderer, 500 cases")
    check(tally, 100, "rendered")


@pytest.mark.cluster
def test_apiserver_sample_agrees_with_the_renderer(crds: ControlPlane, namespace: str) -> None:
    tally = run_through_apiserver(crds, namespace, 25, random_seed=2)
    report(tally, "apiserver, 25 cases")
    check(tally, 5, "admitted and rendered")


@pytest.mark.slow
def test_renderer_ten_thousand_cases_never_crash() -> None:
    tally = run_renderer_only(10_000, random_seed=3)
    report(tally, "renderer, 10,000 cases")
    check(tally, 2_000, "rendered")


@pytest.mark.slow
@pytest.mark.cluster
def test_apiserver_three_hundred_cases_agree_with_the_renderer(
    crds: ControlPlane, namespace: str
) -> None:
    tally = run_through_apiserver(crds, namespace, 300, random_seed=4)
    report(tally, "apiserver, 300 cases")
    check(tally, 60, "admitted and rendered")


@pytest.mark.cluster
@pytest.mark.parametrize(
    "value",
    ["hello 🚀", "\U0001f600 and \U00010000", "C1 \x85\x9f and DEL \x7f", "LS\u2028PS\u2029"],
    ids=["emoji", "astral", "controls", "separators"],
)
def test_any_text_a_spec_admits_reaches_the_cluster_as_written(
    crds: ControlPlane, namespace: str, value: str
) -> None:
    """Found by this fuzzer: a ProductionService with an emoji in an env value was admitted,
    but the operator's server-side apply of its Deployment was refused (400, "found invalid
    Unicode character escape code"), every reconcile, for ever."""
    service = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "text", "namespace": namespace},
        "spec": {
            "image": "nginx:1.27",
            "environment": "dev",
            "env": [{"name": "GREETING", "value": value}],
        },
    }
    admitted = kubectl_dry_run(crds, namespace, [service])
    assert admitted.accepted == {"productionservice/text"}, admitted.rejected
    deployment = next(o for o in render(service) if o["kind"] == "Deployment")
    problem, stored = ssa_dry_run(crds, admin_context(crds), deployment)
    assert problem is None, problem
    env = stored["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "GREETING", "value": value} in env


SETTINGS_COLLISION = {
    "apiVersion": API_VERSION,
    "kind": KIND,
    "metadata": {"name": "collide"},
    "spec": {
        "image": "nginx:1.27",
        "environment": "dev",
        "security": {
            "corsAllowedOrigins": ["https://shop.example.com"],
            "corsVariable": "LOG_LEVEL",
        },
    },
}


def test_colliding_settings_variables_are_refused_by_the_renderer() -> None:
    """Found by this fuzzer: two settings variables of the same name were admitted and
    rendered as two env entries, which server-side apply refuses ("duplicate entries for
    key"), so the Deployment was never applied. Fixed in 45ee56b."""
    with pytest.raises(SpecError) as refused:
        render(SETTINGS_COLLISION)
    assert "Variable" in refused.value.field


@pytest.mark.cluster
def test_colliding_settings_variables_are_refused_by_the_crd(
    crds: ControlPlane, namespace: str
) -> None:
    service = json.loads(json.dumps(SETTINGS_COLLISION))
    service["metadata"]["namespace"] = namespace
    admitted = kubectl_dry_run(crds, namespace, [service])
    assert admitted.accepted == set(), "the CRD admits colliding settings variables"

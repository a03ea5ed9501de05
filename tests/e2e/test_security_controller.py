"""The controller is no way in, against the real apiserver: a ProductionService never takes
over (nor, through garbage collection, deletes) another team's objects; its status is no
Secret oracle; a huge Secret never stalls the event loop; Secret values never censor the
operator's log. One operator process serves the whole module."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cluster.controlplane import ControlPlane
from tests.e2e.support import (
    CRD_FILE,
    OperatorProcess,
    condition,
    events,
    get,
    install_crds,
    start_operator,
    wait_for,
)

pytestmark = pytest.mark.cluster

REDACTED = "***REDACTED***"


def service(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": name},
        "spec": {"image": "registry.example.com/shop/web:1.4.2", "environment": "dev", **spec},
    }


def create(cluster: ControlPlane, namespace: str, body: dict[str, Any], *user: str) -> None:
    cluster.kubectl(*user, "apply", "-n", namespace, "-f", "-", input=json.dumps(body))


def healthz(operator: OperatorProcess) -> dict[str, str]:
    """/healthz?verbose as fields, with the status line as "status"."""
    status_line, *lines = operator.text("/healthz?verbose").splitlines()
    return {"status": status_line, **dict(line.split(" ", 1) for line in lines)}


@pytest.fixture(scope="module")
def operator(
    cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    install_crds(cluster, CRD_FILE)
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    process = start_operator(cluster, log)
    # One pass first: its one-time costs (loading the models on first use) are start-up,
    # not what the stall test measures.
    cluster.kubectl("create", "namespace", "security-warm-up")
    create(cluster, "security-warm-up", service("warm-up"))
    wait_for(
        lambda: (get(cluster, "productionservice", "warm-up", "security-warm-up") or {}).get(
            "status"
        ),
        60,
        "the warm-up service's status",
    )
    yield process
    process.stop()
    cluster.kubectl("delete", "namespace", "security-warm-up", "--wait=false", check=False)


def _only_productionservices(cluster: ControlPlane, namespace: str, user: str) -> None:
    """`user` may manage ProductionServices in `namespace`, and nothing else."""
    cluster.kubectl(
        "create",
        "role",
        "productionservices-only",
        "-n",
        namespace,
        "--verb=get,list,watch,create,update,patch,delete",
        "--resource=productionservices.prodready.io",
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        f"{user}-productionservices",
        "-n",
        namespace,
        "--role=productionservices-only",
        f"--user={user}",
    )
    for verb, resource in (("create", "productionservices.prodready.io"), ("get", "services")):
        allowed = cluster.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, "--as", user, check=False
        )
        assert allowed.stdout.strip() == ("yes" if resource.startswith("production") else "no")


def _snapshot(cluster: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    obj = get(cluster, kind, name, namespace)
    assert obj is not None, f"{kind}/{name} is gone"
    return {"metadata": obj["metadata"], "spec": obj["spec"]}


def _settled(cluster: ControlPlane, namespace: str, kind: str, name: str) -> dict[str, Any]:
    """The object once its resourceVersion stopped moving (a Deployment's controllers
    write its status a few times after creation)."""
    seen: list[str] = []

    def still() -> bool:
        obj = get(cluster, kind, name, namespace) or {}
        seen.append(str(obj.get("metadata", {}).get("resourceVersion")))
        return len(seen) >= 8 and len(set(seen[-8:])) == 1

    wait_for(still, 60, f"{kind}/{name} to settle")
    return _snapshot(cluster, namespace, kind, name)


def _assert_operator_never_wrote(cluster: ControlPlane, namespace: str, name: str) -> None:
    """The apiserver's audit log (writes only) has no write of the operator to `name`'s
    Service, Ingress or Deployment."""
    writes = [
        (event.get("verb"), event.get("objectRef"))
        for event in cluster.audit_events()
        if str(event.get("userAgent", "")).startswith("prodready")
        and (ref := event.get("objectRef") or {})
        and isinstance(ref, dict)
        and ref.get("namespace") == namespace
        and ref.get("name") == name
        and ref.get("resource") in {"services", "ingresses", "deployments"}
    ]
    assert writes == []


def test_a_productionservice_never_takes_over_nor_deletes_another_teams_objects(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    labels = {"app.kubernetes.io/name": "api", "app.kubernetes.io/instance": "api"}
    theirs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "api", "labels": {"team": "payments"}},
            "spec": {"selector": {"app": "payments-api"}, "ports": [{"port": 80}]},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "Ingress",
            "metadata": {"name": "api", "annotations": {"team": "payments"}},
            "spec": {
                "rules": [
                    {
                        "host": "payments.example.com",
                        "http": {
                            "paths": [
                                {
                                    "path": "/",
                                    "pathType": "Prefix",
                                    "backend": {"service": {"name": "api", "port": {"number": 80}}},
                                }
                            ]
                        },
                    }
                ]
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "api", "labels": {**labels, "helm.sh/chart": "api-1.0.0"}},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "api", "image": "payments/api:7"}]},
                },
            },
        },
    ]
    for obj in theirs:
        cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj))
    kinds = [("service", "Service"), ("ingress", "Ingress"), ("deployment", "Deployment")]
    before = {kind: _settled(cluster, namespace, kind, "api") for kind, _ in kinds}

    _only_productionservices(cluster, namespace, "alice")
    alice = ("--as", "alice")
    create(cluster, namespace, service("api", exposure={"host": "api.example.com"}), *alice)

    def conflict() -> dict[str, Any]:
        found = condition(get(cluster, "productionservice", "api", namespace), "Stalled")
        return found if found.get("reason") == "NameConflict" else {}

    stalled = wait_for(conflict, 60, "the NameConflict condition")
    assert stalled["status"] == "True"
    for _, kind in kinds:
        assert f"{kind}/api (no controller)" in stalled["message"], stalled["message"]
    obj = get(cluster, "productionservice", "api", namespace)
    ready = condition(obj, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "NameConflict")
    assert {"Service", "Ingress", "Deployment"}.isdisjoint(
        child["kind"] for child in (obj or {})["status"].get("children", [])
    )
    # What the operator did create is its own: the PodDisruptionBudget, our witness below.
    pdb = wait_for(lambda: get(cluster, "poddisruptionbudget", "api", namespace), 30, "our own PDB")
    owner = pdb["metadata"]["ownerReferences"][0]
    assert (owner["uid"], owner["controller"]) == ((obj or {})["metadata"]["uid"], True)
    warnings = [e for e in events(cluster, namespace, "api") if e["reason"] == "NameConflict"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["type"] == "Warning"

    # Passes go on (the conflict is re-checked every few seconds): still nothing touched.
    def passes() -> int:
        return sum(
            1
            for line in operator.log_lines()
            if line.get("message") == "child name held by another object"
            and line.get("namespace") == namespace
            and line.get("child") == "Service/api"
        )

    wait_for(lambda: passes() >= 2, 30, "a second pass over the service")
    for kind, _ in kinds:
        assert _snapshot(cluster, namespace, kind, "api") == before[kind], kind
    _assert_operator_never_wrote(cluster, namespace, "api")

    # alice deletes her ProductionService: the garbage collector takes what it owned (the
    # PDB, a positive witness that collection ran) and nothing else.
    cluster.kubectl(*alice, "delete", "productionservice", "api", "-n", namespace)
    wait_for(
        lambda: get(cluster, "poddisruptionbudget", "api", namespace) is None,
        60,
        "the PDB to be garbage-collected",
    )
    for kind, _ in kinds:
        assert _snapshot(cluster, namespace, kind, "api") == before[kind], kind
    _assert_operator_never_wrote(cluster, namespace, "api")


def test_once_the_name_is_free_the_service_creates_its_own_child(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    """A conflict is no converged state: when the other object goes, the next pass (the
    retry, at most two minutes later, or a resync) creates ours."""
    cluster.kubectl("create", "service", "clusterip", "web", "-n", namespace, "--tcp=80:8080")
    create(cluster, namespace, service("web", env=[{"name": "EXTRA", "value": "1"}]))

    def reason() -> str:
        obj = get(cluster, "productionservice", "web", namespace)
        return str(condition(obj, "Ready").get("reason", ""))

    wait_for(lambda: reason() == "NameConflict", 60, "the NameConflict condition")
    cluster.kubectl("delete", "service", "web", "-n", namespace)
    ours = wait_for(
        lambda: (
            (get(cluster, "service", "web", namespace) or {})
            .get("metadata", {})
            .get("ownerReferences")
        ),
        60,
        "our own Service once the name is free",
    )
    assert ours[0]["kind"] == "ProductionService"
    wait_for(lambda: reason() != "NameConflict", 30, "the conflict to clear")

    # Created with a POST, its fields sit under the create's "Update" entry (which alone
    # would keep a field the spec drops); the first apply that changes the Deployment
    # claims them for apply, so the dropped field is removed all the same.
    def prodready_entries() -> list[tuple[str, str]]:
        deployment = json.loads(
            cluster.kubectl(
                "get", "deployment", "web", "-n", namespace, "-o", "json", "--show-managed-fields"
            ).stdout
        )
        return [
            (entry["manager"], entry["operation"])
            for entry in deployment["metadata"]["managedFields"]
            if entry["manager"] == "prodready"
        ]

    assert prodready_entries() == [("prodready", "Update")]
    create(cluster, namespace, service("web"))

    def extra_gone() -> bool:
        obj = get(cluster, "deployment", "web", namespace) or {}
        containers = obj.get("spec", {}).get("template", {}).get("spec", {}).get("containers")
        return bool(containers) and "EXTRA" not in {e["name"] for e in containers[0]["env"]}

    wait_for(extra_gone, 30, "the dropped env variable to be removed")
    assert prodready_entries() == [("prodready", "Apply")]


def test_status_is_no_secret_oracle(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    other = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        cluster.kubectl(
            "create", "secret", "generic", "db-creds", "-n", other, "--from-literal=password=x"
        )
        reference = [{"name": "DB", "secretName": "db-creds", "key": "guessed-key"}]
        for where in (namespace, other):
            create(cluster, where, service("app", secretEnv=reference))

        def waiting(where: str) -> dict[str, Any]:
            obj = get(cluster, "productionservice", "app", where)
            if condition(obj, "Stalled").get("reason") != "SecretMissing":
                return {}
            warnings = [
                e["message"]
                for e in events(cluster, where, "app")
                if e["reason"] == "SecretMissing"
            ]
            if not warnings:
                return {}
            return {
                "ready": condition(obj, "Ready")["message"],
                "stalled": condition(obj, "Stalled")["message"],
                "events": warnings,
            }

        missing_secret = wait_for(lambda: waiting(namespace), 60, "SecretMissing (no Secret)")
        missing_key = wait_for(lambda: waiting(other), 60, "SecretMissing (no key)")
        assert missing_secret == missing_key
        assert missing_secret["ready"] == (
            "waiting for the referenced Secrets and keys to exist: db-creds (guessed-key)"
        )
        # The operator's own log (not tenant-visible) keeps the precise verdict.
        verdicts = {
            line["namespace"]: line["missing"]
            for line in operator.log_lines()
            if line.get("message") == "referenced Secrets or keys not found"
        }
        assert verdicts[namespace] == ["db-creds"]
        assert verdicts[other] == ["db-creds/guessed-key"]
    finally:
        cluster.kubectl("delete", "namespace", other, "--wait=false", check=False)


def test_a_secret_with_ten_thousand_keys_never_stalls_the_loop(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    data = {f"key-{i:05d}": f"value-{i:05d}-{i * 7919 % 100_003:06d}" for i in range(10_000)}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "huge"},
        "stringData": data,
    }
    cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(secret))
    before = healthz(operator)
    started = time.monotonic()
    reference = [{"name": "ONE", "secretName": "huge", "key": "key-04242"}]
    create(cluster, namespace, service("huge", secretEnv=reference, envFromSecrets=[]))

    answers: list[int] = []

    def read_twice() -> bool:
        # /healthz answers 200 all along; the Secret is read on the first pass, and again
        # after its answer expires (5 s) on the resync (10 s in tests).
        answers.append(operator.status("/healthz"))
        reads = [
            line
            for line in operator.log_lines()
            if line.get("name") == "huge" and line.get("message") == "reconciled"
        ]
        return bool(reads) and time.monotonic() - started > 12

    wait_for(read_twice, 60, "the service to be reconciled and resynced", interval=0.1)
    assert get(cluster, "deployment", "huge", namespace) is not None  # the key was found
    after = healthz(operator)
    assert set(answers) == {200}
    assert after["status"] == "ok"
    # No gap of 100 ms in which the operator itself was busy: its loop never stalled that
    # long. (Gaps in which the machine did not run it at all are counted apart: on a
    # loaded CI runner they say nothing about the operator.)
    busy = "heartbeat_busy_gaps_over_100ms_total"
    assert after[busy] == before[busy], (before, after)
    print(f"10,000-key Secret: /healthz before {before}, after {after}")


def test_secret_values_do_not_censor_the_log(
    cluster: ControlPlane, operator: OperatorProcess, namespace: str
) -> None:
    # Values equal to words the operator logs: its name for the service, its messages.
    cluster.kubectl(
        "create",
        "secret",
        "generic",
        "words",
        "-n",
        namespace,
        "--from-literal=a=admission denied",
        "--from-literal=b=team-a",
        "--from-literal=c=reconciled",
    )
    create(
        cluster,
        namespace,
        service("team-a", envFromSecrets=[{"secretName": "words"}]),
    )
    wait_for(lambda: get(cluster, "deployment", "team-a", namespace), 60, "team-a's Deployment")

    def own_lines() -> list[dict[str, Any]]:
        return [line for line in operator.log_lines() if line.get("namespace") == namespace]

    lines = wait_for(
        lambda: [line for line in own_lines() if line.get("message") == "reconciled"],
        30,
        "a 'reconciled' line about team-a",
    )
    assert lines[0]["name"] == "team-a"
    assert not [line for line in own_lines() if REDACTED in json.dumps(line)]

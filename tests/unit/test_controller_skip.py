"""The reconciler's short cut: a pass whose inputs and children are what the last complete
pass left reuses its summary instead of rendering again, and anything that could change the
outcome makes the next pass complete again.

The reconciler's client is a stand-in here on purpose: what is tested is which pass renders,
not what crosses the API (tests/e2e/test_operator.py does that against a real apiserver).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from prodready import api, render
from prodready.controller import reconciler as reconciler_module
from prodready.controller.reconciler import Reconciler, _signature, _spec_key
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics

KEY = ("shop", "web")


class Client:
    """Answers applies and status patches the way the apiserver would, with new versions."""

    def __init__(self, services: ObjectStore) -> None:
        self.services = services
        self.version = 100
        self.applied: list[str] = []
        self.deleted: list[str] = []
        self.status_writes = 0

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    async def served_resources(self, _api_version: str) -> set[str]:
        return {"servicemonitors", "prometheusrules"}

    async def apply(self, _resource: Any, target: dict[str, Any], field_manager: str) -> Any:
        answer = copy.deepcopy(target)
        answer["metadata"].update(
            namespace="shop", uid=f"uid-{target['kind']}", resourceVersion=self._next()
        )
        if target["kind"] == "Deployment":
            answer["metadata"]["generation"] = 1
        self.applied.append(target["kind"])
        return answer

    async def patch_status(self, _resource: Any, namespace: str, name: str, patch: Any) -> Any:
        body = copy.deepcopy(self.services.get(api.KIND, namespace, name))
        assert body is not None
        body["status"] = {k: v for k, v in patch.items() if v is not None}
        body["metadata"]["resourceVersion"] = self._next()
        self.status_writes += 1
        return body

    async def get(self, _path: str) -> None:
        return None

    async def get_metadata(self, _path: str) -> None:
        return None  # every name is free

    async def create(
        self, resource: Any, _namespace: str, target: dict[str, Any], field_manager: str
    ) -> Any:
        return await self.apply(resource, target, field_manager)

    async def claim_fields_for_apply(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def delete(self, _resource: Any, _namespace: str, name: str, _uid: str) -> bool:
        self.deleted.append(name)
        return True


class Events:
    async def normal(self, *_args: Any) -> None:
        return None

    async def warning(self, *_args: Any) -> None:
        return None


def _service() -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "uid-web",
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"image": "registry.example.com/shop/web:1.0.0", "environment": "dev"},
    }


@pytest.fixture
def setup(monkeypatch: pytest.MonkeyPatch) -> tuple[Reconciler, Client, list[int]]:
    services = ObjectStore()
    services.put(_service())
    client = Client(services)
    reconciler = Reconciler(
        client=client,  # type: ignore[arg-type]
        store=services,
        events=Events(),  # type: ignore[arg-type]
        metrics=Metrics(process_metrics=False),
    )
    renders: list[int] = []
    real = render.render_production_service

    def counting(*args: Any, **kwargs: Any) -> Any:
        renders.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reconciler_module.render, "render_production_service", counting)
    return reconciler, client, renders


def _roll_out(reconciler: Reconciler) -> None:
    """The Deployment controller's status update: every replica updated and available."""
    live = reconciler.store.get("Deployment", "shop", "web")
    assert live is not None
    changed = copy.deepcopy(live)
    changed["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 50)
    replicas = live["spec"]["replicas"]
    changed["status"] = {
        "observedGeneration": 1,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }
    reconciler.store.put(changed)


async def test_a_converged_pass_renders_nothing_and_writes_nothing(
    setup: tuple[Reconciler, Client, list[int]],
) -> None:
    reconciler, client, renders = setup
    await reconciler.reconcile(KEY)
    assert {"Deployment", "Service", "ServiceMonitor"} <= set(client.applied)
    assert len(renders) == 1
    writes, applies = client.status_writes, len(client.applied)
    # Our own status write came back (a new resourceVersion, nothing else): no render.
    for _ in range(3):
        await reconciler.reconcile(KEY)
    assert len(renders) == 1
    assert client.status_writes == writes
    assert len(client.applied) == applies


async def test_rollout_steps_update_status_without_rendering(
    setup: tuple[Reconciler, Client, list[int]],
) -> None:
    reconciler, _client, renders = setup
    await reconciler.reconcile(KEY)
    _roll_out(reconciler)
    await reconciler.reconcile(KEY)
    assert len(renders) == 1
    service = reconciler.store.get(api.KIND, *KEY)
    assert service is not None
    ready = next(c for c in service["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


@pytest.mark.parametrize(
    "change",
    [
        "spec",
        "labels",
        "deployment spec",
        "deployment labels",
        "service edited",
        "child deleted",
        "stray child",
    ],
)
async def test_any_change_that_could_matter_renders_again(
    setup: tuple[Reconciler, Client, list[int]], change: str
) -> None:
    reconciler, client, renders = setup
    await reconciler.reconcile(KEY)
    services = children = reconciler.store
    body = copy.deepcopy(services.get(api.KIND, *KEY))
    assert body is not None
    body["metadata"]["resourceVersion"] = "900"
    if change == "spec":
        body["spec"]["replicas"] = 2
        body["metadata"]["generation"] = 2
    elif change == "labels":
        body["metadata"]["labels"] = {"team": "payments"}
    services.put(body)
    if change.startswith("deployment"):
        live = copy.deepcopy(children.get("Deployment", *KEY))
        assert live is not None
        live["metadata"]["resourceVersion"] = "901"
        if change == "deployment spec":
            live["metadata"]["generation"] = 2
        else:
            live["metadata"]["labels"] = {}
        children.put(live)
    elif change == "service edited":
        live = copy.deepcopy(children.get("Service", *KEY))
        assert live is not None
        live["metadata"]["resourceVersion"] = "902"
        children.put(live)
    elif change == "child deleted":
        children.remove("ServiceMonitor", *KEY)
    elif change == "stray child":
        stray = copy.deepcopy(children.get("Service", *KEY))
        assert stray is not None
        stray["metadata"]["name"] = "web-old"
        children.put(stray)
    await reconciler.reconcile(KEY)
    assert len(renders) == 2
    assert client.deleted == (["web-old"] if change == "stray child" else [])


def test_signature_ignores_a_deployments_status_only() -> None:
    deployment = {
        "kind": "Deployment",
        "metadata": {"generation": 3, "resourceVersion": "7", "labels": {"a": "b"}},
        "status": {"replicas": 1},
    }
    rolled = {**deployment, "metadata": {**deployment["metadata"], "resourceVersion": "8"}}
    assert _signature(rolled) == _signature({**rolled, "status": {"replicas": 2}})
    assert _signature(rolled) == _signature(deployment)
    relabelled = {**deployment, "metadata": {**deployment["metadata"], "labels": {}}}
    assert _signature(relabelled) != _signature(deployment)
    service = {"kind": "Service", "metadata": {"resourceVersion": "7"}}
    assert _signature(service) != _signature({**service, "metadata": {"resourceVersion": "8"}})


def test_spec_key_ignores_status_and_resource_version() -> None:
    body = _service()
    written = {**body, "status": {"observedGeneration": 1}}
    written["metadata"] = {**body["metadata"], "resourceVersion": "2"}
    assert _spec_key(body) == _spec_key(written)
    annotated = {**body, "metadata": {**body["metadata"], "annotations": {"x": "y"}}}
    assert _spec_key(body) != _spec_key(annotated)


def _progress(reconciler: Reconciler, available: int) -> None:
    """A rollout step: `available` of the Deployment's replicas are available."""
    live = reconciler.store.get("Deployment", "shop", "web")
    assert live is not None
    changed = copy.deepcopy(live)
    changed["metadata"]["resourceVersion"] = str(int(live["metadata"]["resourceVersion"]) + 1)
    changed["spec"]["replicas"] = 3
    changed["status"] = {
        "observedGeneration": 1,
        "replicas": 3,
        "updatedReplicas": 3,
        "availableReplicas": available,
    }
    reconciler.store.put(changed)


async def test_rollout_progress_is_written_at_most_every_few_seconds_its_end_at_once(
    setup: tuple[Reconciler, Client, list[int]],
) -> None:
    """Each replica becoming available changes the counts status reports; written as they
    come, a rollout of N replicas is N status writes. Held while only the counts move
    (the pass comes back when the interval is over), never the transition to Ready."""
    reconciler, client, _renders = setup
    now = [1000.0]
    reconciler.clock = lambda: now[0]
    await reconciler.reconcile(KEY)
    assert client.status_writes == 1  # the first status: RollingOut, with the children
    _progress(reconciler, 1)
    held = await reconciler.reconcile(KEY)
    assert client.status_writes == 1
    assert held.requeue_after == reconciler_module.PROGRESS_WRITE_INTERVAL
    now[0] += 2.0
    _progress(reconciler, 2)
    held = await reconciler.reconcile(KEY)
    assert client.status_writes == 1
    assert held.requeue_after == pytest.approx(3.0)
    now[0] += 3.0
    await reconciler.reconcile(KEY)  # the interval is over: the latest counts
    assert client.status_writes == 2
    service = reconciler.store.get(api.KIND, *KEY)
    assert service is not None
    assert service["status"]["readyReplicas"] == 2
    now[0] += 0.5
    _progress(reconciler, 3)
    await reconciler.reconcile(KEY)  # Ready: written at once
    assert client.status_writes == 3
    service = reconciler.store.get(api.KIND, *KEY)
    assert service is not None
    ready = next(c for c in service["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"


def _policy(expression: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": "teams", "resourceVersion": "7"},
        "spec": {
            "mode": "Audit",
            "customRules": [
                {
                    "id": "ACME-OWN-001",
                    "title": "workloads name an owning team",
                    "severity": "error",
                    "expression": expression,
                }
            ],
        },
    }


async def test_status_compliance_follows_the_policies_in_force(
    setup: tuple[Reconciler, Client, list[int]],
) -> None:
    """PolicyCompliant says what the webhook and the audit say of the Deployment: the
    ReadinessPolicies (custom rules included) decide, and a policy change is judged again
    at the next pass even though nothing of the service changed."""
    from prodready.kube.policies import LivePolicies

    reconciler, _client, renders = setup
    store = reconciler.store
    store.put(_policy("has(object.metadata.labels) && 'team' in object.metadata.labels"))
    reconciler.policies = LivePolicies(store)
    await reconciler.reconcile(KEY)
    service = store.get(api.KIND, *KEY)
    assert service is not None
    failing = {f["ruleId"] for f in service["status"]["compliance"]["findings"]}
    assert "ACME-OWN-001" in failing
    compliant = next(c for c in service["status"]["conditions"] if c["type"] == "PolicyCompliant")
    assert compliant["status"] == "False"

    store.put(_policy("true") | {"metadata": {"name": "teams", "resourceVersion": "8"}})
    await reconciler.reconcile(KEY)
    assert len(renders) == 2  # judged again: the policies changed
    service = store.get(api.KIND, *KEY)
    assert service is not None
    failing = {f["ruleId"] for f in service["status"]["compliance"]["findings"]}
    assert "ACME-OWN-001" not in failing

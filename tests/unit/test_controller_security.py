"""The reconciler never adopts, never leaks, never tells: which API calls a pass makes when
a child's name is held by someone else, what status says about Secrets and errors.

The client is a stand-in that keeps objects by name with uids and owner references, as the
apiserver does; tests/e2e/test_security_controller.py proves the same against the real one.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import logging
from typing import Any

import pytest

from prodready import api
from prodready.api.resource import Resource
from prodready.controller.queue import DONE
from prodready.controller.reconciler import (
    Conflict,
    Reconciler,
    StepError,
    controller_uid,
)
from prodready.kube.client import ApiError
from prodready.kube.secret_keys import SecretKeys
from prodready.kube.store import ObjectStore
from prodready.observability.metrics import Metrics
from prodready.rules.grants import GrantPolicy

KEY = ("shop", "web")
UID = "uid-web"
SECRET_VALUE = "s3cr3t-value-that-must-not-travel"


class Api:
    """Objects by (kind, name) in namespace "shop"; records every write."""

    def __init__(self, services: ObjectStore) -> None:
        self.services = services
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.secrets: dict[str, dict[str, Any]] = {}
        self.version = 100
        self.writes: list[tuple[str, str]] = []  # (verb, "Kind/name")
        self.reads: list[str] = []
        self.fail_apply: ApiError | None = None
        self.race: dict[str, Any] | None = None  # created by "someone" just before our POST

    def _next(self) -> str:
        self.version += 1
        return str(self.version)

    def put(self, obj: dict[str, Any]) -> dict[str, Any]:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("namespace", "shop")
        obj["metadata"].setdefault("uid", f"uid-{obj['kind']}-{obj['metadata']['name']}")
        obj["metadata"]["resourceVersion"] = self._next()
        self.objects[(obj["kind"], obj["metadata"]["name"])] = obj
        return obj

    async def served_resources(self, _api_version: str) -> set[str]:
        return {"servicemonitors", "prometheusrules"}

    async def get(self, path: str) -> dict[str, Any] | None:
        name = path.rsplit("/", 1)[-1]
        self.reads.append(path)
        return copy.deepcopy(self.secrets.get(name))

    async def get_metadata(self, path: str) -> dict[str, Any] | None:
        self.reads.append(path)
        parts = path.split("/")
        plural, name = parts[-2], parts[-1]
        for (kind, found), obj in self.objects.items():
            if found == name and kind.lower() + "s" == plural.replace("ies", "ys"):
                return {"metadata": copy.deepcopy(obj["metadata"])}
        return None

    async def create(
        self, resource: Resource, _namespace: str, target: dict[str, Any], field_manager: str
    ) -> dict[str, Any]:
        label = f"{target['kind']}/{target['metadata']['name']}"
        if self.race is not None and self.race["kind"] == target["kind"]:
            self.put(self.race)
            self.race = None
        if (target["kind"], target["metadata"]["name"]) in self.objects:
            raise ApiError(409, "AlreadyExists", "already exists", "POST", resource.path("shop"))
        self.writes.append(("create", label))
        answer = self.put(target)
        answer["metadata"]["managedFields"] = [{"manager": field_manager, "operation": "Update"}]
        if target["kind"] == "Deployment":
            answer["metadata"]["generation"] = 1
        return answer

    async def claim_fields_for_apply(self, *_args: Any, **_kwargs: Any) -> None:
        return None

    async def apply(
        self, _resource: Resource, target: dict[str, Any], field_manager: str
    ) -> dict[str, Any]:
        if self.fail_apply is not None:
            raise self.fail_apply
        self.writes.append(("apply", f"{target['kind']}/{target['metadata']['name']}"))
        live = self.objects.get((target["kind"], target["metadata"]["name"]))
        assert live is not None, "server-side apply is used only on objects that exist"
        assert controller_uid(live) == UID, "never apply over what we do not control"
        answer = copy.deepcopy(target)
        answer["metadata"].update(namespace="shop", uid=live["metadata"]["uid"])
        return self.put(answer)

    async def delete(self, _resource: Resource, _namespace: str, name: str, _uid: str) -> bool:
        self.writes.append(("delete", name))
        return True

    async def patch_status(
        self, _resource: Resource, namespace: str, name: str, patch: Any
    ) -> dict[str, Any]:
        body = copy.deepcopy(self.services.get(api.KIND, namespace, name))
        assert body is not None
        body["status"] = {k: v for k, v in patch.items() if v is not None}
        body["metadata"]["resourceVersion"] = self._next()
        self.writes.append(("status", name))
        return body


class Events:
    def __init__(self) -> None:
        self.posted: list[tuple[str, str, str]] = []

    async def normal(self, _obj: Any, reason: str, message: str) -> None:
        self.posted.append(("Normal", reason, message))

    async def warning(self, _obj: Any, reason: str, message: str) -> None:
        self.posted.append(("Warning", reason, message))


def _service(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": api.API_VERSION,
        "kind": api.KIND,
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": UID,
            "generation": 1,
            "resourceVersion": "1",
        },
        "spec": {"image": "registry.example.com/shop/web:1.0.0", "environment": "dev", **spec},
    }


def _setup(**spec: Any) -> tuple[Reconciler, Api, Events]:
    services = ObjectStore()
    services.put(_service(**spec))
    client, events = Api(services), Events()
    reconciler = Reconciler(
        client=client,  # type: ignore[arg-type]
        store=services,
        events=events,  # type: ignore[arg-type]
        metrics=Metrics(process_metrics=False),
    )
    return reconciler, client, events


def _conditions(reconciler: Reconciler) -> dict[str, dict[str, Any]]:
    body = reconciler.store.get(api.KIND, *KEY)
    assert body is not None
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or ()}


FOREIGN_SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "web", "labels": {"team": "other"}},
    "spec": {"selector": {"app": "theirs"}},
}


async def test_a_name_held_by_another_object_is_left_alone_and_reported() -> None:
    reconciler, client, events = _setup()
    theirs = client.put(FOREIGN_SERVICE)
    outcome = await reconciler.reconcile(KEY)

    assert client.objects[("Service", "web")] == theirs  # untouched
    assert ("create", "Service/web") not in client.writes
    assert ("create", "Deployment/web") in client.writes  # the free names are taken
    conditions = _conditions(reconciler)
    for kind in ("Ready", "Stalled"):
        assert conditions[kind]["reason"] == "NameConflict"
        assert "Service/web (no controller)" in conditions[kind]["message"]
    assert conditions["Ready"]["status"] == "False"
    assert conditions["Stalled"]["status"] == "True"
    warnings = [e for e in events.posted if e[1] == "NameConflict"]
    assert len(warnings) == 1
    assert "Service/web (no controller)" in warnings[0][2]
    body = reconciler.store.get(api.KIND, *KEY)
    assert body is not None
    assert {"kind": "Service", "name": "web", "apiVersion": "v1"} not in body["status"]["children"]
    assert outcome.requeue_after is not None  # looked at again soon, not only at resync

    # Another pass: still no write to their object, no second event, no status write.
    writes = list(client.writes)
    await reconciler.reconcile(KEY)
    assert client.writes == writes
    assert len([e for e in events.posted if e[1] == "NameConflict"]) == 1
    # The check was made again (not cached as converged): one read by name.
    assert client.reads.count("/api/v1/namespaces/shop/services/web") == 2

    # They delete their Service: the next pass creates ours and the conflict clears.
    del client.objects[("Service", "web")]
    outcome = await reconciler.reconcile(KEY)
    assert ("create", "Service/web") in client.writes
    created = client.objects[("Service", "web")]
    assert controller_uid(created) == UID
    assert "NameConflict" not in {c["reason"] for c in _conditions(reconciler).values()}
    assert outcome is DONE or outcome.requeue_after is None


async def test_the_message_names_the_other_controller() -> None:
    reconciler, client, _events = _setup()
    client.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "labels": {"app.kubernetes.io/name": "web", "app.kubernetes.io/instance": "web"},
                "ownerReferences": [
                    {"kind": "HelmRelease", "name": "web", "uid": "uid-helm", "controller": True}
                ],
            },
        }
    )
    await reconciler.reconcile(KEY)
    message = _conditions(reconciler)["Stalled"]["message"]
    assert "Deployment/web (controlled by HelmRelease/web)" in message
    assert ("apply", "Deployment/web") not in client.writes
    assert ("create", "Deployment/web") not in client.writes


async def test_a_labelled_object_of_another_owner_is_not_ours() -> None:
    """Labelled managed-by=prodready and controlled by a ProductionService of the same
    name, but not this one (an older incarnation the garbage collector has not removed
    yet, or a copied label): neither applied over nor pruned."""
    reconciler, client, _events = _setup()
    stale = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "resourceVersion": "5",
            "uid": "uid-old-service",
            "labels": {"app.kubernetes.io/managed-by": "prodready"},
            "ownerReferences": [
                {"kind": api.KIND, "name": "web", "uid": "uid-old", "controller": True}
            ],
        },
    }
    stray = copy.deepcopy(stale)
    stray["metadata"]["name"] = "web-old"
    for obj in (stale, stray):
        client.put(obj)
        reconciler.store.put(client.objects[(obj["kind"], obj["metadata"]["name"])])
    await reconciler.reconcile(KEY)
    assert not [w for w in client.writes if w[1] in ("Service/web", "web-old")]
    message = _conditions(reconciler)["Stalled"]["message"]
    assert f"Service/web (controlled by {api.KIND}/web)" in message


async def test_a_name_taken_between_the_read_and_the_create_is_a_conflict() -> None:
    reconciler, client, _events = _setup()
    client.race = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "theirs"}},
    }
    outcome = await reconciler.reconcile(KEY)
    assert ("create", "Service/web") not in client.writes
    assert "Service/web (unknown)" in _conditions(reconciler)["Stalled"]["message"]
    assert outcome.requeue_after is not None
    await reconciler.reconcile(KEY)  # re-checked: now it is named by what holds it
    assert "Service/web (no controller)" in _conditions(reconciler)["Stalled"]["message"]


async def test_where_the_store_holds_a_kind_in_full_no_name_is_read_before_a_create() -> None:
    """A store seeded with every object of the child kinds tells a free name from a held
    one by itself: a new service's children are created without a read by name, a name
    held by another object is a conflict without one, and a name taken after the watch
    last spoke fails the create, which is a conflict too, named once the watch delivers."""
    reconciler, client, _events = _setup()
    for kind in (
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
    ):
        reconciler.store.mark_complete(kind)
    theirs = client.put({**FOREIGN_SERVICE, "metadata": {**FOREIGN_SERVICE["metadata"]}})
    reconciler.store.put(theirs)
    client.race = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"minAvailable": 1},
    }
    await reconciler.reconcile(KEY)
    assert not [path for path in client.reads if "/secrets/" not in path]
    assert ("create", "Deployment/web") in client.writes
    assert ("create", "Service/web") not in client.writes
    assert ("create", "PodDisruptionBudget/web") not in client.writes
    message = _conditions(reconciler)["Stalled"]["message"]
    assert "Service/web (no controller)" in message
    assert "PodDisruptionBudget/web (unknown)" in message

    reconciler.store.put(client.objects[("PodDisruptionBudget", "web")])  # the watch event
    await reconciler.reconcile(KEY)
    assert (
        "PodDisruptionBudget/web (no controller)" in _conditions(reconciler)["Stalled"]["message"]
    )
    assert not [path for path in client.reads if "/secrets/" not in path]


async def test_our_own_child_without_its_label_is_applied_not_created() -> None:
    reconciler, client, _events = _setup()
    await reconciler.reconcile(KEY)
    # Someone strips the label: the watch loses it, the cache forgets it.
    reconciler.store.remove("Service", *KEY)
    reconciler._verified.clear()
    client.writes.clear()
    await reconciler.reconcile(KEY)
    assert ("apply", "Service/web") in client.writes
    assert ("create", "Service/web") not in client.writes
    assert "NameConflict" not in {c["reason"] for c in _conditions(reconciler).values()}


async def test_pruning_needs_our_uid_in_the_controller_reference() -> None:
    reconciler, client, _events = _setup()
    await reconciler.reconcile(KEY)
    ours = copy.deepcopy(reconciler.store.get("Service", *KEY))
    assert ours is not None
    # A stray child whose first owner reference is ours but not the controller one.
    stray = copy.deepcopy(ours)
    stray["metadata"].update(name="web-extra", resourceVersion="999")
    stray["metadata"]["ownerReferences"] = [
        {**ours["metadata"]["ownerReferences"][0], "controller": False},
        {"kind": api.KIND, "name": "web", "uid": "uid-other", "controller": True},
    ]
    # And one that is ours: pruned.
    mine = copy.deepcopy(ours)
    mine["metadata"].update(name="web-mine", resourceVersion="998")
    reconciler.store.put(stray)
    reconciler.store.put(mine)
    await reconciler.reconcile(KEY)
    assert ("delete", "web-mine") in client.writes
    assert ("delete", "web-extra") not in client.writes


def _with_secret(keys: dict[str, str] | None) -> tuple[Reconciler, Api, Events]:
    reconciler, client, events = _setup(
        secretEnv=[{"name": "PASSWORD", "secretName": "db-creds", "key": "guessed-key"}],
        envFromSecrets=[{"secretName": "shared"}],
    )
    client.secrets["shared"] = {"metadata": {"resourceVersion": "3"}, "data": {}}
    if keys is not None:
        client.secrets["db-creds"] = {
            "metadata": {"name": "db-creds", "resourceVersion": "7"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in keys.items()},
        }
    return reconciler, client, events


async def test_status_never_says_whether_a_secret_or_a_key_exists(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    seen = []
    for keys in (None, {"password": SECRET_VALUE}):
        reconciler, client, events = _with_secret(keys)
        await reconciler.reconcile(KEY)
        conditions = _conditions(reconciler)
        assert conditions["Stalled"]["reason"] == "SecretMissing"
        assert ("create", "Deployment/web") not in client.writes  # held back
        seen.append(
            (
                conditions["Ready"]["message"],
                conditions["Stalled"]["message"],
                [e for e in events.posted if e[1] == "SecretMissing"],
            )
        )
    assert seen[0] == seen[1]
    ready, _stalled, posted = seen[0]
    assert ready == (
        "waiting for the referenced Secrets and keys to exist: db-creds (guessed-key), shared"
    )
    assert len(posted) == 1
    # The operator's own log keeps the precise verdict (it is not tenant-visible) ...
    verdicts = [r.missing for r in caplog.records if hasattr(r, "missing")]  # type: ignore[attr-defined]
    assert verdicts == [["db-creds"], ["db-creds/guessed-key"]]
    # ... and never a value.
    assert SECRET_VALUE not in caplog.text
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in caplog.text


async def test_the_secret_reader_hands_out_key_names_only() -> None:
    reconciler, _client, _events = _with_secret({"password": SECRET_VALUE, "user": "app"})
    answer = await reconciler._secret_keys("shop", "db-creds")
    assert answer == SecretKeys(frozenset({"password", "user"}), "7")
    assert SECRET_VALUE not in repr(reconciler.__dict__)
    assert base64.b64encode(SECRET_VALUE.encode()).decode() not in repr(reconciler.__dict__)


async def test_an_optional_reference_never_holds_the_deployment_back() -> None:
    reconciler, client, _events = _setup(
        secretEnv=[{"name": "X", "secretName": "maybe", "key": "k", "optional": True}]
    )
    client.secrets["maybe"] = {"metadata": {"resourceVersion": "1"}, "data": {}}
    await reconciler.reconcile(KEY)
    assert ("create", "Deployment/web") in client.writes
    assert "Stalled" not in _conditions(reconciler)


async def test_errors_in_status_name_the_step_not_the_apiservers_text(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reconciler, client, events = _setup()
    await reconciler.reconcile(KEY)
    body = copy.deepcopy(reconciler.store.get(api.KIND, *KEY))
    assert body is not None
    body["spec"]["replicas"] = 3
    body["metadata"].update(generation=2, resourceVersion=client._next())
    reconciler.store.put(body)
    detail = 'Service "payments-db" in namespace "other" has clusterIP 10.0.0.7'
    client.fail_apply = ApiError(422, "Invalid", detail, "PATCH", "/apis/apps/v1/...")
    with pytest.raises(StepError):
        await reconciler.reconcile(KEY)
    conditions = _conditions(reconciler)
    assert conditions["Ready"]["reason"] == "ReconcileError"
    assert conditions["Ready"]["message"] == "apply Deployment/web failed: HTTP 422 Invalid"
    assert conditions["Reconciling"]["message"].startswith("ApiError: apply Deployment/web")
    posted = [e for e in events.posted if e[1] == "ReconcileError"]
    assert posted
    for text in [c["message"] for c in conditions.values()] + [e[2] for e in posted]:
        assert "payments-db" not in text
        assert "10.0.0.7" not in text
    assert "payments-db" in caplog.text  # the full error is in the operator's log


async def test_a_free_text_reason_and_other_failures_stay_out_of_status() -> None:
    reconciler, client, _events = _setup()
    client.fail_apply = ApiError(403, "denied: see secret/x", "", "PATCH", "/x")
    await reconciler.reconcile(KEY)  # creates; the next apply fails
    body = copy.deepcopy(reconciler.store.get(api.KIND, *KEY))
    assert body is not None
    body["spec"]["replicas"] = 4
    body["metadata"].update(generation=2, resourceVersion=client._next())
    reconciler.store.put(body)
    with pytest.raises(StepError):
        await reconciler.reconcile(KEY)
    assert _conditions(reconciler)["Ready"]["message"] == ("apply Deployment/web failed: HTTP 403")

    async def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise KeyError("spec of payments-db")

    client.apply = broken  # type: ignore[method-assign]
    body["spec"]["replicas"] = 5
    body["metadata"].update(generation=3, resourceVersion=client._next())
    reconciler.store.put(body)
    with pytest.raises(KeyError):
        await reconciler.reconcile(KEY)
    message = _conditions(reconciler)["Ready"]["message"]
    assert message == "internal error; the operator's log has the details"


def test_conflict_describes_kind_name_and_controller() -> None:
    assert Conflict("Ingress", "api", "no controller").describe() == "Ingress/api (no controller)"


async def test_a_failed_status_write_is_named_and_a_vanished_service_is_no_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reconciler, client, _events = _setup()

    async def refused(*_args: Any, **_kwargs: Any) -> Any:
        raise ApiError(500, "InternalError", "etcd said something", "PATCH", "/status")

    client.patch_status = refused  # type: ignore[method-assign]
    with pytest.raises(StepError) as raised:
        await reconciler.reconcile(KEY)
    assert raised.value.safe_message == (
        f"write status of {api.KIND}/web failed: HTTP 500 InternalError"
    )
    assert "could not report the reconcile error" in caplog.text

    async def gone(*_args: Any, **_kwargs: Any) -> Any:
        raise ApiError(404, "NotFound", "gone", "PATCH", "/status")

    client.patch_status = gone  # type: ignore[method-assign]
    assert await reconciler.reconcile(KEY) is DONE


async def test_a_created_child_never_claimed_is_claimed_at_its_next_apply() -> None:
    """The operator stopped between a create and its claim: the next apply finds our
    fields still under the create's Update entry, claims them and applies again (so a
    field the rendering dropped is removed)."""
    reconciler, client, _events = _setup()
    claims: list[str] = []
    unclaimed = {"Deployment"}
    plain_apply = client.apply

    async def apply(resource: Resource, target: dict[str, Any], field_manager: str) -> Any:
        answer = await plain_apply(resource, target, field_manager)
        operation = "Update" if target["kind"] in unclaimed else "Apply"
        answer["metadata"]["managedFields"] = [{"manager": field_manager, "operation": operation}]
        return answer

    async def claim(_resource: Resource, created: dict[str, Any], **_kwargs: Any) -> Any:
        claims.append(created["kind"])
        unclaimed.discard(created["kind"])
        return created

    client.apply = apply  # type: ignore[method-assign]
    await reconciler.reconcile(KEY)  # created; the fake's claim after create does nothing
    client.claim_fields_for_apply = claim  # type: ignore[method-assign]
    body = copy.deepcopy(reconciler.store.get(api.KIND, *KEY))
    assert body is not None
    body["spec"]["replicas"] = 3
    body["metadata"].update(generation=2, resourceVersion=client._next())
    reconciler.store.put(body)
    client.writes.clear()
    await reconciler.reconcile(KEY)
    assert claims == ["Deployment"]
    assert client.writes.count(("apply", "Deployment/web")) == 2


async def test_a_spec_outside_the_allow_lists_is_refused_without_a_write() -> None:
    """The webhook's /authorize refuses such a spec; when it was bypassed (not installed,
    or the spec predates the allow-list) the reconciler refuses the same spec itself."""
    reconciler, client, events = _setup(
        pod={"tolerations": [{"operator": "Exists"}], "nodeSelector": {"kubernetes.io/os": "x"}}
    )
    reconciler.config.grants = GrantPolicy(
        ingress_hosts=("*",),
        ingress_annotations=(),
        tolerations=("node.kubernetes.io/not-ready:NoExecute",),
        node_selectors=("kubernetes.io/os",),
        service_accounts=("*",),
    )
    assert await reconciler.reconcile(KEY) is DONE
    assert [verb for verb, _ in client.writes] == ["status"]  # no child written
    conditions = _conditions(reconciler)
    for kind in ("Ready", "Stalled"):
        assert conditions[kind]["reason"] == "NotPermitted"
        assert "spec.pod.tolerations[0]" in conditions[kind]["message"]
        assert "allowed.tolerations" in conditions[kind]["message"]
    assert [e[1] for e in events.posted] == ["NotPermitted"]

    # Allowed once the platform lists it: the next pass renders and creates the children.
    reconciler.config.grants = GrantPolicy(
        ingress_hosts=("*",),
        ingress_annotations=(),
        tolerations=("*",),
        node_selectors=("kubernetes.io/os",),
        service_accounts=("*",),
    )
    await reconciler.reconcile(KEY)
    assert ("create", "Deployment/web") in client.writes
    assert "NotPermitted" not in {c["reason"] for c in _conditions(reconciler).values()}


CHILDREN = sorted(
    f"{kind}/web"
    for kind in ("Deployment", "PodDisruptionBudget", "PrometheusRule", "Service", "ServiceMonitor")
)


class _Barrier(Api):
    """Holds every create until `expected` of them are in flight at once (or times out)."""

    def __init__(self, services: ObjectStore, expected: int) -> None:
        super().__init__(services)
        self.expected, self.in_flight, self.most = expected, 0, 0
        self.all_in = asyncio.Event()
        self.fail: str | None = None  # a kind whose create fails with HTTP 500

    async def create(
        self, resource: Resource, namespace: str, target: dict[str, Any], field_manager: str
    ) -> dict[str, Any]:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        if self.in_flight >= self.expected:
            self.all_in.set()
        try:
            await asyncio.wait_for(self.all_in.wait(), 5)
        finally:
            self.in_flight -= 1
        if target["kind"] == self.fail:
            raise ApiError(500, "InternalError", "etcd timeout", "POST", resource.path("shop"))
        return await super().create(resource, namespace, target, field_manager)


def _barrier_setup() -> tuple[Reconciler, _Barrier]:
    services = ObjectStore()
    services.put(_service())
    client = _Barrier(services, expected=len(CHILDREN))
    reconciler = Reconciler(
        client=client,  # type: ignore[arg-type]
        store=services,
        events=Events(),  # type: ignore[arg-type]
        metrics=Metrics(process_metrics=False),
    )
    return reconciler, client


async def test_a_new_services_children_are_created_together() -> None:
    """One round trip, not four, between a ProductionService and its Deployment."""
    reconciler, client = _barrier_setup()
    await reconciler.reconcile(KEY)
    assert sorted(label for verb, label in client.writes if verb == "create") == CHILDREN
    assert client.most == len(CHILDREN)


async def test_a_failed_child_write_fails_the_pass_and_keeps_the_others() -> None:
    reconciler, client = _barrier_setup()
    client.fail = "Deployment"
    with pytest.raises(StepError, match="create Deployment/web"):
        await reconciler.reconcile(KEY)
    for label in CHILDREN:
        kind = label.split("/")[0]
        present = reconciler.store.get(kind, "shop", "web") is not None
        assert present is (kind != "Deployment"), label
    assert _conditions(reconciler)["Ready"]["message"] == (
        "create Deployment/web failed: HTTP 500 InternalError"
    )
    # The next pass writes only what is missing.
    client.fail, client.expected = None, 1
    client.writes.clear()
    await reconciler.reconcile(KEY)
    assert [w for w in client.writes if w[0] != "status"] == [("create", "Deployment/web")]

"""The webhook's decision: AdmissionReview parsing and answers, without a server."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from prodready.rules.admission import MAX_WARNING_CHARS, MAX_WARNINGS_BYTES
from prodready.webhook.admission import (
    AdmissionRequest,
    Mode,
    ReviewError,
    controlled_by_its_controller,
    decide,
    ephemeral_container_problems,
    parse_review,
    review_response,
)

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"


def _compliant() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d and d["kind"] != "Secret"]


def _deployment() -> dict[str, Any]:
    return copy.deepcopy(_compliant()[0])


def _context() -> list[dict[str, Any]]:
    return _compliant()[1:]


def _review(
    obj: dict[str, Any] | None,
    *,
    operation: str = "CREATE",
    old: dict[str, Any] | None = None,
    kind: str = "Deployment",
    dry_run: bool = False,
    user: dict[str, Any] | None = None,
    sub_resource: str | None = None,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": kind},
        "operation": operation,
        "namespace": "shop",
        "name": "api",
        "dryRun": dry_run,
    }
    if user is not None:
        request["userInfo"] = user
    if sub_resource is not None:
        request["subResource"] = sub_resource
    if obj is not None:
        request["object"] = obj
    if old is not None:
        request["oldObject"] = old
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def _request(obj: dict[str, Any] | None, **kwargs: Any) -> AdmissionRequest:
    return parse_review(json.dumps(_review(obj, **kwargs)).encode())


def _broken() -> dict[str, Any]:
    deployment = _deployment()
    del deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
    return deployment


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty request body"),
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[]", "must be a JSON object"),
        (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "v1"),
        (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request must be"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(body: bytes, message: str) -> None:
    with pytest.raises(ReviewError, match=message):
        parse_review(body)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"uid": 7}, "request.uid must be a string"),
        ({"operation": "PATCH"}, "request.operation must be one of"),
        ({"kind": "Deployment"}, "request.kind must be an object"),
        ({"object": None}, "request.object must be an object for CREATE"),
        ({"oldObject": "x"}, "request.oldObject must be an object"),
    ],
)
def test_malformed_requests_name_the_field(change: dict[str, Any], message: str) -> None:
    review = _review(_deployment())
    review["request"].update(change)
    with pytest.raises(ReviewError, match=message):
        parse_review(json.dumps(review).encode())


def test_parsed_request_keeps_what_the_webhook_uses() -> None:
    request = _request(_deployment(), dry_run=True)
    assert request.uid == "705ab4f5-6393-11e8-b7cc-42010a800002"
    assert (request.kind, request.operation, request.namespace, request.name) == (
        "Deployment",
        "CREATE",
        "shop",
        "api",
    )
    assert request.dry_run is True
    assert request.metric_kind == "Deployment"
    assert _request(None, operation="DELETE", kind="Secret").metric_kind == "other"


def test_envelope_is_an_admission_review() -> None:
    envelope = review_response({"uid": "u", "allowed": True})
    assert envelope == {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": "u", "allowed": True},
    }


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_delete_and_connect_are_allowed_at_once(operation: str) -> None:
    answer = decide(_request(None, operation=operation), Mode.ENFORCE)
    assert answer == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_enforce_denies_with_rule_field_and_fix() -> None:
    answer = decide(_request(_broken()), Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    message = answer["status"]["message"]
    assert "PR-HC-001" in message
    assert "spec.template.spec.containers[0].livenessProbe" in message
    assert "Fix:" in message


def test_audit_allows_with_warnings() -> None:
    answer = decide(_request(_broken()), Mode.AUDIT, _context())
    assert answer["allowed"] is True
    assert any(w.startswith("PR-HC-001 (error)") for w in answer["warnings"])


def test_context_from_the_cluster_is_used() -> None:
    with_context = decide(_request(_deployment()), Mode.ENFORCE, _context())
    assert with_context == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}
    # Alone, what waits on its ServiceMonitor, PrometheusRule and PodDisruptionBudget is
    # warned about, not denied: Helm creates those after the Deployment (issue 15).
    alone = decide(_request(_deployment()), Mode.ENFORCE)
    assert alone["allowed"] is True
    waiting = [w for w in alone["warnings"] if "not denied: waits on another object" in w]
    assert [w.split()[0] for w in waiting] == ["PR-MO-001"]
    assert any(w.startswith("PR-MO-002 (warning)") for w in alone["warnings"])


def test_namespace_comes_from_the_request_when_the_object_has_none() -> None:
    deployment = _deployment()
    del deployment["metadata"]["namespace"]
    # The context is in namespace shop; without the request's namespace nothing would match.
    assert decide(_request(deployment), Mode.ENFORCE, _context())["allowed"] is True


def test_dry_run_is_answered_the_same() -> None:
    wet = decide(_request(_broken()), Mode.ENFORCE, _context())
    dry = decide(_request(_broken(), dry_run=True), Mode.ENFORCE, _context())
    assert dry == wet


def test_exemption_annotation_is_honoured() -> None:
    exempt = _broken()
    exempt["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-HC-001",
        "prodready.io/exempt-reason": "restarted by its supervisor",
    }
    assert decide(_request(exempt), Mode.ENFORCE, _context())["allowed"] is True


def test_objects_being_deleted_and_unchecked_kinds_are_allowed() -> None:
    deleting = _broken()
    deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
    assert decide(_request(deleting, operation="UPDATE", old=_broken()), Mode.ENFORCE)["allowed"]
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    answer = decide(_request(config_map, kind="ConfigMap"), Mode.ENFORCE)
    assert answer == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def test_update_without_spec_change_or_new_failure_is_only_warned() -> None:
    old = _broken()
    new = copy.deepcopy(old)
    new["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "2"}
    answer = decide(_request(new, operation="UPDATE", old=old), Mode.ENFORCE, _context())
    assert answer["allowed"] is True
    assert any("PR-HC-001" in w for w in answer["warnings"])


def test_update_that_changes_the_spec_must_comply() -> None:
    old = _broken()
    new = copy.deepcopy(old)
    new["spec"]["replicas"] = 4
    answer = decide(_request(new, operation="UPDATE", old=old), Mode.ENFORCE, _context())
    assert answer["allowed"] is False


def test_update_that_adds_a_failure_without_a_spec_change_is_denied() -> None:
    old = _broken()
    old["metadata"]["annotations"] = {
        "prodready.io/exempt": "PR-HC-001",
        "prodready.io/exempt-reason": "legacy",
    }
    new = _broken()  # the exemption removed: PR-HC-001 fails anew
    answer = decide(_request(new, operation="UPDATE", old=old), Mode.ENFORCE, _context())
    assert answer["allowed"] is False


def test_production_service_spec_error_names_field_and_rule() -> None:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "shop", "namespace": "shop"},
        "spec": {
            "image": "registry.example.com/shop/web:1.0.0",
            "environment": "staging",
            "env": [{"name": "DB_PASSWORD", "value": "hunter2"}],
        },
    }
    answer = decide(_request(service, kind="ProductionService"), Mode.ENFORCE)
    assert answer["allowed"] is False
    message = answer["status"]["message"]
    assert "PR-LG-003" in message
    assert "spec.env[0].value" in message
    assert "hunter2" not in json.dumps(answer)


def test_warnings_stay_within_the_apiserver_limits() -> None:
    crowded = _broken()
    template = crowded["spec"]["template"]["spec"]
    container = template["containers"][0]
    template["containers"] = []
    for index in range(60):
        extra = copy.deepcopy(container)
        extra["name"] = f"c{index}"
        extra.pop("readinessProbe")
        extra["image"] = "registry.example.com/shop/api:latest"
        template["containers"].append(extra)
    answer = decide(_request(crowded), Mode.AUDIT, _context())
    warnings = answer["warnings"]
    assert all(len(w) <= MAX_WARNING_CHARS for w in warnings)
    assert sum(len(w.encode()) for w in warnings) <= MAX_WARNINGS_BYTES
    assert "left out" in warnings[-1]


# -- issue 15: no bypass from one's own manifest, no denial because of creation order ------

ALICE = {"username": "alice", "groups": ["system:authenticated"]}
REPLICASET_CONTROLLER = {"username": "system:serviceaccount:kube-system:replicaset-controller"}
CONTROLLER_MANAGER = {"username": "system:kube-controller-manager"}
MASTERS = {"username": "admin", "groups": ["system:masters", "system:authenticated"]}


def _pod(**metadata: Any) -> dict[str, Any]:
    """A pod of the Deployment without its liveness probe (PR-HC-001, an error)."""
    template = _broken()["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "api-1", "namespace": "shop", **template["metadata"], **metadata},
        "spec": copy.deepcopy(template["spec"]),
    }


def _owner(kind: str = "ReplicaSet", api_version: str = "apps/v1") -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": api_version,
            "kind": kind,
            "name": "api-7d9f",
            "uid": "6d1c4f5e-0000-4000-8000-000000000001",
            "controller": True,
        }
    ]


def test_a_bare_pod_is_checked() -> None:
    answer = decide(_request(_pod(), kind="Pod", user=ALICE), Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    assert "prodready denied Pod shop/api-1" in answer["status"]["message"]
    assert "PR-HC-001" in answer["status"]["message"]


@pytest.mark.parametrize(
    ("user", "owner_kind", "evaluated"),
    [
        (REPLICASET_CONTROLLER, "ReplicaSet", False),
        (CONTROLLER_MANAGER, "ReplicaSet", False),
        (MASTERS, "ReplicaSet", False),
        # Anyone else's claim of an owner is not believed.
        (ALICE, "ReplicaSet", True),
        # The controller of another kind is not the one that creates ReplicaSets' pods.
        ({"username": "system:serviceaccount:kube-system:job-controller"}, "ReplicaSet", True),
        # An owner of a kind the webhook does not check is no owner to it.
        (REPLICASET_CONTROLLER, "Rollout", True),
    ],
)
def test_a_pod_of_an_admitted_controller_is_not_checked_again(
    user: dict[str, Any], owner_kind: str, evaluated: bool
) -> None:
    pod = _pod(ownerReferences=_owner(owner_kind))
    request = _request(pod, kind="Pod", user=user)
    assert controlled_by_its_controller(request) is not evaluated
    answer = decide(request, Mode.ENFORCE, _context())
    assert answer["allowed"] is not evaluated


def test_an_owner_reference_that_is_not_the_controller_is_no_owner() -> None:
    owners = _owner()
    owners[0]["controller"] = False
    request = _request(_pod(ownerReferences=owners), kind="Pod", user=REPLICASET_CONTROLLER)
    assert controlled_by_its_controller(request) is False


def test_an_unowned_replica_set_is_judged_as_a_replica_set() -> None:
    deployment = _broken()
    replica_set = {**deployment, "kind": "ReplicaSet"}
    answer = decide(_request(replica_set, kind="ReplicaSet", user=ALICE), Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    message = answer["status"]["message"]
    assert message.startswith("prodready denied ReplicaSet shop/api")
    assert "PR-HC-001" in message
    # A ReplicaSet has no rollout strategy: the Deployment's strategy rule does not apply.
    replica_set["spec"] = {k: v for k, v in _deployment()["spec"].items() if k != "strategy"}
    compliant = decide(_request(replica_set, kind="ReplicaSet"), Mode.ENFORCE, _context())
    assert compliant["allowed"] is True, compliant
    assert not any("PR-GS-003" in w for w in compliant.get("warnings", []))


def test_a_replica_set_its_deployment_controller_writes_is_not_checked() -> None:
    replica_set = {**_broken(), "kind": "ReplicaSet"}
    replica_set["metadata"] = {**replica_set["metadata"], "ownerReferences": _owner("Deployment")}
    user = {"username": "system:serviceaccount:kube-system:deployment-controller"}
    answer = decide(_request(replica_set, kind="ReplicaSet", user=user), Mode.ENFORCE)
    assert answer == {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "allowed": True}


def _job() -> dict[str, Any]:
    template = copy.deepcopy(_broken()["spec"]["template"])
    template["spec"]["restartPolicy"] = "Never"
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop"},
        "spec": {"template": template},
    }


def test_a_job_and_a_cronjob_are_checked() -> None:
    job = _job()
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [*container.get("env", []), {"name": "DB_PASSWORD", "value": "hunter2"}]
    answer = decide(_request(job, kind="Job", user=ALICE), Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    assert "prodready denied Job shop/migrate" in answer["status"]["message"]
    assert "hunter2" not in json.dumps(answer)
    cronjob = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": job["spec"]}},
    }
    answer = decide(_request(cronjob, kind="CronJob", user=ALICE), Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    assert "prodready denied CronJob shop/nightly" in answer["status"]["message"]


def _with_ephemeral(pod: dict[str, Any], **security: Any) -> dict[str, Any]:
    debugged = copy.deepcopy(pod)
    container: dict[str, Any] = {"name": "debugger-x7", "image": "busybox:1.36"}
    if security:
        container["securityContext"] = security
    debugged["spec"].setdefault("ephemeralContainers", []).append(container)
    return debugged


@pytest.mark.parametrize(
    ("security", "problem"),
    [
        ({"privileged": True}, "is privileged [spec.ephemeralContainers[0].securityContext"),
        ({"allowPrivilegeEscalation": True}, "allows privilege escalation"),
        ({"capabilities": {"add": ["SYS_ADMIN"]}}, "adds capabilities SYS_ADMIN"),
    ],
)
def test_a_privileged_ephemeral_container_is_denied_in_enforce(
    security: dict[str, Any], problem: str
) -> None:
    pod = _pod(ownerReferences=_owner())  # a pod of an admitted Deployment
    request = _request(
        _with_ephemeral(pod, **security),
        operation="UPDATE",
        old=pod,
        kind="Pod",
        user=MASTERS,  # even its controller's trusted identity: the owner says nothing here
        sub_resource="ephemeralcontainers",
    )
    assert controlled_by_its_controller(request) is False
    answer = decide(request, Mode.ENFORCE, _context())
    assert answer["allowed"] is False
    message = answer["status"]["message"]
    assert problem in message
    assert "PR-SC-004" in message
    assert "kubectl debug --profile=restricted" in message
    audit = decide(request, Mode.AUDIT, _context())
    assert audit["allowed"] is True
    assert any(w.startswith("PR-SC-004 (error)") and problem in w for w in audit["warnings"])


def test_an_ordinary_ephemeral_container_is_allowed_and_old_ones_are_not_judged_again() -> None:
    pod = _pod()
    plain = _request(
        _with_ephemeral(pod),
        operation="UPDATE",
        old=pod,
        kind="Pod",
        sub_resource="ephemeralcontainers",
    )
    assert decide(plain, Mode.ENFORCE) == {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "allowed": True,
    }
    # A privileged one added before the namespace opted in does not block the next one.
    before = _with_ephemeral(pod, privileged=True)
    after = copy.deepcopy(before)
    after["spec"]["ephemeralContainers"].append({"name": "debugger-y2", "image": "busybox:1.36"})
    request = _request(
        after, operation="UPDATE", old=before, kind="Pod", sub_resource="ephemeralcontainers"
    )
    assert decide(request, Mode.ENFORCE)["allowed"] is True
    assert ephemeral_container_problems(request) == []


def test_other_subresources_are_not_evaluated() -> None:
    request = _request(_broken(), operation="UPDATE", old=_broken(), sub_resource="status")
    assert request.sub_resource == "status"
    assert decide(request, Mode.ENFORCE)["allowed"] is True


def test_what_the_object_can_fix_itself_still_denies_without_its_context() -> None:
    answer = decide(_request(_broken()), Mode.ENFORCE)
    assert answer["allowed"] is False
    assert "1 rule(s) failed. PR-HC-001" in answer["status"]["message"]
    assert any("PR-MO-001 (error, not denied" in w for w in answer["warnings"])


def test_a_denial_names_at_most_ten_ephemeral_containers() -> None:
    pod = _pod()
    debugged = copy.deepcopy(pod)
    debugged["spec"]["ephemeralContainers"] = [
        {"name": f"d{i}", "image": "busybox:1.36", "securityContext": {"privileged": True}}
        for i in range(25)
    ]
    request = _request(
        debugged, operation="UPDATE", old=pod, kind="Pod", sub_resource="ephemeralcontainers"
    )
    assert len(ephemeral_container_problems(request)) == 25
    message = decide(request, Mode.ENFORCE)["status"]["message"]
    assert "container d9 is privileged" in message
    assert "container d10 " not in message
    assert "and 15 more" in message


def _policies(*policies: dict[str, Any]) -> Any:
    from prodready.rules.policy import PolicySet, compile_policy, default_policy

    return PolicySet(policies=[compile_policy(p) for p in policies], default=default_policy())


def _readiness_policy(name: str, mode: str, tier: str) -> dict[str, Any]:
    return {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ReadinessPolicy",
        "metadata": {"name": name},
        "spec": {"mode": mode, "namespaceSelector": {"matchLabels": {"tier": tier}}},
    }


def _namespace(**labels: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": labels}}


def test_the_policy_entry_checks_only_what_a_policy_selects_in_its_mode() -> None:
    policies = _policies(
        _readiness_policy("production", "Enforce", "prod"),
        _readiness_policy("staging", "Audit", "staging"),
    )
    unselected = decide(
        _request(_broken()),
        Mode.POLICY,
        [*_context(), _namespace(tier="dev")],
        policies=policies,
    )
    assert unselected == {"uid": unselected["uid"], "allowed": True}  # not even warned
    enforced = decide(
        _request(_broken()), Mode.POLICY, [*_context(), _namespace(tier="prod")], policies=policies
    )
    assert enforced["allowed"] is False
    assert "PR-HC-001" in enforced["status"]["message"]
    audited = decide(
        _request(_broken()),
        Mode.POLICY,
        [*_context(), _namespace(tier="staging")],
        policies=policies,
    )
    assert audited["allowed"] is True
    assert any("PR-HC-001" in w for w in audited["warnings"])
    # On the audit entry, an Enforce policy selecting the namespace raises the mode.
    raised = decide(
        _request(_broken()), Mode.AUDIT, [*_context(), _namespace(tier="prod")], policies=policies
    )
    assert raised["allowed"] is False


def test_only_the_reviewed_object_is_checked_the_context_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A namespace's ConfigMaps, Ingresses and Services have rules of their own; a review
    checks none of them (work bounded by the reviewed object, not the namespace's size),
    while the rules still read them."""
    from prodready import rules

    evaluated: list[int] = []
    evaluate = rules.evaluate

    def counting(*args: Any, **kwargs: Any) -> Any:
        reports = evaluate(*args, **kwargs)
        evaluated.append(len(reports))
        return reports

    monkeypatch.setattr(rules, "evaluate", counting)
    config_maps = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"settings-{n}", "namespace": "shop"},
            "data": {"DB_PASSWORD": "hunter2-literal"},
        }
        for n in range(50)
    ]
    answer = decide(_request(_deployment()), Mode.ENFORCE, context=[*_context(), *config_maps])
    assert answer["allowed"] is True
    assert evaluated == [1]
    assert not answer.get("warnings")
    # The context is still read: without its PDB and monitors, the same review warns.
    warnings = decide(_request(_deployment()), Mode.ENFORCE, context=config_maps)["warnings"]
    assert any(warning.startswith("PR-RS-002") for warning in warnings)

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
    decide,
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
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "apps", "version": "v1", "kind": kind},
        "operation": operation,
        "namespace": "shop",
        "name": "api",
        "dryRun": dry_run,
    }
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
    assert decide(_request(_deployment()), Mode.ENFORCE, _context())["allowed"] is True
    alone = decide(_request(_deployment()), Mode.ENFORCE)
    assert alone["allowed"] is False
    assert "PR-MO-001" in alone["status"]["message"]


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

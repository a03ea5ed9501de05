"""Interning cached objects' strings: equal content, one copy of each short string."""

from __future__ import annotations

import json

from prodready.kube.interning import MAX_INTERNED_LENGTH, intern_in_place
from prodready.kube.store import ObjectStore

DOCUMENT = json.dumps(
    {
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "1"},
        "spec": {
            "template": {
                "spec": {
                    "containers": [{"name": "app", "imagePullPolicy": "IfNotPresent"}],
                    "dnsPolicy": "ClusterFirst",
                }
            }
        },
        "note": "x" * (MAX_INTERNED_LENGTH + 1),
    }
)


def _container_keys(body: dict[str, object]) -> list[str]:
    spec = body["spec"]
    assert isinstance(spec, dict)
    return list(spec["template"]["spec"]["containers"][0])


def test_content_is_unchanged_and_strings_are_shared_between_documents() -> None:
    first, second = json.loads(DOCUMENT), json.loads(DOCUMENT)
    assert _container_keys(first)[1] is not _container_keys(second)[1]
    intern_in_place(first)
    intern_in_place(second)
    assert first == second == json.loads(DOCUMENT)
    assert _container_keys(first)[1] is _container_keys(second)[1]
    policy = first["spec"]["template"]["spec"]["dnsPolicy"]
    assert policy is second["spec"]["template"]["spec"]["dnsPolicy"]
    # A long string is left as it is: interning it would only grow the table.
    assert first["note"] is not second["note"]


def test_a_body_seen_before_is_not_walked_again() -> None:
    body = json.loads(DOCUMENT)
    intern_in_place(body)
    spec = body["spec"]
    intern_in_place(body)
    assert body["spec"] is spec


def test_the_store_keeps_one_copy_of_each_string_and_the_values_equal() -> None:
    event_body = json.loads(DOCUMENT)
    other_body = json.loads(DOCUMENT)
    other_body["metadata"]["name"] = "api"
    store = ObjectStore()
    store.put(event_body)
    store.put(other_body)
    web, api = store.get("Deployment", "shop", "web"), store.get("Deployment", "shop", "api")
    assert web is not None
    assert api is not None
    policy = web["spec"]["template"]["spec"]["dnsPolicy"]
    assert policy is api["spec"]["template"]["spec"]["dnsPolicy"]
    assert web == json.loads(DOCUMENT)

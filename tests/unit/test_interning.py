"""Interning cached objects' strings: equal content, one copy of each short string."""

from __future__ import annotations

import json

from prodready.controller.cache import ObjectCache
from prodready.kube.interning import MAX_INTERNED_LENGTH, intern_in_place
from prodready.kube.inventory import Inventory

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


def test_both_caches_keep_one_copy_of_the_shared_event_body() -> None:
    event_body = json.loads(DOCUMENT)
    cache, inventory = ObjectCache("ProductionService"), Inventory()
    cache.put(event_body)
    inventory.put(event_body)
    cached, listed = (
        cache.get("Deployment", "shop", "web"),
        inventory.get("Deployment", "shop", "web"),
    )
    assert cached is not None
    assert listed is not None
    assert cached["spec"] is listed["spec"]
    assert cached == json.loads(DOCUMENT)

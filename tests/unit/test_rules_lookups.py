"""Secrets looked up by name in the cluster join the rules' context as offline input does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from prodready.rules import evaluate
from prodready.rules.lookups import looked_up_secret, referenced_secrets

FIXTURE = Path(__file__).parents[1] / "fixtures" / "rules" / "compliant.yaml"


def _objects() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(FIXTURE.read_text()) if d and d["kind"] != "Secret"]


def _cf002(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    report = evaluate(objects)[0]
    return [(f.result.value, f.message) for f in report.findings if f.rule_id == "PR-CF-002"]


def test_references_of_every_workload_kind_and_source_are_found() -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "namespace": "a"},
        "spec": {
            "containers": [
                {
                    "name": "c",
                    "envFrom": [{"secretRef": {"name": "from-env"}}],
                    "env": [
                        {"name": "X", "valueFrom": {"secretKeyRef": {"name": "one", "key": "k"}}},
                        {
                            "name": "Y",
                            "valueFrom": {
                                "secretKeyRef": {"name": "maybe", "key": "k", "optional": True}
                            },
                        },
                    ],
                }
            ],
            "volumes": [
                {"name": "v", "secret": {"secretName": "mounted"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "projected"}}]}},
            ],
            "imagePullSecrets": [{"name": "pull"}],
        },
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}
    assert referenced_secrets([pod, service, *_objects()]) == [
        ("a", "from-env"),
        ("a", "mounted"),
        ("a", "one"),
        ("a", "projected"),
        ("a", "pull"),
        ("shop", "db-credentials"),
    ]


def test_a_looked_up_secret_is_judged_as_one_in_the_input() -> None:
    objects = _objects()
    assert _cf002(objects) == []  # not in the input: not judged
    found = looked_up_secret("shop", "db-credentials", ["url"])
    assert found["data"] == {"url": ""}  # key names only
    assert [result for result, _ in _cf002([*objects, found])] == ["pass"]
    assert _cf002([*objects, looked_up_secret("shop", "db-credentials", ["dsn"])]) == [
        ("fail", "Secret db-credentials has no key url")
    ]
    assert _cf002([*objects, looked_up_secret("shop", "db-credentials", None)]) == [
        ("fail", "Secret db-credentials does not exist")
    ]

"""Finding a finding's field in its file: the line and column SARIF regions carry."""

from __future__ import annotations

from prodready.rules.loader import LoadedObject, LoadResult, load_bytes
from prodready.rules.locate import Locator, path_tokens

TEXT = b"""\
# two documents and a List
apiVersion: v1
kind: ConfigMap
metadata: {name: a}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels:
    prodready.io/environment: prod
spec:
  template:
    spec:
      containers:
        - name: web
          env:
            - {name: LOG_FORMAT, value: text}
---
apiVersion: v1
kind: List
items:
  - apiVersion: v1
    kind: Pod
    metadata: {name: p}
    spec:
      containers:
        - name: c
          image: busybox
"""


def _sources() -> tuple[Locator, list[LoadedObject]]:
    result = LoadResult()
    load_bytes(TEXT, "f.yaml", result)
    return Locator(result.texts), result.objects


def test_path_tokens() -> None:
    assert path_tokens("spec.containers[0].env[2].value") == [
        "spec",
        "containers",
        0,
        "env",
        2,
        "value",
    ]
    assert path_tokens('metadata.annotations["a.io/b"]') == ["metadata", "annotations", "a.io/b"]


def test_fields_documents_and_list_items_are_found() -> None:
    locator, (config, web, pod) = _sources()
    assert locator.region(config, "metadata.name") == (4, 12)
    containers = "spec.template.spec.containers[0]"
    assert locator.region(web, f"{containers}.env[0].value") == (18, 34)
    # A missing field points at the deepest part written: the container.
    assert locator.region(web, f"{containers}.livenessProbe") == (16, 11)
    # A key with dots, written unquoted in the path.
    assert locator.region(web, "metadata.labels.prodready.io/environment") == (11, 5)
    assert locator.region(web, "spec.replicas") == (12, 1)
    assert locator.region(pod, "spec.containers[0].image") == (29, 11)
    assert locator.region(pod, "spec.containers[3]") == (27, 7)


def test_what_cannot_be_located() -> None:
    locator, (config, _, _) = _sources()
    rendered = LoadedObject(config.obj, config.file, config.line, "helm template")
    assert locator.region(rendered, "metadata") is None
    unknown = LoadedObject(config.obj, "other.yaml", 1)
    assert locator.region(unknown, "metadata") is None
    assert Locator({"bad.yaml": b"a: [\n"}).region(LoadedObject({}, "bad.yaml", 1), "a") is None

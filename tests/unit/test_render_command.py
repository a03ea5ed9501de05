"""`prodready render`: files and stdin in, YAML or a JSON List out, exit 2 on bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from prodready.cli import main

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "fastapi-postgres-redis.yaml"
MINIMAL = REPO / "examples" / "minimal.yaml"

TWO_SERVICES = """\
apiVersion: prodready.io/v1alpha1
kind: ProductionService
metadata: {name: first}
spec: {image: "a:1", environment: dev, replicas: 1}
---
# an empty document is skipped
---
apiVersion: prodready.io/v1alpha1
kind: ProductionService
metadata: {name: second, namespace: shop}
spec: {image: "b:1", environment: staging}
"""


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_yaml_stream_of_several_files(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["-f", str(EXAMPLE), "-f", str(MINIMAL)], capsys)
    assert (code, err) == (0, "")
    documents = list(yaml.safe_load_all(out))
    assert out.startswith("---\n")
    kinds = [(d["kind"], d["metadata"]["name"]) for d in documents]
    assert kinds[0] == ("Service", "orders-api")
    assert ("PrometheusRule", "orders-api") in kinds
    assert (
        kinds[-2:] == [("Deployment", "hello"), ("ServiceMonitor", "hello")]
        or (
            "Deployment",
            "hello",
        )
        in kinds
    )


def test_several_services_in_one_stream_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(TWO_SERVICES))
    code, out, _ = run(["-f", "-", "-o", "json"], capsys)
    assert code == 0
    listing = json.loads(out)
    assert (listing["apiVersion"], listing["kind"]) == ("v1", "List")
    names = {(item["metadata"]["namespace"], item["metadata"]["name"]) for item in listing["items"]}
    assert names == {("default", "first"), ("shop", "second")}


def test_output_is_deterministic(capsys: pytest.CaptureFixture[str]) -> None:
    first = run(["-f", str(EXAMPLE)], capsys)
    second = run(["-f", str(EXAMPLE)], capsys)
    assert first == second


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("a: [1\n", "malformed YAML at line 2, column 1"),
        ("- just\n- a list\n", "document 1: expected a mapping, got list"),
        (
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n",
            "document 1: kind 'Secret' is not a ProductionService",
        ),
        (
            TWO_SERVICES.replace('image: "b:1", ', ""),
            "document 3 (ProductionService second): spec.image: required field is missing [schema]",
        ),
        (
            TWO_SERVICES.replace("replicas: 1", "env: [{name: DB_PASSWORD, value: hunter2}]"),
            "document 1 (ProductionService first): spec.env[0].value: DB_PASSWORD looks sensitive",
        ),
        (
            "apiVersion: prodready.io/v1alpha1\nkind: ProductionService\nmetadata: {}\n"
            "spec: {image: a, environment: dev}\n",
            "document 1 (ProductionService): metadata.name: required field is missing",
        ),
        ("# nothing here\n", "no ProductionService in"),
    ],
)
def test_bad_input_exits_2_naming_file_document_and_field(
    content: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "input.yaml"
    path.write_text(content)
    code, out, err = run(["-f", str(path)], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith(f"prodready render: {path}") or err.startswith("prodready render: no ")
    assert expected in err
    assert "Traceback" not in err
    assert "hunter2" not in err


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(["-f", str(tmp_path / "absent.yaml")], capsys)
    assert code == 2
    assert "absent.yaml: cannot read: No such file or directory" in err


def test_binary_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "image.png"
    path.write_bytes(b"\x89PNG\xff\xfe")
    code, _, err = run(["-f", str(path)], capsys)
    assert code == 2
    assert "image.png: cannot read" in err


def test_filename_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["render"])
    assert caught.value.code == 2
    assert "-f" in capsys.readouterr().err

"""The validate loader's limits, in process: what each one refuses and where, the node
counts they rely on (checked against what the parsers really build), and the races and
failures of reading a file that the subprocess tests cannot stage."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from prodready.cli import main
from prodready.rules import loader
from prodready.rules.loader import (
    MAX_ALIAS_NODES,
    FileTooLargeError,
    InputLimits,
    LoadResult,
    NotRegularFileError,
    load_bytes,
    load_inputs,
    read_regular_file,
)

SAFE_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
SERVICE = "apiVersion: v1\nkind: Service\nmetadata: {name: NAME}\n"


def services(count: int, prefix: str = "s") -> str:
    return "---\n".join(SERVICE.replace("NAME", f"{prefix}{i}") for i in range(count))


def loaded(paths: list[str], stdin: bytes = b"", **options: Any) -> LoadResult:
    return load_inputs(paths, io.BytesIO(stdin), **options)


def messages(result: LoadResult) -> list[str]:
    return [str(error) for error in result.errors]


# ------------------------------------------------------------------ run-wide limits


def test_the_object_limit_stops_the_run_and_checks_nothing(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(services(3, "a"))
    (tmp_path / "b.yaml").write_text(services(3, "b"))
    assert len(loaded([str(tmp_path)], limits=InputLimits(max_objects=6)).objects) == 6
    result = loaded([str(tmp_path)], limits=InputLimits(max_objects=5))
    assert result.over_limit
    assert result.objects == []
    assert messages(result) == [
        f"{tmp_path / 'b.yaml'}: the inputs together hold more than 5 objects, the limit of "
        "one run (--max-objects); stopped reading here and checked nothing"
    ]
    result = loaded([str(tmp_path)], limits=InputLimits(max_objects=1))
    assert "more than 1 object, the limit" in messages(result)[0]


def test_the_byte_limit_counts_every_input_without_trusting_sizes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(services(1))
    second.write_text(services(1))
    size = first.stat().st_size
    exact = InputLimits(max_bytes=2 * size + 10)
    assert len(loaded([str(first), str(second), "-"], b"#" * 10, limits=exact).objects) == 2
    result = loaded([str(first), str(second), "-"], b"#" * 11, limits=exact)
    assert result.over_limit
    assert messages(result)[0].startswith("<stdin>: the inputs together are larger than")
    result = loaded([str(first), str(second)], limits=InputLimits(max_bytes=size + 1))
    assert result.over_limit
    assert messages(result)[0].startswith(f"{second}: the inputs together are larger than")


def test_the_node_limit_counts_what_aliases_add(tmp_path: Path) -> None:
    anchors = SERVICE.replace("NAME", "x") + "spec:\n  a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\n"
    plain = loaded(["-"], anchors.encode(), limits=InputLimits(max_nodes=40))
    assert len(plain.objects) == 1
    aliased = anchors + "  b: *a\n  c: *a\n"
    result = loaded(["-"], aliased.encode(), limits=InputLimits(max_nodes=40))
    assert result.over_limit
    assert "more than 40 YAML/JSON values, the limit of one run" in messages(result)[0]
    # JSON values count the same way (keys included).
    document = json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})
    assert len(loaded(["-"], document.encode(), limits=InputLimits(max_nodes=9)).objects) == 1
    assert loaded(["-"], document.encode(), limits=InputLimits(max_nodes=8)).over_limit


def test_stdin_read_as_yaml_after_json_failed_is_counted_once() -> None:
    flow = b"{apiVersion: v1, kind: Service, metadata: {name: s}}"
    result = loaded(["-"], flow, limits=InputLimits(max_objects=1))
    assert len(result.objects) == 1
    assert not result.errors


def test_the_limits_are_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").write_text(services(3))
    assert main(["validate", str(tmp_path), "--max-objects", "2"]) == 2
    err = capsys.readouterr().err
    assert "more than 2 objects, the limit of one run (--max-objects)" in err
    assert "no workloads found" not in err
    assert main(["validate", str(tmp_path), "--max-objects", "3", "--max-input-mib", "1"]) == 0
    capsys.readouterr()
    for flag in ("--max-objects", "--max-input-mib"):
        with pytest.raises(SystemExit) as caught:
            main(["validate", str(tmp_path), flag, "many"])
        assert caught.value.code == 2
        assert f"{flag} must be a whole number above 0: 'many'" in capsys.readouterr().err


# --------------------------------------------------------------- per-document limits


def test_the_alias_budget_is_a_fixed_number_of_added_nodes() -> None:
    def aliases(count: int) -> bytes:
        return (SERVICE.replace("NAME", "x") + "data: [&a x" + ", *a" * count + "]\n").encode()

    result = LoadResult()
    load_bytes(aliases(MAX_ALIAS_NODES), "fits.yaml", result)
    assert not result.errors
    result = LoadResult()
    load_bytes(aliases(MAX_ALIAS_NODES + 1), "bomb.yaml", result)
    (error,) = result.errors
    assert "more than the 10,000 nodes aliases may add" in error.message
    # However large the document: no ratio lets a big one expand further.
    big = SERVICE.replace("NAME", "x") + "data:\n" + "".join(f"  k{i}: v\n" for i in range(50_000))
    result = LoadResult()
    load_bytes((big + "  a: &a [1, 2]\n" + "  b: *a\n" * 5_001).encode(), "big.yaml", result)
    assert "refusing it as an alias bomb" in result.errors[0].message


def test_documents_over_the_node_budget_are_refused_before_composing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loader, "MAX_DOCUMENT_NODES", 20)
    small = SERVICE.replace("NAME", "ok")
    large = SERVICE.replace("NAME", "big") + "data: [" + ", ".join(["x"] * 20) + "]\n"
    result = LoadResult()
    load_bytes(f"{small}---\n{small}---\n{large}".encode(), "many.yaml", result)
    assert result.objects == []
    assert [str(e) for e in result.errors] == [
        "many.yaml:9: a document of more than 20 YAML nodes; refusing the file (split the document)"
    ]
    # A syntax error ends the count; parsing proper reports it with its line.
    result = LoadResult()
    broken = small + "bad: [x, y, z, w\n"
    assert loader._document_node_bound(broken.encode()) > 20
    load_bytes(broken.encode(), "broken.yaml", result)
    assert [str(e) for e in result.errors] == [
        "broken.yaml:5: invalid YAML: did not find expected ',' or ']' (column 1)"
    ]
    result = LoadResult()
    load_bytes(
        json.dumps({"kind": "X", "data": ["x"] * 20}).encode(), "big.json", result, json_format=True
    )
    assert [str(e) for e in result.errors] == [
        "big.json: a document of more than 20 JSON values; refusing the file (split the document)"
    ]


def test_load_bytes_refuses_input_above_the_file_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 8)
    result = LoadResult()
    load_bytes(b"apiVersion: v1\n", "x.yaml", result)
    assert "larger than the 7.62939e-06 MiB input limit" in result.errors[0].message


# ---------------------------------------------------- the node counts the limits use

yaml_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=5), children, max_size=5)
    ),
    max_leaves=40,
)


def _nodes(node: yaml.Node) -> int:
    return 1 + sum(_nodes(child) for child in loader._children(node))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=yaml_values, flow=st.booleans())
def test_the_cheap_node_bound_is_never_below_the_real_count(value: Any, flow: bool) -> None:
    text = yaml.safe_dump(value, default_flow_style=flow, allow_unicode=True).encode()
    node = yaml.compose(text, Loader=SAFE_LOADER)
    assert node is not None
    assert loader._document_node_bound(text) >= _nodes(node)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    values=st.lists(yaml_values, min_size=1, max_size=6),
    flow=st.booleans(),
    explicit=st.booleans(),
    budget=st.integers(min_value=1, max_value=80),
)
def test_no_document_over_the_budget_escapes_the_cheap_check(
    values: list[Any], flow: bool, explicit: bool, budget: int
) -> None:
    text = yaml.safe_dump_all(
        values, default_flow_style=flow, explicit_start=explicit, allow_unicode=True
    ).encode()
    largest = max(_nodes(node) for node in yaml.compose_all(text, Loader=SAFE_LOADER))
    with mock.patch.object(loader, "MAX_DOCUMENT_NODES", budget):
        if largest > budget:
            assert loader._may_hold_a_large_document(text)


def test_a_large_file_of_small_documents_is_not_parsed_twice() -> None:
    text = services(100_000).encode()
    assert loader._document_node_bound(text) > loader.MAX_DOCUMENT_NODES
    assert not loader._may_hold_a_large_document(text)


@pytest.mark.parametrize(
    "text",
    ["{a, b, c}", "[a: , b: ]", "? a\n? b\n", "- - - -\n", "a:\nb:\nc:\n", "[a, {b, c: d}]"],
)
def test_the_cheap_node_bound_holds_for_the_densest_shapes(text: str) -> None:
    node = yaml.compose(text, Loader=SAFE_LOADER)
    assert loader._document_node_bound(text.encode()) >= _nodes(node)


def _values(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + sum(1 + _values(item) for item in value.values())
    if isinstance(value, list):
        return 1 + sum(_values(item) for item in value)
    return 1


@settings(max_examples=300, deadline=None)
@given(value=yaml_values, indent=st.sampled_from([None, 2]))
def test_json_values_are_counted_exactly(value: Any, indent: int | None) -> None:
    text = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    assert loader._json_values(text) == _values(value)


def test_nodes_built_by_pyyaml_are_counted_too() -> None:
    # A merge key sends its mapping to PyYAML's constructor: its nodes still count.
    text = SERVICE.replace("NAME", "x") + "spec:\n  <<: {a: 1, b: 2, c: 3, d: 4, e: 5}\n"
    total = _nodes(yaml.compose(text, Loader=SAFE_LOADER))
    assert total == 23  # 13 of them under the merge
    assert len(loaded(["-"], text.encode(), limits=InputLimits(max_nodes=total)).objects) == 1
    assert loaded(["-"], text.encode(), limits=InputLimits(max_nodes=total - 1)).over_limit


# ----------------------------------------------------------- reading one regular file


def test_a_file_swapped_for_a_fifo_after_the_check_is_still_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = tmp_path / "p.yaml"
    os.mkfifo(fifo)
    regular = os.stat(__file__)
    real_stat = os.stat
    monkeypatch.setattr(
        loader.os, "stat", lambda path, **kw: regular if path == str(fifo) else real_stat(path)
    )
    with pytest.raises(NotRegularFileError, match=r"not a regular file \(a FIFO\)"):
        read_regular_file(str(fifo), 100)


def test_a_file_is_never_read_past_its_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "grows.yaml"
    path.write_bytes(b"x" * 100)
    with pytest.raises(FileTooLargeError) as caught:
        read_regular_file(str(path), 99)
    assert caught.value.size == 100
    # A size that lies (the file grew after fstat): at most limit + 1 bytes are read.
    real_fstat = os.fstat
    reads: list[int] = []
    real_read = os.read

    def counting_read(descriptor: int, size: int) -> bytes:
        data = real_read(descriptor, size)
        reads.append(len(data))
        return data

    def small(descriptor: int) -> os.stat_result:
        result = list(real_fstat(descriptor))
        result[stat.ST_SIZE] = 0
        return os.stat_result(result)

    monkeypatch.setattr(loader.os, "fstat", small)
    monkeypatch.setattr(loader.os, "read", counting_read)
    with pytest.raises(FileTooLargeError) as caught:
        read_regular_file(str(path), 10)
    assert caught.value.size is None
    assert sum(reads) == 11
    monkeypatch.setattr(loader.os, "fstat", real_fstat)
    monkeypatch.setattr(loader, "MAX_FILE_BYTES", 50)
    result = loaded([str(path)])
    assert messages(result) == [
        f"{path}: 100 bytes is larger than the 4.76837e-05 MiB input limit; not read"
    ]


def test_unreadable_files_and_directories_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a.yaml").write_text(services(1))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yaml").write_text(services(1))
    real_open, real_scandir = os.open, os.scandir

    def no_open(path: str, flags: int) -> int:
        if path.endswith("a.yaml"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags)

    def no_scandir(path: str) -> Any:
        if path.endswith("sub"):
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(loader.os, "open", no_open)
    monkeypatch.setattr(loader.os, "scandir", no_scandir)
    assert messages(loaded([str(tmp_path)])) == [
        f"{tmp_path / 'a.yaml'}: cannot read: Permission denied",
        f"{tmp_path / 'sub'}: cannot read the directory: Permission denied",
    ]


# ------------------------------------------------------------------ links and walks


def test_links_that_lead_nowhere(tmp_path: Path) -> None:
    (tmp_path / "gone.yaml").symlink_to(tmp_path / "missing.yaml")
    (tmp_path / "gone-dir").symlink_to(tmp_path / "missing")
    (tmp_path / "notes.txt").symlink_to(tmp_path / "missing.txt")
    result = loaded([str(tmp_path), str(tmp_path / "gone.yaml")])
    assert messages(result) == [
        f"{tmp_path / 'gone.yaml'}: cannot read: a symbolic link to nothing",
        f"{tmp_path / 'gone.yaml'}: cannot read: a symbolic link to nothing",
    ]


def test_each_directory_is_walked_once(tmp_path: Path) -> None:
    repo, shared = tmp_path / "repo", tmp_path / "shared"
    (repo / "sub").mkdir(parents=True)
    shared.mkdir()
    (repo / "sub" / "a.yaml").write_text(services(1, "a"))
    (shared / "b.yaml").write_text(services(1, "b"))
    (repo / "one").symlink_to(shared)
    (repo / "two").symlink_to(shared)
    (repo / ".hidden").symlink_to(shared)
    (repo / "readme.md").symlink_to(shared / "b.yaml")
    # Overlapping roots: the subdirectory was walked already.
    result = loaded([str(repo), str(repo / "sub")], follow_symlinks=True)
    assert [(o.file, o.obj["metadata"]["name"]) for o in result.objects] == [
        (str(repo / "one" / "b.yaml"), "b0"),
        (str(repo / "sub" / "a.yaml"), "a0"),
    ]
    assert result.errors == []
    assert result.notes == []


def test_an_empty_walk_says_so_unless_something_was_said(tmp_path: Path) -> None:
    (tmp_path / "link.yaml").symlink_to("/etc/hostname")
    result = loaded([str(tmp_path)])
    assert len(result.notes) == 1
    assert "outside the given paths" in result.notes[0]


def test_a_rules_configuration_gets_the_same_alias_budget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("exemptions: [&a x" + ", *a" * (MAX_ALIAS_NODES + 1) + "]\n")
    (tmp_path / "a.yaml").write_text(services(1))
    assert main(["validate", str(tmp_path / "a.yaml"), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"error: {config}: the document's aliases expand it" in err
    assert "refusing it as an alias bomb" in err

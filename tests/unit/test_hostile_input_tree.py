"""`prodready validate` on a hostile tree, run as CI runs it (a subprocess, under an
address-space limit, killed past a timeout): FIFOs, devices, symbolic links out of the tree
and in loops, alias bombs, documents too large to compose, and more input than one run
should hold. Each gets an error (exit 2) or a note within seconds, in bounded memory; where
hanging is the failure mode, the timeout is the test.

Bounds: every run here takes 1-6 s on a 2-core machine and peaks at 35-110 MiB (the
interpreter and libraries alone are ~35 MiB), but for the tree of small Deployments,
which stops at the 50,001st object, ~220 MiB.
`FAST_SECONDS` and `PEAK_RSS_KIB` leave room for a slow CI runner (and for coverage
tracing the child), and are far below what the same inputs cost before they were bounded
(a hang; minutes; several GiB).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.unit.test_hostile_input import Outcome, deployment_yaml, reported_names, validate

# Under coverage (`make test`) the child is traced too, which makes it ~3x slower.
TRACED = sys.gettrace() is not None
FAST_SECONDS = 30.0 if TRACED else 10.0
PEAK_RSS_KIB = 256 * 1024
# One container (13 nodes), aliased 20,000 times: a ~220 KB document of 32 distinct nodes.
CONTAINER = '{name: app, image: "example/web:1.0.0", resources: {limits: {cpu: 1, memory: 1Gi}}}'


def bounded(outcome: Outcome, peak_rss_kib: int = PEAK_RSS_KIB) -> Outcome:
    assert "Traceback" not in outcome.stderr, outcome.stderr[-3000:]
    assert outcome.seconds < FAST_SECONDS, outcome.seconds
    assert outcome.peak_rss_kib < peak_rss_kib, outcome.peak_rss_kib
    return outcome


def lines(outcome: Outcome, level: str, path: Path) -> list[str]:
    prefix = f"{level}: {path}"
    return [line for line in outcome.stderr.splitlines() if line.startswith(prefix)]


def errors(outcome: Outcome) -> dict[str, str]:
    return {Path(e["file"]).name: e["message"] for e in json.loads(outcome.stdout)["errors"]}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A directory with one good manifest, beside an `outside` directory with another."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "good.yaml").write_text(deployment_yaml("good"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.yaml").write_text(deployment_yaml("outside"))
    return root


def test_a_fifo_is_refused_not_waited_on(tree: Path, tmp_path: Path) -> None:
    fifo = tree / "p.yaml"
    os.mkfifo(fifo)
    # Nobody ever writes to the FIFO: a reader that opened it would block forever.
    for args in ([str(tree)], [str(fifo), str(tree / "good.yaml")]):
        outcome = bounded(validate(tmp_path, *args, timeout=FAST_SECONDS))
        assert outcome.returncode == 2
        (line,) = lines(outcome, "error", fifo)
        assert "not a regular file (a FIFO)" in line, line
        assert reported_names(outcome) == {"good"}


def test_a_device_is_refused_directly_and_through_a_link(tree: Path, tmp_path: Path) -> None:
    # /dev/zero never ends and stat says it is empty: it once passed the size check and
    # was read until memory ran out.
    link = tree / "zero.yaml"
    link.symlink_to("/dev/zero")
    outcome = bounded(validate(tmp_path, "/dev/zero", str(link), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    assert errors(outcome) == {
        "zero": "not a regular file (a character device); not read",
        "zero.yaml": "not a regular file (a character device); not read",
    }
    # In a walked tree the link leads out of it: skipped with a note; followed when asked,
    # and then refused as a device.
    outcome = bounded(validate(tmp_path, str(tree), timeout=FAST_SECONDS))
    assert outcome.returncode == 1  # the good Deployment's findings; nothing unread
    (note,) = lines(outcome, "note", link)
    assert "outside the given paths (/dev/zero); skipped" in note
    outcome = bounded(validate(tmp_path, "--follow-symlinks", str(tree), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    assert errors(outcome) == {"zero.yaml": "not a regular file (a character device); not read"}


def test_a_socket_is_refused(tree: Path, tmp_path: Path) -> None:
    path = tree / "s.yaml"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(path))
        outcome = bounded(validate(tmp_path, str(tree), str(path), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    assert len(lines(outcome, "error", path)) == 2
    assert all("not a regular file (a socket)" in line for line in lines(outcome, "error", path))


def test_links_out_of_the_tree_are_skipped_unless_followed(tree: Path, tmp_path: Path) -> None:
    (tree / "out.yaml").symlink_to(tmp_path / "outside" / "secret.yaml")
    (tree / "outdir").symlink_to(tmp_path / "outside")
    (tree / "inside.yaml").symlink_to("good.yaml")
    outcome = bounded(validate(tmp_path, str(tree), timeout=FAST_SECONDS))
    assert outcome.returncode == 1
    assert reported_names(outcome) == {"good"}
    assert len(json.loads(outcome.stdout)["objects"]) == 2  # good.yaml and inside.yaml
    for name, what in (("out.yaml", "file"), ("outdir", "directory")):
        (note,) = lines(outcome, "note", tree / name)
        assert f"a symbolic link to a {what} outside the given paths" in note
        assert "skipped (--follow-symlinks reads it)" in note
    outcome = bounded(validate(tmp_path, "--follow-symlinks", str(tree), timeout=FAST_SECONDS))
    assert outcome.returncode == 1
    sources = {item["source"]["file"] for item in json.loads(outcome.stdout)["objects"]}
    assert sources == {
        str(tree / "good.yaml"),
        str(tree / "inside.yaml"),
        str(tree / "out.yaml"),
        str(tree / "outdir" / "secret.yaml"),
    }
    assert "note:" not in outcome.stderr.replace("note: ignored", "")


def test_link_loops_end(tree: Path, tmp_path: Path) -> None:
    (tree / "a.yaml").symlink_to("b.yaml")
    (tree / "b.yaml").symlink_to("a.yaml")
    (tree / "self.yaml").symlink_to("self.yaml")
    sub = tree / "sub"
    sub.mkdir()
    (sub / "up").symlink_to("..")
    (sub / "again").symlink_to(tree)
    (tmp_path / "outside" / "back").symlink_to(tree)
    (tree / "outdir").symlink_to(tmp_path / "outside")
    for follow in ([], ["--follow-symlinks"]):
        outcome = bounded(validate(tmp_path, *follow, str(tree), timeout=FAST_SECONDS))
        assert outcome.returncode == 2
        assert errors(outcome) == {
            "a.yaml": "cannot read: a symbolic link loop",
            "b.yaml": "cannot read: a symbolic link loop",
            "self.yaml": "cannot read: a symbolic link loop",
        }
        # Every directory is walked once, however many links lead back to it.
        files = [item["source"]["file"] for item in json.loads(outcome.stdout)["objects"]]
        expected = [str(tree / "good.yaml")]
        if follow:
            expected.append(str(tree / "outdir" / "secret.yaml"))
        assert files == expected


def test_twenty_thousand_aliases_are_refused_in_seconds(tmp_path: Path) -> None:
    # 20,000 aliases of one container: ~220 KB that every consumer would walk as 260,000
    # nodes, and the rules as 20,000 containers (over 60 s and counting before the budget).
    path = tmp_path / "aliases.yaml"
    path.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bomb, namespace: shop}\n"
        "spec:\n  template:\n    spec:\n      containers:\n"
        f"      - &c {CONTAINER}\n" + "      - *c\n" * 20_000
    )
    assert 200_000 < path.stat().st_size < 250_000
    outcome = bounded(validate(tmp_path, str(path), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    (line,) = lines(outcome, "error", path)
    assert "aliases expand it from 32 to 260,032 nodes" in line, line
    assert "alias bomb" in line


def test_a_document_too_large_to_compose_is_refused_before_it_is(tmp_path: Path) -> None:
    # 32 MiB of `a,` in one flow sequence: 16 million nodes, ~5 GiB once composed. The
    # parser's events are counted instead, and counting stops past the budget.
    path = tmp_path / "dense.yaml"
    with path.open("wb") as out:
        out.write(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: [")
        out.write(b"a," * (16 * 1024 * 1024 - 64))
        out.write(b"a]}\n")
    outcome = bounded(validate(tmp_path, str(path), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    (line,) = lines(outcome, "error", path)
    assert "a document of more than 1,000,000 YAML nodes" in line, line


def _tree_of(directory: Path, content: bytes, total: int) -> None:
    directory.mkdir()
    for index in range(total // len(content) + 1):
        (directory / f"part-{index:04}.yaml").write_bytes(content)


def test_100_mb_of_small_deployments_stops_at_the_object_limit(tmp_path: Path) -> None:
    one = "---\n" + deployment_yaml("NAME")
    content = "".join(one.replace("NAME", f"app-{i}") for i in range(8000)).encode()
    _tree_of(tmp_path / "repo", content, 100 * 1024 * 1024)
    # Loading the 50,000 objects the run may hold takes ~220 MiB before it stops.
    outcome = validate(tmp_path, str(tmp_path / "repo"), timeout=FAST_SECONDS)
    bounded(outcome, peak_rss_kib=384 * 1024)
    assert outcome.returncode == 2
    report = json.loads(outcome.stdout)
    assert report["objects"] == []
    (error,) = report["errors"]
    assert "more than 50,000 objects, the limit of one run (--max-objects)" in error["message"]
    assert "checked nothing" in error["message"]
    assert Path(error["file"]).name == "part-0006.yaml"  # where the 50,001st object was


def test_100_mb_of_large_objects_stops_at_the_byte_limit(tmp_path: Path) -> None:
    content = (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: blob}\ndata:\n  blob: "
        + b"x" * (4 * 1024 * 1024)
        + b"\n"
    )
    _tree_of(tmp_path / "repo", content, 100 * 1024 * 1024)
    outcome = bounded(validate(tmp_path, str(tmp_path / "repo"), timeout=FAST_SECONDS))
    assert outcome.returncode == 2
    (error,) = json.loads(outcome.stdout)["errors"]
    assert "larger than the 64 MiB limit of one run (--max-input-mib)" in error["message"]
    assert Path(error["file"]).name == "part-0015.yaml"  # 16 x 4 MiB > 64 MiB

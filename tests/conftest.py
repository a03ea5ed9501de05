"""Shared fixtures: the real local control plane (session-wide) and per-test namespaces."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cluster.controlplane import ControlPlane, default_bin_dir

_namespace_counter = itertools.count()


@pytest.fixture(scope="session")
def cluster() -> Iterator[ControlPlane]:
    """A real control plane for the whole test session; torn down even when tests fail."""
    with tempfile.TemporaryDirectory(prefix="prodready-cp-") as directory:
        plane = ControlPlane(bin_dir=default_bin_dir(), directory=Path(directory))
        plane.start()
        try:
            yield plane
        finally:
            plane.stop()


@pytest.fixture
def namespace(cluster: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (without waiting)."""
    base = request.node.name.lower().replace("_", "-")
    name = f"{base[:40].strip('-')}-{next(_namespace_counter)}"
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)

"""The krew release of `kubectl prodready`: a reproducible archive, a current manifest, and a
launcher that runs the installed package or says how to install it.

What krew does on `kubectl krew install`, done here without the network: check the
archive's sha256 against the manifest, unpack it, and put the manifest's `bin` on PATH.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from prodready import __version__

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "plugins" / "krew" / "build.py"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("krew_build", BUILD)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def manifest(build: ModuleType) -> dict[str, Any]:
    return dict(yaml.safe_load(build.MANIFEST.read_text()))


def test_the_archive_is_reproducible_and_the_manifest_current(
    build: ModuleType, manifest: dict[str, Any]
) -> None:
    data = build.archive_bytes()
    assert data == build.archive_bytes()
    sha256 = hashlib.sha256(data).hexdigest()
    assert build.MANIFEST.read_text() == build.manifest(build.version(), sha256), (
        "plugins/krew/prodready.yaml is stale: run `make krew-archive`"
    )
    assert build.version() == __version__


def test_the_manifest_has_krews_shape(manifest: dict[str, Any]) -> None:
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    assert manifest["metadata"]["name"] == "prodready"  # `kubectl prodready`
    spec = manifest["spec"]
    assert re.fullmatch(r"v\d+\.\d+\.\d+", spec["version"])
    assert spec["homepage"].startswith("https://")
    assert 0 < len(spec["shortDescription"]) <= 50  # krew's index limit
    assert "pipx install prodready" in spec["caveats"]
    (platform,) = spec["platforms"]
    (expression,) = platform["selector"]["matchExpressions"]
    assert expression == {"key": "os", "operator": "In", "values": ["darwin", "linux"]}
    assert platform["uri"].endswith(
        f"/{spec['version']}/kubectl-prodready-{spec['version']}.tar.gz"
    )
    assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
    assert platform["bin"] == "kubectl-prodready"


def install_as_krew_does(build: ModuleType, manifest: dict[str, Any], into: Path) -> Path:
    """Check the sha256, unpack the files the manifest names; the installed `bin`."""
    data = build.archive_bytes()
    (platform,) = manifest["spec"]["platforms"]
    assert hashlib.sha256(data).hexdigest() == platform["sha256"]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        assert sorted(archive.getnames()) == sorted(f["from"] for f in platform["files"])
        archive.extractall(into, filter="data")
    binary = into / platform["bin"]
    assert os.access(binary, os.X_OK)
    return binary


def test_the_launcher_runs_the_installed_package_as_the_plugin(
    build: ModuleType, manifest: dict[str, Any], tmp_path: Path
) -> None:
    binary = install_as_krew_does(build, manifest, tmp_path)
    env = {**os.environ, "PATH": os.pathsep.join([str(VENV_BIN), "/usr/bin", "/bin"])}
    result = subprocess.run(
        [str(binary), "report", "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: kubectl prodready report")


def test_the_launcher_says_how_to_install_the_package(
    build: ModuleType, manifest: dict[str, Any], tmp_path: Path
) -> None:
    binary = install_as_krew_does(build, manifest, tmp_path / "krew")
    empty = tmp_path / "bin"  # a PATH with a shell and no Python at all
    empty.mkdir()
    for tool in ("sh",):
        (empty / tool).symlink_to(Path("/bin") / tool)
    result = subprocess.run(
        [str(binary), "report"],
        capture_output=True,
        text=True,
        env={"PATH": str(empty)},
        check=False,
    )
    assert result.returncode == 127
    assert "the prodready Python package is not installed" in result.stderr
    assert "pipx install prodready" in result.stderr


def test_build_writes_the_archive(
    build: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(build, "MANIFEST", tmp_path / "prodready.yaml")
    assert build.main([str(tmp_path / "dist")]) == 0
    (archive,) = (tmp_path / "dist").iterdir()
    assert archive.name == f"kubectl-prodready-v{__version__}.tar.gz"
    assert archive.read_bytes() == build.archive_bytes()
    committed = REPO / "plugins" / "krew" / "prodready.yaml"
    assert (tmp_path / "prodready.yaml").read_text() == committed.read_text()

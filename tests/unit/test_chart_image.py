"""The image the chart deploys, built from the Dockerfile — without a container engine.

There is no Docker daemon here, so the Dockerfile is parsed and checked for what the image
must be (multi-stage, only the venv copied into the runtime stage, numeric non-root user,
entrypoint, ports), and the builder stage's own RUN steps are executed, as written, in a
temporary directory holding exactly the files its COPY instructions copy: what comes out
must run `prodready --help` and `prodready validate`.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from prodready import __version__

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
VENV = "/opt/prodready"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions, with line continuations joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        keyword, _, arguments = stripped.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    return result


def stages(text: str) -> list[list[Instruction]]:
    """Instructions per build stage (each starts at FROM); global ARGs are dropped."""
    result: list[list[Instruction]] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


def test_base_image_is_a_pinned_slim_python(dockerfile: str) -> None:
    (default,) = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", default)
    assert [s[0].arguments for s in stages(dockerfile)] == [
        "${PYTHON_IMAGE} AS builder",
        "${PYTHON_IMAGE}",
    ]


def test_runtime_stage_has_only_the_venv_and_no_build_steps(dockerfile: str) -> None:
    runtime = stages(dockerfile)[-1]
    keywords = [i.keyword for i in runtime]
    assert "RUN" not in keywords, "no package manager or build tool runs in the final stage"
    copies = [i.arguments for i in runtime if i.keyword in {"COPY", "ADD"}]
    assert copies == [f"--from=builder {VENV} {VENV}"]


def test_runtime_stage_runs_prodready_as_a_numeric_non_root_user(dockerfile: str) -> None:
    runtime = {i.keyword: i.arguments for i in stages(dockerfile)[-1]}
    assert runtime["USER"] == "65532:65532"
    assert runtime["ENTRYPOINT"] == '["prodready"]'
    assert runtime["CMD"] == '["run"]'
    assert runtime["EXPOSE"].split() == ["8080", "9443"]
    labels = " ".join(i.arguments for i in stages(dockerfile)[-1] if i.keyword == "LABEL")
    for key in ("title", "description", "version", "licenses", "base.name"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_image_version_matches_the_package(dockerfile: str) -> None:
    (version,) = re.findall(r"^ARG VERSION=(\S+)$", dockerfile, re.M)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert version == project["version"] == __version__


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_else(dockerfile: str) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def included(path: str) -> bool:
        verdict = True
        for pattern in patterns:
            negated = pattern.startswith("!")
            body = pattern.lstrip("!").rstrip("/")
            if fnmatch.fnmatch(path, body) or path.startswith(body + "/"):
                verdict = negated
        return verdict

    builder = stages(dockerfile)[0]
    sources = [
        source.rstrip("/")
        for i in builder
        if i.keyword == "COPY"
        for source in i.arguments.split()[:-1]
    ]
    assert sources == ["pyproject.toml", "constraints.txt", "README.md", "operator"]
    assert all(included(source) for source in sources)
    for excluded in ("tests/conftest.py", ".venv/bin/python", ".git/HEAD", "charts/prodready"):
        assert not included(excluded), excluded


def test_builder_steps_produce_a_working_prodready(dockerfile: str, tmp_path: Path) -> None:
    """Run the builder stage's WORKDIR/COPY/RUN steps as written, with the image's paths
    mapped into a temporary directory, then the runtime stage's ENTRYPOINT from the venv."""
    builder = stages(dockerfile)[0]
    root = tmp_path / "image"
    venv = root / VENV.lstrip("/")
    workdir = root
    # `python` of the base image: the interpreter this test runs on, without its venv.
    shims = tmp_path / "shims"
    shims.mkdir()
    (shims / "python").symlink_to(Path(sys._base_executable))
    environment = {
        **os.environ,
        "PATH": f"{shims}{os.pathsep}{os.environ['PATH']}",
        "PIP_NO_CACHE_DIR": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    environment.pop("VIRTUAL_ENV", None)
    for instruction in builder:
        if instruction.keyword == "WORKDIR":
            workdir = root / instruction.arguments.lstrip("/")
            workdir.mkdir(parents=True, exist_ok=True)
        elif instruction.keyword == "COPY":
            *sources, destination = shlex.split(instruction.arguments)
            for source in sources:
                origin = REPO / source.rstrip("/")
                target = workdir / destination
                if origin.is_dir():
                    shutil.copytree(
                        origin,
                        target,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
                    )
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
        elif instruction.keyword == "RUN":
            command = instruction.arguments.replace(VENV, str(venv))
            result = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", command],
                cwd=workdir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert result.returncode == 0, f"RUN {command}\n{result.stdout}\n{result.stderr}"
    runtime = {**environment, "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"}
    help_text = subprocess.run(
        ["prodready", "--help"], env=runtime, capture_output=True, text=True, check=True
    ).stdout
    assert "validate" in help_text
    assert "run" in help_text
    validate = subprocess.run(
        ["prodready", "validate", str(REPO / "tests" / "fixtures" / "rules" / "compliant.yaml")],
        env=runtime,
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "0 failed" in validate.stdout
    # The venv is self-contained: the package came from the copied sources, not the repo.
    location = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import prodready; print(prodready.__file__)"],
        env=runtime,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    assert location.startswith(str(venv))

"""The peers `prodready validate` is measured against, built here from Go modules.

    python -m benchmarks.peers          build what is missing, print where each binary is

The versions are pinned once, in `PEERS`. Binaries are cached in
`${PRODREADY_CACHE:-$HOME/.cache/prodready}/peers/<name>-<version>/bin/` and reused by
every later run. Each is built with `go install PACKAGE@REF`; when the module proxy does
not serve a module (a private or restricted proxy, or a vanity import path that cannot be
resolved), it is built from a local git clone of its repository, found under
`$PRODREADY_PEER_SOURCES` (a directory of clones named `owner+name`, `owner/name` or
`name`, optionally with the git directory in `repo/`), at the pinned tag. A peer that
cannot be built is reported with the reason, and the benchmark goes on without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

BUILD_TIMEOUT_SECONDS = 1800


@dataclass(frozen=True)
class Peer:
    """A peer tool: where its Go module is, which version, and how it is run."""

    name: str
    repository: str  # owner/name on GitHub
    package: str  # the main package
    version: str  # the release tag
    go_ref: str  # what `go install PACKAGE@REF` takes (the tag, or its commit)
    subdirectory: str  # the main package's directory in the repository
    version_flag: str  # -X flag that stamps the version into the binary

    @property
    def binary_dir(self) -> Path:
        return cache_dir() / "peers" / f"{self.name}-{self.version}" / "bin"

    @property
    def binary(self) -> Path:
        return self.binary_dir / self.name


PEERS: tuple[Peer, ...] = (
    Peer(
        name="kube-score",
        repository="zegl/kube-score",
        package="github.com/zegl/kube-score/cmd/kube-score",
        version="v1.20.0",
        go_ref="v1.20.0",
        subdirectory="cmd/kube-score",
        version_flag="main.version=v1.20.0",
    ),
    Peer(
        name="kube-linter",
        repository="stackrox/kube-linter",
        package="golang.stackrox.io/kube-linter/cmd/kube-linter",
        version="v0.8.3",
        go_ref="v0.8.3",
        subdirectory="cmd/kube-linter",
        version_flag="golang.stackrox.io/kube-linter/internal/version.version=v0.8.3",
    ),
    Peer(
        name="polaris",
        repository="FairwindsOps/polaris",
        package="github.com/fairwindsops/polaris",
        version="v10.2.2",
        # Polaris tags v10.x on a module path without /v10, which Go refuses as a
        # version; the tag's commit is what `go install` can take.
        go_ref="dafa0b74fc09a9505849b0a6f8c78f1c364d0112",
        subdirectory=".",
        version_flag="main.Version=10.2.2",
    ),
)


def cache_dir() -> Path:
    """`${PRODREADY_CACHE:-$HOME/.cache/prodready}`, as tests/cluster/build.sh uses it."""
    configured = os.environ.get("PRODREADY_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "prodready"


@dataclass(frozen=True)
class Built:
    """The outcome of building one peer: its binary, or why there is none."""

    peer: Peer
    binary: Path | None
    how: str  # "cached", "go install", "git tag …", or the reason it failed


def _go_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment["GOFLAGS"] = (environment.get("GOFLAGS", "") + " -buildvcs=false").strip()
    environment.setdefault("GOTOOLCHAIN", "auto")
    return environment


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "(no output)"


def _source_clone(peer: Peer) -> Path | None:
    roots = os.environ.get("PRODREADY_PEER_SOURCES")
    if not roots:
        return None
    owner, name = peer.repository.split("/")
    for root in roots.split(os.pathsep):
        for candidate in (f"{owner}+{name}", f"{owner}/{name}", name):
            for git_dir in (Path(root) / candidate / "repo", Path(root) / candidate):
                if (git_dir / "HEAD").exists() or (git_dir / ".git").exists():
                    return git_dir
    return None


def _build_from_clone(peer: Peer, git_dir: Path) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory(prefix=f"prodready-{peer.name}-") as source:
        archive = subprocess.run(
            ["git", f"--git-dir={git_dir}", "archive", "--format=tar", peer.version],
            capture_output=True,
            check=False,
        )
        if archive.returncode != 0:
            return False, f"git archive {peer.version}: {_last_lines(archive.stderr.decode())}"
        subprocess.run(["tar", "-x", "-C", source], input=archive.stdout, check=True)
        peer.binary_dir.mkdir(parents=True, exist_ok=True)
        build = subprocess.run(
            [
                "go",
                "build",
                "-trimpath",
                f"-ldflags=-s -w -X {peer.version_flag}",
                "-o",
                str(peer.binary),
                f"./{peer.subdirectory}",
            ],
            cwd=source,
            env=_go_environment(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_SECONDS,
            check=False,
        )
        if build.returncode != 0:
            return False, f"go build: {_last_lines(build.stderr)}"
    return True, f"git tag {peer.version} of {git_dir}"


def build(peer: Peer, log: bool = True) -> Built:
    """Build `peer` into the cache unless it is there; never raises for a failed build."""
    if peer.binary.exists():
        return Built(peer, peer.binary, "cached")
    if shutil.which("go") is None:
        return Built(peer, None, "no Go toolchain on PATH")
    if log:
        print(f"[peers] building {peer.name} {peer.version} (first time only)", file=sys.stderr)
    peer.binary_dir.mkdir(parents=True, exist_ok=True)
    install = subprocess.run(
        [
            "go",
            "install",
            "-trimpath",
            f"-ldflags=-s -w -X {peer.version_flag}",
            f"{peer.package}@{peer.go_ref}",
        ],
        env={**_go_environment(), "GOBIN": str(peer.binary_dir)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_SECONDS,
        check=False,
    )
    installed = peer.binary_dir / Path(peer.package).name
    if install.returncode == 0 and installed.exists():
        if installed != peer.binary:
            installed.rename(peer.binary)
        return Built(peer, peer.binary, f"go install {peer.package}@{peer.go_ref}")
    reason = f"go install {peer.package}@{peer.go_ref} failed: {_last_lines(install.stderr)}"
    clone = _source_clone(peer)
    if clone is None:
        fallback = " (no clone under $PRODREADY_PEER_SOURCES to fall back on)"
        return Built(peer, None, reason + fallback)
    ok, how = _build_from_clone(peer, clone)
    if ok:
        return Built(peer, peer.binary, f"{how} (the module proxy refused it: {reason})")
    return Built(peer, None, f"{reason}; from the clone: {how}")


def build_all(log: bool = True) -> list[Built]:
    """Build every peer (in order), each independently of the others' failures."""
    return [build(peer, log) for peer in PEERS]


def main() -> int:
    """Build the peers and print where each is (or why it is not)."""
    failed = 0
    for built in build_all():
        where = str(built.binary) if built.binary else "NOT BUILT"
        print(f"{built.peer.name} {built.peer.version}: {where} ({built.how})")
        failed += built.binary is None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

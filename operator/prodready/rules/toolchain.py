"""Rendering Helm charts and kustomizations for `prodready validate`, with binaries from PATH.

The loader finds a directory with `Chart.yaml` or a kustomization and asks a `Toolchain`
for its rendered manifests; this module is the only one that starts a process, so the
rules and the loader stay free of subprocesses.

The tree may be hostile (a pull request's), so rendering is bounded: a deadline, an output
cap enforced by the kernel (`RLIMIT_FSIZE` on the child's output file), no network access
asked for (`helm template` fetches nothing; kustomize's remote resources are refused before
kustomize runs, see `loader`), and neither helm post-renderers nor kustomize plugins are
enabled.
"""

from __future__ import annotations

import functools
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass

RENDER_TIMEOUT_SECONDS = 120.0
MAX_RENDERED_BYTES = 32 * 1024 * 1024
# What of a tool's error output a message quotes: its last lines hold the reason.
_STDERR_TAIL = 2000


class RenderError(Exception):
    """A chart or kustomization could not be rendered; the message says why, for users."""


def _limit_output(limit: int) -> None:  # pragma: no cover - runs in the child process
    import resource

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@dataclass(frozen=True, kw_only=True, slots=True)
class Toolchain:
    """How to render: values for every chart, the deadline and output cap, where to look."""

    values_files: tuple[str, ...] = ()
    set_values: tuple[str, ...] = ()
    kube_version: str | None = None  # helm template --kube-version (None: helm's default)
    timeout: float = RENDER_TIMEOUT_SECONDS
    max_bytes: int = MAX_RENDERED_BYTES
    # PATH to search for the binaries (None: the process's PATH).
    path: str | None = None

    def _which(self, name: str) -> str | None:
        return shutil.which(name, path=self.path)

    def helm_command(self, chart: str) -> list[str]:
        """`helm template` of `chart` with the values given; RenderError if helm is missing."""
        helm = self._which("helm")
        if helm is None:
            raise RenderError(
                "a Helm chart needs the `helm` binary on PATH to be rendered (helm template); "
                "install helm, or render it yourself and pipe the output: "
                "`helm template CHART | prodready validate -`"
            )
        command = [helm, "template", chart]
        for values in self.values_files:
            command += ["--values", values]
        for assignment in self.set_values:
            command += ["--set", assignment]
        if self.kube_version:
            command += ["--kube-version", self.kube_version]
        return command

    def kustomize_command(self, directory: str) -> list[str]:
        """`kustomize build` (or `kubectl kustomize`) of `directory`; RenderError if neither."""
        kustomize = self._which("kustomize")
        if kustomize is not None:
            return [kustomize, "build", directory]
        kubectl = self._which("kubectl")
        if kubectl is not None:
            return [kubectl, "kustomize", directory]
        raise RenderError(
            "a kustomization needs `kustomize` or `kubectl` on PATH to be rendered "
            "(kustomize build / kubectl kustomize); install one, or render it yourself and "
            "pipe the output: `kustomize build DIR | prodready validate -`"
        )

    def helm(self, chart: str) -> bytes:
        """The manifests `helm template` renders from `chart`."""
        return self.run(self.helm_command(chart), what="helm template")

    def kustomize(self, directory: str) -> bytes:
        """The manifests kustomize builds from `directory`."""
        return self.run(self.kustomize_command(directory), what="kustomize build")

    def run(self, command: Sequence[str], *, what: str) -> bytes:
        """Run `command`, returning its standard output; RenderError on any failure."""
        # Imported here: a run with nothing to render starts no process.
        import subprocess
        import tempfile

        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                completed = subprocess.run(
                    list(command),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    timeout=self.timeout,
                    check=False,
                    preexec_fn=functools.partial(_limit_output, self.max_bytes)
                    if os.name == "posix"
                    else None,
                )
            except subprocess.TimeoutExpired:
                raise RenderError(f"{what} did not finish within {self.timeout:g} s") from None
            except OSError as error:
                raise RenderError(f"{what} could not start: {error.strerror}") from None
            size = out.seek(0, os.SEEK_END)
            if size >= self.max_bytes:
                raise RenderError(
                    f"{what} wrote more than {self.max_bytes // (1024 * 1024)} MiB; not read"
                )
            if completed.returncode != 0:
                err.seek(0)
                tail = err.read()[-_STDERR_TAIL:].decode("utf-8", "replace").strip()
                raise RenderError(f"{what} failed (exit {completed.returncode}): {tail}")
            out.seek(0)
            return out.read()

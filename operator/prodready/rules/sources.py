"""Charts and kustomizations in a tree: what is rendered, what is part of something else.

A directory with `Chart.yaml` is a Helm chart: its templates are not YAML, so the loader
renders the chart (`helm template`) instead of reading them. A directory with a
kustomization is rendered (`kustomize build`) unless another kustomization in the input
includes it (a base of an overlay), so each object is checked once, as deployed. Files a
kustomization lists as patches are fragments, never whole objects: they are not judged on
their own, whatever the directory they are found in.

Kustomizations are read with the safe loader and a size cap; one that asks for remote
resources (a URL, a git repository) is refused before kustomize runs, so `validate`
never fetches anything a pull request names.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import yaml

CHART_FILE = "Chart.yaml"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MAX_KUSTOMIZATION_BYTES = 1 << 20
# Directories a scan for kustomizations looks at, at most (a repository has hundreds).
MAX_SCANNED_DIRECTORIES = 20_000
# `# Source: chart/templates/x.yaml`, the comment helm writes before each document.
_HELM_SOURCE = re.compile(rb"^# Source: (.+?)\s*$", re.MULTILINE)
# What kustomize would fetch: a URL, an scp-style git address, a hosted repository path.
_REMOTE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|git@|github\.com/|gitlab\.com/|bitbucket\.org/)")
_RESOURCE_KEYS = ("resources", "bases", "components")


def chart_directory(directory: str) -> bool:
    """Whether `directory` holds a Helm chart."""
    return os.path.isfile(os.path.join(directory, CHART_FILE))


def kustomization_file(directory: str) -> str | None:
    """The kustomization file in `directory`, or None."""
    for name in KUSTOMIZATION_FILES:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    return None


@dataclass(slots=True)
class Kustomization:
    """What one kustomization file refers to (real paths) and why it cannot be rendered."""

    file: str
    directory: str
    # Directories it includes (resources, bases, components that are directories).
    includes: set[str] = field(default_factory=set)
    # Files it includes as resources: rendered through it, not read on their own.
    resources: set[str] = field(default_factory=set)
    # Files it lists as patches: fragments, never whole objects.
    patches: set[str] = field(default_factory=set)
    # Why it is not rendered (remote resources, unreadable), or None.
    problem: str | None = None


def _strings(value: object) -> list[str]:
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _patch_paths(document: Mapping[str, object]) -> list[str]:
    paths = _strings(document.get("patchesStrategicMerge"))
    for key in ("patches", "patchesJson6902"):
        entries = document.get(key)
        if isinstance(entries, list):
            for entry in entries:
                if isinstance(entry, str):
                    paths.append(entry)
                elif isinstance(entry, Mapping) and isinstance(entry.get("path"), str):
                    paths.append(str(entry["path"]))
    # An inline patch (`patchesStrategicMerge: ["apiVersion: ..."]`) is not a path.
    return [path for path in paths if "\n" not in path]


def read_kustomization(file: str) -> Kustomization:
    """Parse one kustomization file; a problem is recorded, never raised."""
    directory = os.path.dirname(os.path.realpath(file))
    found = Kustomization(file=file, directory=directory)
    try:
        with open(file, "rb") as handle:
            raw = handle.read(MAX_KUSTOMIZATION_BYTES + 1)
        if len(raw) > MAX_KUSTOMIZATION_BYTES:
            found.problem = f"larger than {MAX_KUSTOMIZATION_BYTES} bytes; not a kustomization"
            return found
        loader = yaml.SafeLoader(raw)
        try:
            node = loader.get_single_node()
            # Aliases stay shared references: only top-level lists of strings are read.
            document = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except (OSError, yaml.YAMLError, ValueError, TypeError, RecursionError) as error:
        found.problem = f"cannot read the kustomization: {error}"
        return found
    if not isinstance(document, Mapping):
        found.problem = "the kustomization is not a mapping"
        return found
    remote: list[str] = []
    for key in _RESOURCE_KEYS:
        for entry in _strings(document.get(key)):
            if _REMOTE.match(entry):
                remote.append(entry)
                continue
            target = os.path.realpath(os.path.join(directory, entry))
            if os.path.isdir(target):
                found.includes.add(target)
            else:
                found.resources.add(target)
    if remote:
        found.problem = (
            f"it lists remote resources ({', '.join(remote[:3])}), which prodready does not "
            "fetch; render it yourself and pipe the output: kustomize build DIR | "
            "prodready validate -"
        )
    for entry in _patch_paths(document):
        found.patches.add(os.path.realpath(os.path.join(directory, entry)))
    return found


@dataclass(slots=True)
class KustomizationIndex:
    """Every kustomization under the inputs, by real directory, and what they include."""

    by_directory: dict[str, Kustomization] = field(default_factory=dict)
    # Real directory -> the kustomization file that includes it.
    included_by: dict[str, str] = field(default_factory=dict)
    # Real file -> the kustomization file that lists it (as a patch / as a resource).
    patches: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)

    def add(self, kustomization: Kustomization) -> None:
        """Index one kustomization (once per directory)."""
        if kustomization.directory in self.by_directory:
            return
        self.by_directory[kustomization.directory] = kustomization
        for directory in kustomization.includes:
            self.included_by.setdefault(directory, kustomization.file)
        for patch in kustomization.patches:
            self.patches.setdefault(patch, kustomization.file)
        for resource in kustomization.resources:
            self.resources.setdefault(resource, kustomization.file)

    def add_directory(self, directory: str) -> None:
        """Index the kustomization of `directory`, if it has one."""
        real = os.path.realpath(directory)
        if real in self.by_directory:
            return
        file = kustomization_file(real)
        if file is not None:
            self.add(read_kustomization(file))

    def resource_files(self, directory: str, *, depth: int = 20) -> list[str]:
        """Every resource file the kustomization of `directory` builds from, through its
        bases and components too (real paths, in order, each once)."""
        files: list[str] = []
        seen: set[str] = set()
        pending = [(directory, 0)]
        while pending:
            current, level = pending.pop(0)
            if current in seen or level > depth:
                continue
            seen.add(current)
            self.add_directory(current)
            kustomization = self.by_directory.get(current)
            if kustomization is None:
                continue
            files.extend(sorted(f for f in kustomization.resources if f not in files))
            pending.extend((included, level + 1) for included in sorted(kustomization.includes))
        return files


def display_path(path: str) -> str:
    """`path` relative to the working directory when it is below it, else as it is."""
    relative = os.path.relpath(path)
    return path if relative.startswith(os.pardir) else relative


def scan_kustomizations(roots: Iterable[str]) -> KustomizationIndex:
    """Find and read every kustomization under `roots` (hidden directories skipped)."""
    index = KustomizationIndex()
    seen = 0
    for root in roots:
        for directory, subdirectories, files in os.walk(root):
            seen += 1
            if seen > MAX_SCANNED_DIRECTORIES:
                return index
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            if any(name in files for name in KUSTOMIZATION_FILES):
                index.add_directory(directory)
    return index


def helm_sources(rendered: bytes) -> list[tuple[int, str]]:
    """(line, template path) of each `# Source:` comment in `helm template` output."""
    return [
        (rendered.count(b"\n", 0, match.start()) + 1, match.group(1).decode("utf-8", "replace"))
        for match in _HELM_SOURCE.finditer(rendered)
    ]


def template_path(chart: str, source: str) -> str:
    """The file on disk a `# Source:` path names: `mychart/templates/x.yaml` → under `chart`.

    Helm names the chart by its `name`, not its directory, so the first part is replaced
    by the directory given; a subchart's path (`mychart/charts/db/templates/x.yaml`) stays
    inside it.
    """
    _, _, inside = source.partition("/")
    return os.path.join(chart, inside) if inside else chart

"""`prodready fix`: apply the findings' safe fixes to the manifest files, in place.

    prodready fix deploy/                 # rewrite the files
    prodready fix deploy/ --diff          # print a unified diff, write nothing

A fix is the JSON patch a finding carries (see `prodready rules`: the rules with a safe
fix); `prodready.rules.fixes` applies it to the file's text, keeping comments, key order,
quoting and indentation. Fixing repeats (at most `MAX_PASSES` times) until no finding with
a patch is left, since one fix may reveal another (a container given a securityContext is
then checked field by field); a second `fix` changes nothing.

What cannot be fixed is said, with the reason (a chart's template, a value behind a Secret
reference, standard input); a finding without a safe fix is left to `validate`.

Exit codes: 0 — done (or nothing to do); 1 — with `--diff`, there is something to change;
2 — a usage or input error, or a file that could not be written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TextIO

from prodready.rules.command import (
    EXIT_ERROR,
    EXIT_FINDINGS,
    EXIT_OK,
    add_rule_arguments,
    resolve_config,
    toolchain_of,
    without_helm_tests,
)
from prodready.rules.config import RulesConfig
from prodready.rules.engine import evaluate
from prodready.rules.fixes import FilePlan, FixTarget, plan_file
from prodready.rules.loader import STDIN_NAME, LoadedObject, LoadResult, load_bytes, load_inputs
from prodready.rules.model import Environment, Finding

MAX_PASSES = 3
_BOM = "\ufeff"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `fix`'s arguments."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest files or directories (searched recursively for .yaml/.yml)",
    )
    parser.add_argument(
        "--diff", action="store_true", help="print a unified diff instead of writing the files"
    )
    add_rule_arguments(parser)
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors and the diff")


@dataclass(slots=True)
class FixRun:
    """What a `fix` run did: new texts by file, what was fixed and refused."""

    texts: dict[str, str] = field(default_factory=dict)
    originals: dict[str, str] = field(default_factory=dict)
    fixed: dict[tuple[str, str, str], tuple[str, Finding]] = field(default_factory=dict)
    refused: dict[tuple[str, str, str], tuple[str, Finding, str]] = field(default_factory=dict)
    reformatted: set[tuple[str, int]] = field(default_factory=set)

    def fix(self, file: str, finding: Finding) -> None:
        """Record one fix (once per file, rule, object and container)."""
        self.fixed.setdefault(_key(file, finding), (file, finding))
        self.refused.pop(_key(file, finding), None)

    def refuse(self, file: str, finding: Finding, reason: str) -> None:
        """Record one refusal, unless it was fixed (in another pass)."""
        if _key(file, finding) not in self.fixed:
            self.refused.setdefault(_key(file, finding), (file, finding, reason))


def _key(file: str, finding: Finding) -> tuple[str, str, str]:
    return (file, finding.rule_id, f"{finding.object.display()}/{finding.container or ''}")


def _why_not_in_place(source: LoadedObject) -> str | None:
    if source.rendered_by == "kustomize build":
        return (
            "built by kustomize: change the resource or add a patch in the overlay; prodready "
            "does not edit what several overlays share"
        )
    if source.rendered_by is not None:
        return (
            f"rendered by {source.rendered_by}: change the template or its values; prodready "
            "does not edit templates"
        )
    if source.file == STDIN_NAME:
        return "read from standard input: there is no file to change"
    if os.path.islink(source.file):
        return "a symbolic link: fix the file it points to"
    if source.file.lower().endswith(".json"):
        return "a JSON file: prodready fixes YAML files only"
    return None


def _targets(
    objects: list[LoadedObject], config: RulesConfig, environment: str | None, run: FixRun
) -> dict[str, list[FixTarget]]:
    """The fixable findings of `objects`, by file; refusals are recorded in `run`."""
    reports = evaluate([item.obj for item in objects], config=config, environment=environment)
    by_file: dict[str, list[FixTarget]] = {}
    for report in reports:
        source = objects[report.input_index]
        findings = tuple(
            f for f in report.findings if f.failed and f.patch and f.object == report.object
        )
        if not findings:
            continue
        reason = _why_not_in_place(source)
        if reason is not None:
            for finding in findings:
                run.refuse(source.file, finding, reason)
            continue
        by_file.setdefault(source.file, []).append(
            FixTarget(line=source.line, object=report.object, findings=findings)
        )
    return by_file


def _reload(objects: list[LoadedObject], changed: dict[str, str]) -> list[LoadedObject]:
    kept = [item for item in objects if item.file not in changed]
    for file, text in changed.items():
        result = LoadResult()
        load_bytes(text.encode(), file, result)
        kept.extend(result.objects)
    return kept


def fix_objects(
    objects: list[LoadedObject],
    texts: dict[str, bytes],
    config: RulesConfig,
    environment: str | None,
) -> FixRun:
    """Plan every fix for `objects` (whose files' bytes are `texts`); writes nothing."""
    run = FixRun()
    for _ in range(MAX_PASSES):
        by_file = _targets(objects, config, environment, run)
        changed: dict[str, str] = {}
        for file, targets in by_file.items():
            if file not in run.texts:
                original = texts[file].decode("utf-8")
                run.originals[file] = original
                run.texts[file] = original
            text = run.texts[file]
            bom = text.startswith(_BOM)
            # ruamel.yaml writes \n: plan on \n and give the file its own line ends back.
            crlf = "\r\n" in text
            plain = (
                text.removeprefix(_BOM).replace("\r\n", "\n") if crlf else text.removeprefix(_BOM)
            )
            plan: FilePlan = plan_file(plain, targets)
            for finding in plan.fixed:
                run.fix(file, finding)
            for finding, reason in plan.refused:
                run.refuse(file, finding, reason)
            run.reformatted.update((file, line) for line in plan.reformatted)
            if plan.changed:
                fixed = plan.text.replace("\n", "\r\n") if crlf else plan.text
                changed[file] = (_BOM if bom else "") + fixed
                run.texts[file] = changed[file]
        if not changed:
            break
        objects = _reload(objects, changed)
    return run


def unified_diff(run: FixRun) -> str:
    """Every changed file as a unified diff (`a/` and `b/` prefixes, like git)."""
    parts: list[str] = []
    for file, text in sorted(run.texts.items()):
        original = run.originals[file]
        if text == original:
            continue
        parts.extend(
            difflib.unified_diff(
                original.splitlines(keepends=True),
                text.splitlines(keepends=True),
                fromfile=f"a/{file}",
                tofile=f"b/{file}",
            )
        )
    return "".join(parts)


def write_file(path: str, text: str) -> None:
    """Replace `path`'s content atomically, keeping its permissions."""
    directory = os.path.dirname(os.path.abspath(path))
    mode = os.stat(path).st_mode & 0o7777
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".prodready-fix-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def _report(run: FixRun, err: TextIO, *, quiet: bool, wrote: bool) -> None:
    for file, finding, reason in run.refused.values():
        print(
            f"{file}: {finding.rule_id} {finding.object.display()}: not fixed: {reason}",
            file=err,
        )
    if quiet:
        return
    for file, line in sorted(run.reformatted):
        print(
            f"note: {file}:{line}: the document's layout could not be kept exactly",
            file=err,
        )
    files = {file for file, text in run.texts.items() if text != run.originals[file]}
    verb = "fixed" if wrote else "would fix"
    print(
        f"{verb} {len(run.fixed)} finding(s) in {len(files)} file(s); "
        f"{len(run.refused)} not fixable in place",
        file=err,
    )


def _paths_refused(paths: Iterable[str], err: TextIO) -> bool:
    if "-" in paths:
        print("error: fix changes files; standard input (-) cannot be fixed", file=err)
        return True
    return False


def run(args: argparse.Namespace) -> int:
    """Run `fix`; returns the exit code."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    if _paths_refused(args.paths, err):
        return EXIT_ERROR
    config = resolve_config(args, err)
    if config is None:
        return EXIT_ERROR
    loaded = load_inputs(
        list(args.paths), sys.stdin.buffer, toolchain=toolchain_of(args), exclude=args.exclude
    )
    for problem in loaded.errors:
        print(f"error: {problem}", file=err)
    if loaded.errors:
        return EXIT_ERROR
    objects, _ = without_helm_tests(loaded)
    environment = Environment(args.env).value if args.env else None
    result = fix_objects(objects, loaded.texts, config, environment)
    if args.diff:
        diff = unified_diff(result)
        out.write(diff)
        out.flush()
        _report(result, err, quiet=args.quiet, wrote=False)
        return EXIT_FINDINGS if diff else EXIT_OK
    for file, text in sorted(result.texts.items()):
        if text == result.originals[file]:
            continue
        try:
            write_file(file, text)
        except OSError as error:
            print(f"error: {file}: cannot write: {error.strerror}", file=err)
            return EXIT_ERROR
    _report(result, err, quiet=args.quiet, wrote=True)
    return EXIT_OK

"""`prodready validate`: check manifests against the checklist, offline, e.g. in CI.

    helm template chart/ | prodready validate - --env prod -o sarif > prodready.sarif

Exit codes: 0 — nothing fails at the `--fail-on` level; 1 — something does; 2 — a usage
error, an unusable `--config`, or any input error (unreadable or malformed file, refused
input). Input errors win over findings: the other inputs are still checked and reported,
but a run that could not read all of its input must not pass a CI gate. Input past the
run's limits (`--max-input-mib`, `--max-objects`) is the exception: nothing is checked.

The tree may be hostile (a pull request's): only regular files are read (a FIFO or a
device is an input error, never a hang), and symbolic links that lead out of the given
directories are skipped with a note unless `--follow-symlinks`.

The summary line (and notes about ignored objects and input errors) goes to stderr for
the machine formats, so stdout stays parseable; the table prints its summary on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from prodready.rules.config import ConfigError, RulesConfig, load_config
from prodready.rules.context import ObjectRole, classify, kind_of
from prodready.rules.engine import evaluate
from prodready.rules.formats import (
    Run,
    render_admission,
    render_json,
    render_junit,
    render_sarif,
    render_table,
    summary_line,
)
from prodready.rules.loader import MAX_OBJECTS, MAX_TOTAL_BYTES, MIB, InputLimits, load_inputs
from prodready.rules.model import Environment, Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
OUTPUTS = ("table", "json", "sarif", "junit", "admission", "html")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `validate`'s arguments."""
    parser.add_argument(
        "paths",
        nargs="+",
        metavar="PATH",
        help="manifest files, directories (searched recursively for .yaml/.yml/.json) "
        "or - for standard input",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS,
        default="table",
        help="output format (default: table)",
    )
    parser.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        help="environment for objects that declare none (default: prod, the strictest)",
    )
    parser.add_argument("--config", metavar="FILE", help="rules configuration file (YAML)")
    parser.add_argument(
        "--fail-on",
        choices=[s.value for s in Severity],
        default=Severity.ERROR.value,
        help="exit 1 when a rule of this severity or above fails (default: error)",
    )
    parser.add_argument("--show-passed", action="store_true", help="table: list passing checks too")
    parser.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symbolic links that lead out of the given directories (default: skip "
        "them with a note)",
    )
    parser.add_argument(
        "--max-input-mib",
        type=_positive("--max-input-mib"),
        default=MAX_TOTAL_BYTES // MIB,
        metavar="MIB",
        help="read at most this many MiB across all inputs; past it nothing is checked "
        f"(default: {MAX_TOTAL_BYTES // MIB})",
    )
    parser.add_argument(
        "--max-objects",
        type=_positive("--max-objects"),
        default=MAX_OBJECTS,
        metavar="N",
        help="read at most this many objects across all inputs; past it nothing is checked "
        f"(default: {MAX_OBJECTS})",
    )
    parser.add_argument(
        "--warn-only",
        action="store_true",
        help="admission: answer as a webhook that warns instead of denying",
    )


def _positive(flag: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a whole number above 0: {text!r}")
        return value

    return parse


def _use_colour(stream: TextIO) -> bool:
    # https://no-color.org: any non-empty NO_COLOR disables colour.
    return stream.isatty() and not os.environ.get("NO_COLOR")


def _ignored_note(kinds: Counter[str]) -> str:
    listed = ", ".join(f"{kind} ({n})" for kind, n in sorted(kinds.items()))
    total = sum(kinds.values())
    return f"note: ignored {total} object(s) of kinds that are not checked: {listed}"


def run(args: argparse.Namespace) -> int:
    """Run `validate`; returns the exit code."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    config = RulesConfig()
    if args.config:
        try:
            config = load_config(args.config)
        except ConfigError as error:
            print(f"error: {error}", file=err)
            return EXIT_ERROR
    limits = InputLimits(max_bytes=args.max_input_mib * MIB, max_objects=args.max_objects)
    loaded = load_inputs(
        list(args.paths), sys.stdin.buffer, limits=limits, follow_symlinks=args.follow_symlinks
    )
    for note in loaded.notes:
        print(f"note: {note}", file=err)
    ignored: Counter[str] = Counter()
    for item in loaded.objects:
        if classify(item.obj) is ObjectRole.IGNORED:
            kind = kind_of(item.obj)
            ignored["Pod (owned by a controller)" if kind == "Pod" else kind] += 1
    if ignored:
        print(_ignored_note(ignored), file=err)
    for problem in loaded.errors:
        print(f"error: {problem}", file=err)
    try:
        reports = evaluate(
            [item.obj for item in loaded.objects], config=config, environment=args.env
        )
    except Exception as bug:  # not a user error: say so, without a traceback
        print(f"error: internal error while checking: {type(bug).__name__}: {bug}", file=err)
        return EXIT_ERROR
    result = Run(reports, loaded.objects, loaded.errors, Severity(args.fail_on))
    if not reports and not loaded.over_limit:
        print("note: no workloads found in the input", file=err)
    output = args.output
    if output == "table":
        out.write(render_table(result, colour=_use_colour(out), show_passed=args.show_passed))
        print(summary_line(result), file=out)
    else:
        if output == "json":
            out.write(render_json(result))
        elif output == "sarif":
            out.write(render_sarif(result))
        elif output == "junit":
            out.write(render_junit(result))
        elif output == "html":
            from prodready.rules.pages import render_html  # jinja2 only when asked for

            out.write(render_html(result))
        else:
            out.write(render_admission(result, enforce=not args.warn_only))
        print(summary_line(result), file=err)
    out.flush()
    if loaded.errors:
        return EXIT_ERROR
    return EXIT_FINDINGS if result.failed else EXIT_OK

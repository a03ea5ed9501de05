"""`prodready validate`: check manifests against the checklist, offline, e.g. in CI.

    prodready validate deploy/ charts/shop -f charts/shop/values-prod.yaml -o sarif
    helm template chart/ | prodready validate - --env prod -o sarif > prodready.sarif

A directory with `Chart.yaml` is rendered with `helm template` (`--values`, `--set`), one
with a kustomization with `kustomize build` or `kubectl kustomize` (binaries from PATH);
see `prodready.rules.sources`. Without `--config`, the first `.prodready.yaml` found from
the working directory upward is used.

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
import dataclasses
import io
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from prodready.rules.config import ConfigError, RulesConfig, load_config
from prodready.rules.engine import evaluate
from prodready.rules.limits import LIMITS_RULE_ID
from prodready.rules.loader import (
    MAX_OBJECTS,
    MAX_TOTAL_BYTES,
    MIB,
    InputError,
    InputLimits,
    LoadedObject,
    LoadResult,
    load_inputs,
    plan_inputs,
    without_helm_tests as loader_without_helm_tests,
)
from prodready.rules.model import Environment, Severity
from prodready.rules.registry import RULES
from prodready.rules.toolchain import Toolchain

if TYPE_CHECKING:
    from prodready.rules.formats import Run, Totals
    from prodready.rules.parallel import Job, SharedRun
    from prodready.rules.policy import PolicySet

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
CONFIG_FILES = (".prodready.yaml", ".prodready.yml")
OUTPUTS = ("table", "json", "sarif", "junit", "admission", "html")
# Outputs several processes render (`prodready.rules.parallel.OUTPUTS`), and the input
# below which one process is faster (benchmarks/RESULTS.md: validate, one and all cores).
PARALLEL_OUTPUTS = ("json", "table")
PARALLEL_MIN_BYTES = 256 * 1024


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments `validate` and `fix` share: environment, configuration, selection."""
    parser.add_argument(
        "--env",
        choices=[e.value for e in Environment],
        help="environment for objects that declare none (default: prod, the strictest)",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="rules configuration file (YAML; default: the first .prodready.yaml found from "
        "the working directory upward)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="RULE",
        help="check only these rules: a rule ID (PR-HC-001), an ID prefix (PR-HC) or a "
        "checklist section (3); repeatable or comma-separated",
    )
    parser.add_argument(
        "--disable",
        action="append",
        default=[],
        metavar="RULE",
        help="do not check these rules (IDs, prefixes or sections, as --only)",
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files and directories matching this shell glob (e.g. 'tests/*'); repeatable",
    )
    parser.add_argument(
        "-f",
        "--values",
        action="append",
        default=[],
        metavar="FILE",
        help="Helm charts: a values file for helm template; repeatable",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="set_values",
        help="Helm charts: a value for helm template (as helm --set); repeatable",
    )
    parser.add_argument(
        "--kube-version",
        metavar="VERSION",
        help="Helm charts: the Kubernetes version their templates and kubeVersion see (as "
        "helm template --kube-version; default: helm's own, which a helm built from source "
        "gives as v1.20)",
    )


def add_verdict_arguments(parser: argparse.ArgumentParser) -> None:
    """`--fail-on` and `--show-passed`: what fails the run and what the table lists (`validate`
    and `report` alike)."""
    parser.add_argument(
        "--fail-on",
        choices=[s.value for s in Severity],
        default=Severity.ERROR.value,
        help="exit 1 when a rule of this severity or above fails (default: error)",
    )
    parser.add_argument("--show-passed", action="store_true", help="table: list passing checks too")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `validate`'s arguments."""
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="ReadinessPolicy and ReadinessException objects (one YAML file, several "
        "documents): check as the cluster does, each workload under the policy that "
        "selects it (Namespace objects in the input give the namespace labels)",
    )
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
    add_rule_arguments(parser)
    parser.add_argument(
        "--min-score",
        type=_score,
        metavar="N",
        help="exit 1 when the run's score (0-100) is below N, whatever fails",
    )
    parser.add_argument(
        "--color",
        "--colour",
        choices=("auto", "always", "never"),
        default="auto",
        help="table: colour the output (default: auto, when a terminal and NO_COLOR unset)",
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print findings and errors only: no notes, no summary line",
    )
    add_verdict_arguments(parser)
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
        "-j",
        "--jobs",
        type=_positive("--jobs"),
        default=None,
        metavar="N",
        help="processes that read and check a large input of files (-o json or table); "
        "default: the CPUs this process may use. 1: one process",
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


def _score(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 100:
        raise argparse.ArgumentTypeError(f"--min-score must be a number from 0 to 100: {text!r}")
    return value


def _use_colour(stream: TextIO, choice: str = "auto") -> bool:
    if choice != "auto":
        return choice == "always"
    # https://no-color.org: any non-empty NO_COLOR disables colour.
    return stream.isatty() and not os.environ.get("NO_COLOR")


class SelectionError(ValueError):
    """`--only`/`--disable` named something that is no rule, prefix or section."""


def select_rules(
    selectors: list[str],
    *,
    flag: str,
    custom: Iterable[str] = (),
    lenient: bool = False,
) -> set[str]:
    """The rule IDs that `selectors` (IDs, ID prefixes, section numbers) name, among the
    checklist's and the `custom` rule IDs of a `--policy` file. `lenient`: a selector that
    names none is left for a later call that knows the custom rules."""
    chosen: set[str] = set()
    rules = [(rule.id, rule.section) for rule in RULES] + [(rule_id, "") for rule_id in custom]
    for raw in selectors:
        for selector in filter(None, (part.strip() for part in raw.split(","))):
            wanted = selector.upper()
            matched = {
                rule_id
                for rule_id, section in rules
                if rule_id == wanted
                or rule_id.startswith(wanted.rstrip("-") + "-")
                or selector in (part.strip() for part in section.split(","))
            }
            if not matched and lenient:
                continue
            if not matched:
                raise SelectionError(
                    f"{flag} {selector}: no rule has this ID, ID prefix or section "
                    "(see `prodready rules`)"
                )
            chosen |= matched
    return chosen


def find_config(start: Path) -> Path | None:
    """The first `.prodready.yaml` (or `.yml`) in `start` or a directory above it."""
    for directory in (start, *start.parents):
        for name in CONFIG_FILES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def resolve_config(args: argparse.Namespace, err: TextIO) -> RulesConfig | None:
    """The rules configuration: `--config`, else one found upward, then the selection.

    Prints the problem and returns None when it cannot be used.
    """
    path: str | Path | None = args.config
    if path is None:
        path = find_config(Path.cwd())
        if path is not None and not getattr(args, "quiet", False):
            print(f"note: using the configuration in {path}", file=err)
    try:
        config = load_config(path) if path is not None else RulesConfig()
        # With --policy, a selector may name one of its custom rules (checked there).
        lenient = bool(getattr(args, "policy", None))
        only = select_rules(args.only, flag="--only", lenient=lenient)
        disable = select_rules(args.disable, flag="--disable", lenient=lenient)
    except (ConfigError, SelectionError) as error:
        print(f"error: {error}", file=err)
        return None
    if only or disable:
        off = set(config.disabled) | disable
        if only:
            off |= {rule.id for rule in RULES if rule.id not in only}
        # The rule that bounds the work cannot be turned off (see rules.limits).
        off.discard(LIMITS_RULE_ID)
        config = dataclasses.replace(config, disabled=sorted(off))
    return config


def toolchain_of(args: argparse.Namespace) -> Toolchain:
    """How charts are rendered for this run (values files and --set)."""
    return Toolchain(
        values_files=tuple(args.values),
        set_values=tuple(args.set_values),
        kube_version=args.kube_version,
    )


def without_helm_tests(loaded: LoadResult) -> tuple[list[LoadedObject], int]:
    """The loaded objects but Helm test hooks, and how many those were (see
    `prodready.rules.loader.without_helm_tests`)."""
    return loader_without_helm_tests(loaded.objects)


def _ignored_note(kinds: Counter[str]) -> str:
    listed = ", ".join(f"{kind} ({n})" for kind, n in sorted(kinds.items()))
    total = sum(kinds.values())
    return f"note: ignored {total} object(s) of kinds that are not checked: {listed}"


def _policies(
    args: argparse.Namespace, config: RulesConfig, err: TextIO
) -> tuple[bool, PolicySet | None]:
    """(usable, `--policy FILE` as a PolicySet or None without the flag); prints problems."""
    if not args.policy:
        return True, None
    if args.config:
        print(
            "error: --config and --policy both give the rules' settings; use --policy (a "
            "ReadinessPolicy says everything a --config file says)",
            file=err,
        )
        return False, None
    from prodready.rules.policy import PolicyError, default_policy, load_policy_file, with_disabled

    try:
        policies = load_policy_file(args.policy, default=default_policy(config))
    except PolicyError as error:
        print(f"error: {error}", file=err)
        return False, None
    custom = sorted({rule.id for policy in policies.policies for rule in policy.custom_rules})
    try:
        only = select_rules(args.only, flag="--only", custom=custom)
        off = select_rules(args.disable, flag="--disable", custom=custom)
    except SelectionError as error:
        print(f"error: {error}", file=err)
        return False, None
    if only:
        off |= {
            rule_id for rule_id in (*(rule.id for rule in RULES), *custom) if rule_id not in only
        }
    return True, with_disabled(policies, off)


def run(args: argparse.Namespace) -> int:
    """Run `validate`; returns the exit code."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    config = resolve_config(args, err)
    if config is None:
        return EXIT_ERROR
    limits = InputLimits(max_bytes=args.max_input_mib * MIB, max_objects=args.max_objects)
    if args.jobs is None:
        from prodready.rules.parallel import available_cpus

        args.jobs = available_cpus()
    if args.jobs > 1 and args.output in PARALLEL_OUTPUTS:
        code = _run_shared(args, config, limits, out, err)
        if code is not None:
            return code
    loaded = load_inputs(
        list(args.paths),
        sys.stdin.buffer,
        limits=limits,
        follow_symlinks=args.follow_symlinks,
        toolchain=toolchain_of(args),
        exclude=args.exclude,
    )
    objects, helm_tests = without_helm_tests(loaded)
    _print_read(
        args,
        errors=loaded.errors,
        notes=loaded.notes,
        helm_tests=helm_tests,
        ignored=_ignored_kinds(objects),
        err=err,
    )
    usable, policies = _policies(args, config, err)
    if not usable:
        return EXIT_ERROR
    if args.output != "sarif":
        loaded.texts.clear()  # only SARIF points into the files' text
    try:
        reports = evaluate(
            [item.obj for item in objects],
            config=None if policies is not None else config,
            policies=policies,
            environment=args.env,
        )
    except Exception as bug:  # not a user error: say so, without a traceback
        print(f"error: internal error while checking: {type(bug).__name__}: {bug}", file=err)
        return EXIT_ERROR
    from prodready.rules.formats import Run

    locator = None
    if args.output == "sarif":
        from prodready.rules.locate import Locator

        locator = Locator(loaded.texts)
    result = Run(reports, objects, loaded.errors, Severity(args.fail_on), locator=locator)
    del objects
    loaded.objects.clear()
    if not reports and not loaded.over_limit and not args.quiet:
        print("note: no workloads found in the input", file=err)
    _write_output(args, result, out, err)
    return _exit_code(args, loaded.errors, result.totals, err)


def _ignored_kinds(objects: list[LoadedObject]) -> Counter[str]:
    from prodready.rules.parallel import ignored_kinds

    return ignored_kinds(objects)


def _print_read(
    args: argparse.Namespace,
    *,
    errors: list[InputError],
    notes: list[str],
    helm_tests: int,
    ignored: Counter[str],
    err: TextIO,
) -> None:
    """What reading said: notes (unless `--quiet`), objects not checked, input errors."""
    if helm_tests:
        notes.append(
            f"skipped {helm_tests} Helm test hook(s) (helm.sh/hook: test): run by "
            "`helm test`, not workloads"
        )
    if args.quiet:
        notes.clear()
    for note in notes:
        print(f"note: {note}", file=err)
    if ignored and not args.quiet:
        print(_ignored_note(ignored), file=err)
    for problem in errors:
        print(f"error: {problem}", file=err)


def _write_output(args: argparse.Namespace, result: Run, out: TextIO, err: TextIO) -> None:
    """The chosen format on `out`; the summary line after it (stderr but for the table)."""
    from prodready.rules import formats

    output = args.output
    if output == "table":
        colour = _use_colour(out, args.color)
        out.write(formats.render_table(result, colour=colour, show_passed=args.show_passed))
    elif output == "json":
        # Written piece by piece: the whole document of a large run is hundreds of MiB of
        # dicts and text at once.
        for chunk in formats.iter_json(result):
            out.write(chunk)
    elif output == "sarif":
        out.write(formats.render_sarif(result))
    elif output == "junit":
        out.write(formats.render_junit(result))
    elif output == "html":
        from prodready.rules.pages import render_html  # jinja2 only when asked for

        out.write(render_html(result))
    else:
        out.write(formats.render_admission(result, enforce=not args.warn_only))
    _write_summary(args, formats.summary_line(result), out, err)


def _write_summary(args: argparse.Namespace, line: str, out: TextIO, err: TextIO) -> None:
    if not args.quiet:
        print(line, file=out if args.output == "table" else err)
    out.flush()


def _exit_code(
    args: argparse.Namespace, errors: list[InputError], totals: Totals, err: TextIO
) -> int:
    if errors:
        return EXIT_ERROR
    if args.min_score is not None and totals.score < args.min_score:
        print(f"error: score {totals.score:g}% is below --min-score {args.min_score:g}", file=err)
        return EXIT_FINDINGS
    return EXIT_FINDINGS if totals.failed else EXIT_OK


def _run_shared(
    args: argparse.Namespace, config: RulesConfig, limits: InputLimits, out: TextIO, err: TextIO
) -> int | None:
    """`run` over several processes (`prodready.rules.parallel`) when the input is only
    files and large enough to gain from it; None: run it in one process instead."""
    plan = plan_inputs(
        list(args.paths),
        follow_symlinks=args.follow_symlinks,
        toolchain=toolchain_of(args),
        exclude=args.exclude,
    )
    if (
        plan is None
        or len(plan.files) < 2
        or not PARALLEL_MIN_BYTES <= plan.size <= limits.max_bytes
    ):
        return None  # past the byte limit: one process says where it stopped
    # The policy file is read before the input here (workers inherit it); if it cannot be
    # used, one process says so after the input's notes, as it always has.
    quiet_err = io.StringIO()
    usable, policies = _policies(args, config, quiet_err)
    if not usable:
        return None
    from datetime import UTC, datetime

    from prodready.rules.parallel import CheckError, Job, SharedRun

    job = Job(
        limits=limits,
        config=None if policies is not None else config,
        policies=policies,
        environment=args.env,
        now=datetime.now(UTC),
        fail_on=Severity(args.fail_on),
        output=args.output,
        colour=_use_colour(out, args.color),
        show_passed=args.show_passed,
    )
    out.flush()
    err.flush()
    try:
        with SharedRun(plan, job, args.jobs) as shared:
            return _check_shared(args, shared, job, out, err)
    except CheckError as bug:
        print(f"error: internal error while checking: {bug}", file=err)
        return EXIT_ERROR


def _check_shared(
    args: argparse.Namespace, shared: SharedRun, job: Job, out: TextIO, err: TextIO
) -> int | None:
    from prodready.rules import formats

    read = shared.read()
    if read is None:
        shared.stop()
        return None  # past a limit: one process says where it stopped
    _print_read(
        args,
        errors=read.errors,
        notes=read.notes,
        helm_tests=read.helm_tests,
        ignored=read.ignored,
        err=err,
    )
    totals = shared.check()
    if not totals.objects and not args.quiet:
        print("note: no workloads found in the input", file=err)
    if args.output == "json":
        summary = formats.summary_dict(totals, job.fail_on)
        for chunk in formats.json_chunks(summary, shared.text(), read.errors):
            out.write(chunk)
    else:
        for text in shared.text():
            out.write(text)
    _write_summary(args, formats.summary_text(totals, read.errors), out, err)
    return _exit_code(args, read.errors, totals, err)

"""`make bench`: every benchmark, then the slow tests (faults, fuzz, VAP differential,
sharding), then a summary table with a row per goal, its target and whether it was met.

    python -m benchmarks                       # everything (about 1.5 hours on 2 cores)
    python -m benchmarks --only operator --only scale --services 200 --scale-services 600
    python -m benchmarks --only validate --sizes 1000
    python -m benchmarks --services 200 --scale-services 2000 --no-slow-tests --no-write
    python -m benchmarks --only bounded --no-write    # one very large object, seconds
    python -m benchmarks --only pages --no-write      # the dashboard and -o html, minutes
    python -m benchmarks --only quality --no-write    # rules on real manifests (QUALITY.md)
    python -m benchmarks --only custom-rules --no-write   # 10 CEL rules on the corpus
    python -m benchmarks --only scale --no-write      # 10,000 services (budget 40 min)

Figures are measured in this run, on this machine, and written into the generated block
of benchmarks/RESULTS.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import (
    bounded,
    custom_rules,
    operator,
    pages,
    quality,
    report,
    scale,
    validate,
    vap,
)
from benchmarks.report import Run, SlowTests

REPO = Path(__file__).resolve().parents[1]
SLOW_TESTS = (
    "tests/e2e/test_faults.py",
    "tests/e2e/test_fuzz.py",
    "tests/e2e/test_vap_differential.py",
    "tests/e2e/test_sharding.py",
)
# The lines of the slow tests' output that become details (and summary rows) of RESULTS.md.
DETAIL_PREFIXES = (
    "renderer, ",
    "apiserver, ",
    "killed while",
    "FAILED",
    "VAP differ",
    "sharding, ",
)


def log(line: str) -> None:
    print(line, flush=True)


def run_slow_tests(timeout: float) -> SlowTests:
    """`pytest -m slow` on the fault, fuzz, VAP differential and sharding tests, as a
    subprocess."""
    log("slow tests: pytest -m slow " + " ".join(SLOW_TESTS))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-m",
                "slow",
                "-q",
                "-s",
                "-p",
                "no:cacheprovider",
                *SLOW_TESTS,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        output = result.stdout + result.stderr
        passed = result.returncode == 0
    except subprocess.TimeoutExpired as expired:
        output = str(expired.stdout or "") + f"\n(stopped after {timeout:.0f} s)"
        passed = False
    seconds = time.monotonic() - started
    lines = output.splitlines()
    summary = next(
        (line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)),
        "no result",
    )
    details = [line.strip() for line in lines if line.startswith(DETAIL_PREFIXES)]
    for line in details:
        log(f"  {line[:300]}")
    log(f"  {summary} in {seconds:.0f} s")
    if not passed:
        log("\n".join(lines[-60:]))
    return SlowTests(passed, seconds, summary, details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        choices=(
            "validate",
            "bounded",
            "pages",
            "quality",
            "custom-rules",
            "operator",
            "scale",
            "vap",
            "slow-tests",
        ),
        action="append",
        default=[],
    )
    parser.add_argument(
        "--sizes",
        default="1000,10000",
        help="validate corpus sizes, in workloads (comma-separated; default 1000,10000)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool when fast")
    parser.add_argument(
        "--peer-timeout", type=float, default=240, help="seconds before a peer run is stopped"
    )
    parser.add_argument("--services", type=int, default=1000, help="ProductionServices")
    parser.add_argument(
        "--scale-services",
        type=int,
        default=10000,
        help="ProductionServices of the scale phase (default 10000)",
    )
    parser.add_argument("--no-slow-tests", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--json", metavar="FILE", help="also write every figure as JSON")
    args = parser.parse_args(argv)
    # SIGTERM (a timeout, Ctrl-C in make) unwinds like an exception, so every control
    # plane and operator started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    wanted = set(args.only) or {
        "validate",
        "bounded",
        "pages",
        "quality",
        "custom-rules",
        "operator",
        "scale",
        "vap",
        "slow-tests",
    }
    if args.no_slow_tests:
        wanted.discard("slow-tests")
    os.environ.setdefault("PRODREADY_BIN_DIR", str(REPO / ".local" / "bin"))

    started = time.monotonic()
    validate_results = operator_results = slow = bounded_results = pages_results = None
    if "validate" in wanted:
        sizes = [int(size) for size in args.sizes.split(",") if size]
        validate_results = validate.run(
            sizes, repeat=args.repeat, peer_timeout=args.peer_timeout, log=log
        )
    if "bounded" in wanted:
        log("bounded work: one very large object")
        bounded_results = bounded.run(log, repeat=max(args.repeat, 3))
    if "pages" in wanted:
        pages_results = pages.run(log, repeat=args.repeat)
    quality_crashes = 0
    if "quality" in wanted:
        log("rule quality: real public manifests from local mirrors (benchmarks/QUALITY.md)")
        quality_summary = quality.run(log)
        quality_crashes = len(quality_summary["crashes"])
        log(quality.render(quality_summary))
    custom_rules_results = None
    if "custom-rules" in wanted:
        custom_rules_results = custom_rules.run(log)
    if "operator" in wanted:
        operator_results = operator.run(args.services, log)
    scale_results = None
    if "scale" in wanted:
        scale_results = scale.run(args.scale_services, log)
    vap_results = None
    if "vap" in wanted:
        log("admission through the generated VAP vs the webhook (benchmarks/vap.py)")
        vap_results = vap.run(log)
    if "slow-tests" in wanted:
        slow = run_slow_tests(timeout=2400)
    run = Run(
        validate_results,
        operator_results,
        slow,
        time.monotonic() - started,
        bounded_results,
        pages_results,
        custom_rules_results,
        vap_results,
        scale_results,
    )

    log("")
    log(report.table(run))
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.no_write:
        path = REPO / "benchmarks" / "RESULTS.md"
        report.write_results(path, run, command.strip())
        log(f"\nwritten: {path.relative_to(REPO)}")
    if args.json:
        Path(args.json).write_text(json.dumps(report.as_json(run), indent=2, default=str))
    failed = (
        (slow is not None and not slow.passed)
        or bool(operator_results and operator_results.problems)
        or bool(vap_results and vap_results.problems)
        or bool(scale_results and scale_results.problems)
        or quality_crashes > 0
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

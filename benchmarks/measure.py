"""Running a command as a measured child process: wall time, CPU time and peak RSS."""

from __future__ import annotations

import math
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Measurement:
    """One run of a command."""

    seconds: float
    cpu_seconds: float
    peak_rss_mib: float
    exit_code: int | None  # None: killed at the timeout
    stderr_tail: str

    @property
    def timed_out(self) -> bool:
        return self.exit_code is None


def run_measured(
    argv: Sequence[str],
    *,
    stdout: Path,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Measurement:
    """Run `argv` with stdout to a file; its own rusage (os.wait4), not the children's sum.

    The wait blocks until the child exits (a timer kills it at the timeout): polling every
    20 ms rounded a 130 ms start-up up to the next poll.
    """
    stderr_path = stdout.with_suffix(".stderr")
    started = time.monotonic()
    with stdout.open("wb") as out, stderr_path.open("wb") as err:
        process = subprocess.Popen(
            list(argv), stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=cwd, env=env
        )
        lock = threading.Lock()
        killed = reaped = False

        def kill() -> None:
            nonlocal killed
            with lock:
                # Not Popen.kill: its poll() could reap the child under this wait4. Until
                # the wait4 returns, the PID is still this child's (at worst a zombie).
                if not reaped:
                    killed = True
                    os.kill(process.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        with lock:
            reaped = True
        timer.cancel()
        exit_code = None if killed else os.waitstatus_to_exitcode(status)
    process.returncode = -9 if exit_code is None else exit_code
    seconds = time.monotonic() - started
    tail = stderr_path.read_text(errors="replace")[-2000:]
    stderr_path.unlink()
    return Measurement(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mib=usage.ru_maxrss / 1024,
        exit_code=exit_code,
        stderr_tail=tail,
    )


def median(values: Sequence[float]) -> float:
    """The median (the middle run of an odd number of runs)."""
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (fraction in 0..1)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]

"""A large `prodready validate` input, read and checked by several processes.

A workload's verdict depends on other objects of the input (the Services that select it,
its PDB, the ConfigMaps it reads), so the work is split in two phases over the same
worker processes, each holding a contiguous share of the input's files:

1. each worker reads its files and sends back their errors and notes, and the namespaces
   its objects are in;
2. once every share is read (and the run's limits are known to hold), each worker sends
   every other share the *context* that share's namespaces can see (Services, PDBs,
   ConfigMaps… of those namespaces, and what may bear on any namespace: Namespaces,
   Gateways, ProductionServices — `rules.context.reach`), never its workloads; then each
   checks its own objects against the whole input's context in input order, renders its
   reports as text pieces of the chosen format (JSON or the table) and sends back the
   pieces and their totals.

The parent writes the walk's and the files' notes and errors in the order one process
would have, then the output with the summary over every share: byte for byte what one
process writes. Workloads never leave their worker; the parent holds only the pieces of
text it is writing out, one share at a time. Workers are forked, so they inherit the
run's configuration and policies without copying.
"""

from __future__ import annotations

import contextlib
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from prodready.rules.config import RulesConfig
from prodready.rules.context import ObjectRole, classify, kind_of, namespace_key, reach
from prodready.rules.engine import evaluate
from prodready.rules.formats import Run, Totals, joined, json_piece, table_piece
from prodready.rules.loader import (
    InputError,
    InputLimitError,
    InputLimits,
    LoadedObject,
    LoadResult,
    PlannedFile,
    ReadingPlan,
    ShareLoad,
    merge_planned,
    read_planned,
    without_helm_tests,
)
from prodready.rules.model import Severity
from prodready.rules.policy import PolicySet

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

# How a share joins its pieces (`formats.render_table` joins objects' lines with
# newlines, `formats.json_chunks` the JSON document's objects with commas).
_JOINS = {"json": ",", "table": "\n"}
# A worker sends its text in chunks of about this many characters.
CHUNK_CHARACTERS = 1 << 20


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container's cpuset narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True, kw_only=True)
class Job:
    """What every worker needs to check its share, as one process would."""

    limits: InputLimits
    config: RulesConfig | None
    policies: PolicySet | None
    environment: str | None
    now: datetime
    fail_on: Severity
    output: str
    colour: bool = False
    show_passed: bool = False


@dataclass(kw_only=True)
class ReadOutcome:
    """The whole input read in shares: its errors and notes in reading order, the Helm
    test hooks skipped and the objects of kinds that are not checked."""

    errors: list[InputError]
    notes: list[str]
    helm_tests: int
    ignored: Counter[str] = field(default_factory=Counter)


class CheckError(Exception):
    """A worker failed while checking (a bug, not the input's fault); the message says how."""


def shares(files: Sequence[PlannedFile], count: int) -> list[list[PlannedFile]]:
    """`files` in at most `count` contiguous shares of about the same number of bytes."""
    total = sum(file.size for file in files) or 1
    result: list[list[PlannedFile]] = [[]]
    done = 0
    for position, file in enumerate(files):
        left = len(files) - position
        wanted = count - len(result)
        # Start a new share once this one holds its part, or when each remaining share
        # must get a file of its own.
        if result[-1] and wanted > 0 and (done >= total * len(result) / count or left <= wanted):
            result.append([])
        result[-1].append(file)
        done += file.size
    return result


def ignored_kinds(objects: Sequence[LoadedObject]) -> Counter[str]:
    """The objects `evaluate` ignores, by kind (a Pod a controller owns named as such)."""
    ignored: Counter[str] = Counter()
    for item in objects:
        if classify(item.obj) is ObjectRole.IGNORED:
            kind = kind_of(item.obj)
            ignored["Pod (owned by a controller)" if kind == "Pod" else kind] += 1
    return ignored


_RELATED = (ObjectRole.CONTEXT, ObjectRole.PRODUCTION_SERVICE)


def _work(
    files: list[PlannedFile], job: Job, connection: Connection, counter: _Counter | None = None
) -> None:
    """A worker: read `files`, send what was read, then check against everyone's context."""
    try:
        _share(files, job, connection, counter)
    except (EOFError, BrokenPipeError, ConnectionResetError):
        pass  # the parent stopped the run (a limit, another worker's failure)
    finally:
        connection.close()


class _Counter:
    """What every worker has read so far (shared memory), against the run's limits: the
    workers stop reading soon after the run as a whole goes past one, as one process would
    (which then reads the input again, to say where it stopped)."""

    def __init__(self, limits: InputLimits, context: Any) -> None:
        self.limits = limits
        self.totals = context.Array("q", 3)  # bytes, objects, nodes

    def within(self, counted: list[int]) -> Callable[[int, int, int], bool]:
        """A `read_planned` check for one worker; `counted` keeps what it added so far."""

        def check(size: int, objects: int, nodes: int) -> bool:
            read = (size, objects, nodes)
            with self.totals.get_lock():
                for position, value in enumerate(read):
                    self.totals[position] += value - counted[position]
                    counted[position] = value
                size, objects, nodes = self.totals[:]
            limits = self.limits
            return (
                size <= limits.max_bytes
                and objects <= limits.max_objects
                and nodes <= limits.max_nodes
            )

        return check


def _share(
    files: list[PlannedFile], job: Job, connection: Connection, counter: _Counter | None = None
) -> None:
    import pickle  # only the pool's processes exchange objects; a small run starts none

    within = counter.within([0, 0, 0]) if counter is not None else None
    try:
        share = read_planned(files, job.limits, texts=False, within=within)
    except InputLimitError:
        connection.send(("over", None))
        return
    objects, helm_tests = without_helm_tests(share.result.objects)
    own = [item.obj for item in objects if classify(item.obj) in _RELATED]
    needs = frozenset(namespace_key(item.obj) for item in objects)
    read = (share.result.errors, share.result.notes, share.marks, share.bytes)
    counted = (share.objects, share.nodes, helm_tests, ignored_kinds(objects))
    connection.send(("read", (read, *counted, needs)))
    share.result.objects.clear()
    message, wanted = connection.recv()
    if message != "wanted":
        return
    reaches = [reach(obj) for obj in own]
    for namespaces in wanted:
        if namespaces is not None:
            sent = [o for o, at in zip(own, reaches, strict=True) if at is None or at in namespaces]
            connection.send_bytes(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL))
    message, others = connection.recv()
    if message != "check":
        return
    related: list[Any] = []
    for blob in others:
        # Pickled by a sibling forked from the same parent, over a private pipe.
        related.extend(own if blob is None else pickle.loads(blob))  # noqa: S301
    del others
    try:
        reports = evaluate(
            [item.obj for item in objects],
            config=job.config,
            policies=job.policies,
            environment=job.environment,
            now=job.now,
            related=related,
        )
    except Exception as bug:  # reported by the parent as one process reports it
        connection.send(("bug", f"{type(bug).__name__}: {bug}"))
        return
    del related
    run = Run(reports, objects, [], job.fail_on)
    if job.output == "json":
        pieces = (json_piece(run, report) for report in reports)
    else:
        pieces = (
            table_piece(run, report, colour=job.colour, show_passed=job.show_passed)
            for report in reports
        )
    connection.send(("checked", run.totals))
    # The share's text in chunks, so that neither this process nor the parent holds all
    # of it at once; an empty chunk ends it.
    chunk: list[str] = []
    size = 0
    for text in joined(pieces, _JOINS[job.output]):
        chunk.append(text)
        size += len(text)
        if size >= CHUNK_CHARACTERS:
            connection.send_bytes("".join(chunk).encode("utf-8", "surrogatepass"))
            chunk, size = [], 0
    if chunk:
        connection.send_bytes("".join(chunk).encode("utf-8", "surrogatepass"))
    connection.send_bytes(b"")


class SharedRun:
    """The worker processes of one run (a context manager: they are ended on exit)."""

    def __init__(self, plan: ReadingPlan, job: Job, jobs: int) -> None:
        import multiprocessing

        self.plan = plan
        self.job = job
        self.shares = shares(plan.files, jobs)
        context = multiprocessing.get_context("fork")
        counter = _Counter(job.limits, context)
        self.connections: list[Connection] = []
        self.processes: list[Any] = []
        for files in self.shares:
            parent_end, child_end = context.Pipe()
            process = context.Process(
                target=_work, args=(files, job, child_end, counter), daemon=True
            )
            process.start()
            child_end.close()
            self.connections.append(parent_end)
            self.processes.append(process)
        self.needs: list[frozenset[str]] = []

    def __enter__(self) -> SharedRun:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for connection in self.connections:
            connection.close()
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()

    def _receive(self, position: int) -> tuple[str, Any]:
        try:
            message: tuple[str, Any] = self.connections[position].recv()
        except EOFError:
            code = self.processes[position].exitcode
            raise CheckError(f"a worker process ended unexpectedly (exit code {code})") from None
        return message

    def read(self) -> ReadOutcome | None:
        """Every share read; None when the input goes past the run's limits (the caller
        then reads it in one process, which says where it stopped)."""
        loads: list[tuple[Sequence[PlannedFile], ShareLoad]] = []
        helm_tests = 0
        ignored: Counter[str] = Counter()
        over = False
        totals = [0, 0, 0]
        for position, files in enumerate(self.shares):
            message, payload = self._receive(position)
            if message == "over":
                over = True
                continue
            (errors, notes, marks, size), objects, nodes, tests, kinds, needs = payload
            self.needs.append(needs)
            result = LoadResult(errors=errors, notes=notes)
            loads.append((files, ShareLoad(result, marks, size, objects, nodes)))
            totals = [totals[0] + size, totals[1] + objects, totals[2] + nodes]
            helm_tests += tests
            ignored.update(kinds)
        limits = self.job.limits
        if (
            over
            or totals[0] > limits.max_bytes
            or totals[1] > limits.max_objects
            or totals[2] > limits.max_nodes
        ):
            return None
        errors, notes = merge_planned(self.plan, loads)
        return ReadOutcome(errors=errors, notes=notes, helm_tests=helm_tests, ignored=ignored)

    def stop(self) -> None:
        """End the workers without checking (the run stops here)."""
        for connection in self.connections:
            with contextlib.suppress(OSError):
                connection.send(("stop", None))

    def check(self) -> Totals:
        """Have every share checked; the totals over all of them. Raises `CheckError`.

        Each share first gets, from each other share, the context its namespaces can see
        (`rules.context.reach`): most of a repository's context sits beside its workloads.
        """
        count = len(self.connections)
        for position, connection in enumerate(self.connections):
            wanted = [None if j == position else self.needs[j] for j in range(count)]
            connection.send(("wanted", wanted))
        sent = [
            {j: self.connections[i].recv_bytes() for j in range(count) if j != i}
            for i in range(count)
        ]
        for j, connection in enumerate(self.connections):
            connection.send(("check", [None if i == j else sent[i].pop(j) for i in range(count)]))
        del sent
        totals = Totals()
        problem: str | None = None
        for position in range(len(self.connections)):
            message, payload = self._receive(position)
            if message == "bug":
                problem = problem or str(payload)
                continue
            totals = totals + payload
        if problem is not None:
            raise CheckError(problem)
        return totals

    def text(self) -> Iterator[str]:
        """The shares' rendered text in input order, in chunks, joined as one process
        joins its objects (commas for JSON, newlines for the table)."""
        separator = ""
        for connection in self.connections:
            first = True
            while chunk := connection.recv_bytes():
                text = chunk.decode("utf-8", "surrogatepass")
                yield separator + text if first else text
                first = False
            if not first:
                separator = _JOINS[self.job.output]

"""`prodready render -f FILE`: ProductionServices in, Kubernetes objects out.

Bad input (unreadable file, malformed YAML, a document that is not a valid
ProductionService) exits 2 with one line on stderr naming the file, the document, the
field and the problem; it never prints a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

import yaml

from prodready.api.errors import SpecError
from prodready.api.models import API_VERSION, KIND
from prodready.render import render

EXIT_OK = 0
EXIT_INPUT_ERROR = 2
STDIN = "-"


class InputError(Exception):
    """Input that cannot be rendered; the message is what the user sees."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options: `-f FILE|-` (repeatable) and `-o yaml|json`."""
    parser.add_argument(
        "-f",
        "--filename",
        action="append",
        required=True,
        metavar="FILE",
        help="YAML file with one or more ProductionServices ('-' reads stdin); repeatable",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="yaml: a multi-document stream (default); json: one List object",
    )
    parser.epilog = (
        "Example: prodready render -f examples/fastapi-postgres-redis.yaml | "
        "kubectl apply --dry-run=server -f -"
    )


def _read(source: str, stdin: TextIO) -> str:
    if source == STDIN:
        return stdin.read()
    try:
        return Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise InputError(f"{source}: cannot read: {reason}") from None


def _documents(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """(1-based index, parsed document) for every non-empty YAML document."""
    try:
        for index, document in enumerate(yaml.safe_load_all(text), start=1):
            if document is not None:
                yield index, document
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"{source}: malformed YAML{where}: {problem}") from None


def _describe(document: Any) -> str:
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    return f"{KIND} {name}" if isinstance(name, str) and name else KIND


def render_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Render every ProductionService in one YAML stream; InputError on the first bad one."""
    objects: list[dict[str, Any]] = []
    for index, document in _documents(text, source):
        where = f"{source}: document {index}"
        if not isinstance(document, dict):
            raise InputError(f"{where}: expected a mapping, got {type(document).__name__}")
        # A wrong apiVersion is left to the model, which names the field.
        kind = document.get("kind")
        if kind != KIND:
            raise InputError(
                f"{where}: kind {kind!r} is not a {KIND} ({API_VERSION}); "
                "render takes only ProductionServices"
            )
        try:
            objects.extend(render(document))
        except SpecError as error:
            raise InputError(f"{where} ({_describe(document)}): {error}") from None
    return objects


def render_sources(sources: Sequence[str], stdin: TextIO) -> list[dict[str, Any]]:
    """Render the files (and stdin for '-') in the order given."""
    objects: list[dict[str, Any]] = []
    for source in sources:
        objects.extend(
            render_documents(_read(source, stdin), "<stdin>" if source == STDIN else source)
        )
    if not objects:
        raise InputError(f"no {KIND} in {', '.join(sources)}")
    return objects


def format_objects(objects: list[dict[str, Any]], output: str) -> str:
    """A YAML stream, or a JSON `List`; keys sorted, so the output is deterministic."""
    if output == "json":
        document = {"apiVersion": "v1", "kind": "List", "items": objects}
        return json.dumps(document, indent=2, sort_keys=True) + "\n"
    return yaml.safe_dump_all(objects, sort_keys=True, explicit_start=True, width=100)


def run(args: argparse.Namespace) -> int:
    """Render and print; 2 with a message on stderr for bad input."""
    try:
        objects = render_sources(args.filename, sys.stdin)
    except InputError as error:
        print(f"prodready render: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    sys.stdout.write(format_objects(objects, args.output))
    return EXIT_OK

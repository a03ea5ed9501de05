"""The `prodready` command line: one entry point, one module per subcommand.

Subcommand modules are imported only when chosen, so `prodready validate` in a CI job
does not pay for importing the operator's kopf layer. Each module exposes
`add_arguments(parser)` and `run(args) -> int` (the process exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Protocol, cast

# name -> (module, one-line help). Order is the order `--help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("prodready.app.command", "run the operator against a cluster"),
    "render": ("prodready.render.command", "render ProductionServices into Kubernetes objects"),
    "crds": ("prodready.api.command", "print the ProductionService CRD"),
    "validate": ("prodready.rules.command", "check workload manifests against the checklist"),
    "fix": ("prodready.rules.fix_command", "apply the safe fixes of findings to manifest files"),
    "rules": ("prodready.rules.catalogue", "list the checklist rules"),
    "test": (
        "prodready.rules.test_command",
        "check a policy's rules against expected results (prodready-test.yaml)",
    ),
    "report": ("prodready.audit.command", "print the cluster's current findings"),
    "dashboard": ("prodready.dashboard.command", "serve the cluster's readiness pages, read-only"),
    "webhook-config": (
        "prodready.webhook.command",
        "print the ValidatingWebhookConfiguration of the admission webhook",
    ),
    "admission-policy": (
        "prodready.rules.vap_command",
        "print a policy file's ValidatingAdmissionPolicies (the checklist in the apiserver)",
    ),
    "completion": ("prodready.completion", "print a shell completion script (bash, zsh, fish)"),
}


class CommandModule(Protocol):
    """What a subcommand module provides."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


class _LazyHelpFormatter(argparse.RawDescriptionHelpFormatter):
    pass


class _VersionAction(argparse.Action):
    """`--version`, looking the version up only when asked (importlib.metadata is slow to
    import for every other command)."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from prodready import __version__

        print(f"prodready {__version__}")
        parser.exit()


def build_parser(argv: Sequence[str], prog: str = "prodready") -> argparse.ArgumentParser:
    """Build the parser, loading only the subcommand named in `argv` (if any)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Production-readiness for Kubernetes workloads: an operator, a renderer "
        "and a checker that share one rules engine.",
        formatter_class=_LazyHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if a in COMMANDS), None)
    for name, (module_name, help_text) in COMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = cast(CommandModule, importlib.import_module(module_name))
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "prodready") -> int:
    """Run the command line; returns the exit code (0 ok, 1 findings, 2 usage/input error)."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list, prog)
    args = parser.parse_args(args_list)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    return int(handler(args))


def kubectl_plugin() -> int:
    """`kubectl prodready ...`: kubectl runs `kubectl-prodready` from PATH with the rest."""
    return main(prog="kubectl prodready")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

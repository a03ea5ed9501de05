"""`prodready crds`: print the ProductionService CRD (what `make generate` writes to crds/)."""

from __future__ import annotations

import argparse
import sys

from prodready.api.crd import crd_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`prodready crds` takes no arguments; the output is the CRD YAML on stdout."""
    parser.epilog = "Example: prodready crds | kubectl apply --server-side -f -"


def run(args: argparse.Namespace) -> int:
    """Print the CRD; always succeeds."""
    del args  # nothing to choose: there is one CRD
    sys.stdout.write(crd_yaml())
    return 0

"""`prodready crds`: print the CRDs (what `make generate` writes to crds/).

Without arguments the ProductionService CRD; with `--all` every CRD prodready serves
(ProductionService, ReadinessPolicy, ReadinessException) as one multi-document stream.
"""

from __future__ import annotations

import argparse
import sys

from prodready.api.crd import all_crds_yaml, crd_yaml


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`prodready crds [--all]`; the output is CRD YAML on stdout."""
    parser.add_argument(
        "--all",
        action="store_true",
        help="every CRD: ProductionService, ReadinessPolicy and ReadinessException",
    )
    parser.epilog = "Example: prodready crds --all | kubectl apply --server-side -f -"


def run(args: argparse.Namespace) -> int:
    """Print the CRD(s); always succeeds."""
    sys.stdout.write(all_crds_yaml() if getattr(args, "all", False) else crd_yaml())
    return 0

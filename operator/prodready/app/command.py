"""`prodready run`: start the operator against the cluster of the current credentials."""

from __future__ import annotations

import argparse
import os
import sys

from prodready.config import SettingsError, load_settings
from prodready.kube.login import (
    ClusterTarget,
    add_cluster_arguments,
    isolate_kubeconfig_logins,
    select,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags override the PRODREADY_* environment variables of the same name."""
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        dest="namespaces",
        metavar="NAMESPACE",
        help="watch this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--health-port", type=int, help="port of /healthz, /readyz, /metrics")
    parser.add_argument("--webhook-port", type=int, help="port of the admission webhook")
    parser.add_argument(
        "--standalone",
        action="store_true",
        default=None,
        help="act without leader election (a single replica, or local development)",
    )
    parser.add_argument("--log-format", choices=["json", "console"])
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    add_cluster_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Validate the settings, set up logging, run until SIGTERM/SIGINT."""
    environ = dict(os.environ)
    overrides = {
        "PRODREADY_NAMESPACES": ",".join(args.namespaces) if args.namespaces else None,
        "PRODREADY_HEALTH_PORT": args.health_port,
        "PRODREADY_WEBHOOK_PORT": args.webhook_port,
        "PRODREADY_STANDALONE": "true" if args.standalone else None,
        "PRODREADY_LOG_FORMAT": args.log_format,
        "PRODREADY_LOG_LEVEL": args.log_level,
        "PRODREADY_KUBECONFIG": args.kubeconfig,
        "PRODREADY_CONTEXT": args.context,
    }
    environ.update({k: str(v) for k, v in overrides.items() if v is not None})
    try:
        settings = load_settings(environ)
    except SettingsError as error:
        print(f"prodready: invalid settings:\n{error}", file=sys.stderr)
        return 2
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig is not None else None
    select(ClusterTarget(kubeconfig=kubeconfig, context=settings.context))
    isolate_kubeconfig_logins()

    # Imported here: `prodready validate` never pays for kopf.
    from prodready.app.process import run as run_operator
    from prodready.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    return run_operator(settings)

"""`prodready dashboard`: serve the cluster's readiness pages, read-only.

    prodready dashboard                       # http://127.0.0.1:8090/, every namespace
    prodready dashboard -n shop --port 9000

It reads with the current kubeconfig's credentials (or the pod's ServiceAccount) what the
operator's audit wrote: the policy reports, ProductionServices and their conditions, and
ReadinessExceptions; nothing is written. Binds to 127.0.0.1 unless told otherwise: the
pages show every namespace the credentials can read to whoever reaches the port.
Exit codes: 0 — stopped; 2 — no credentials, or the address cannot be bound.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TextIO

import kopf
from aiohttp import web

from prodready.audit.command import add_report_api_argument
from prodready.dashboard.server import DEFAULT_REFRESH_SECONDS, DashboardServer
from prodready.kube.client import KubeClient
from prodready.kube.login import add_cluster_arguments, select_from_arguments

EXIT_OK = 0
EXIT_ERROR = 2
DEFAULT_PORT = 8090


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `dashboard`'s arguments."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})"
    )
    parser.add_argument(
        "-n", "--namespace", help="only this namespace (default: every namespace you can read)"
    )
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        default=DEFAULT_REFRESH_SECONDS,
        help=f"read the cluster again at most this often (default: {DEFAULT_REFRESH_SECONDS:g})",
    )
    add_report_api_argument(parser)
    add_cluster_arguments(parser)


async def serve(server: DashboardServer, host: str, port: int, out: TextIO) -> None:
    """Serve until cancelled."""
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        print(f"serving the dashboard on http://{bound[0]}:{bound[1]}/", file=out, flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def run(args: argparse.Namespace) -> int:
    """Run `dashboard` until interrupted; returns the exit code."""
    err: TextIO = sys.stderr
    select_from_arguments(args)
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be between 0 and 65535 (got {args.port})", file=err)
        return EXIT_ERROR
    try:
        KubeClient.login()  # fail now, with a message, rather than on the first page
    except kopf.LoginError as error:
        print(f"error: {error}", file=err)
        return EXIT_ERROR
    except OSError as error:  # an unreadable kubeconfig
        print(f"error: cannot read the kubeconfig: {error}", file=err)
        return EXIT_ERROR
    server = DashboardServer(
        KubeClient.login,
        namespaces=[args.namespace] if args.namespace else [],
        refresh_seconds=args.refresh_seconds,
        report_api=args.report_api,
    )
    try:
        asyncio.run(serve(server, args.host, args.port, sys.stdout))
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        pass
    return EXIT_OK

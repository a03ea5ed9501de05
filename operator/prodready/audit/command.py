"""`prodready report`: the cluster's current findings, read from the operator's policy reports.

    prodready report                    # the context's namespace, as a table
    prodready report -A                 # every namespace
    prodready report -n shop -o sarif   # one namespace, for code scanning
    kubectl prodready report -A         # the same, as a kubectl plugin

It reads the reports the in-cluster audit writes (OpenReports, else PolicyReport) with
kubectl's credentials (`--kubeconfig`, `--context`, as kubectl picks them), and like
kubectl reads the context's namespace unless told `-n` or `-A`; it prints them with the
very functions `prodready validate` uses, so a finding looks the same whether CI or the
cluster found it.
Exit codes as `validate`: 0 — nothing fails at the `--fail-on` level; 1 — something does;
2 — the reports cannot be read (no credentials, no report CRD, no permission).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import aiohttp
import kopf

from prodready.audit.reports import (
    AUTO,
    FLAVORS,
    SELECTOR,
    ReportFlavor,
    flavors_for,
    parse_report,
    unavailable_message,
)
from prodready.kube.client import ApiError, KubeClient
from prodready.kube.login import DEFAULT_NAMESPACE, add_cluster_arguments, select_from_arguments
from prodready.rules.command import add_verdict_arguments
from prodready.rules.formats import Run, render_json, render_sarif, render_table, summary_line
from prodready.rules.loader import LoadedObject
from prodready.rules.model import Severity

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2
OUTPUTS = ("table", "json", "sarif")


class ReportsUnavailableError(Exception):
    """The cluster serves neither report API."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `report`'s arguments."""
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "-n", "--namespace", help="this namespace (default: the kubeconfig context's namespace)"
    )
    where.add_argument(
        "-A",
        "--all-namespaces",
        action="store_true",
        help="every namespace the credentials can read",
    )
    parser.add_argument(
        "-o", "--output", choices=OUTPUTS, default="table", help="output format (default: table)"
    )
    add_verdict_arguments(parser)
    add_report_api_argument(parser)
    add_cluster_arguments(parser)


def add_report_api_argument(parser: argparse.ArgumentParser) -> None:
    """`--report-api`, for `report` and `dashboard`."""
    parser.add_argument(
        "--report-api",
        type=report_api,
        choices=[AUTO, *(flavor.api for flavor in FLAVORS)],  # for shell completion
        default=os.environ.get("PRODREADY_REPORT_API", AUTO),
        help="the report API to read, as the operator's PRODREADY_REPORT_API (default: "
        "$PRODREADY_REPORT_API, else auto: OpenReports if served, else PolicyReport)",
    )


def report_api(value: str) -> str:
    """`--report-api` (and PRODREADY_REPORT_API, its default), checked: a bad one is a usage
    error naming the choices, not a traceback."""
    chosen = value.strip().lower()
    try:
        flavors_for(chosen)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return chosen


async def fetch_reports(
    client: KubeClient, namespace: str | None, api: str = AUTO
) -> tuple[ReportFlavor, list[dict[str, Any]]]:
    """The prodready reports of the first report API (of those `api` allows) served."""
    for flavor in flavors_for(api):
        served = await client.served_resources(flavor.resource.api_version)
        if served is not None and flavor.resource.plural in served:
            bodies = await client.list(flavor.resource.path(namespace), label_selector=SELECTOR)
            return flavor, bodies
    raise ReportsUnavailableError(unavailable_message(api))


def _where(flavor: ReportFlavor, body: Mapping[str, Any]) -> str:
    metadata = body.get("metadata") or {}
    return f"{metadata.get('namespace')}/{flavor.resource.plural}/{metadata.get('name')}"


def to_run(flavor: ReportFlavor, bodies: list[dict[str, Any]], fail_on: Severity) -> Run:
    """The reports as a `validate` run: one object per report, located by its API path."""
    ordered = sorted(
        bodies,
        key=lambda body: (
            str((body.get("metadata") or {}).get("namespace")),
            str((body.get("metadata") or {}).get("name")),
        ),
    )
    reports = [parse_report(body, index) for index, body in enumerate(ordered)]
    sources = [LoadedObject(obj=body, file=_where(flavor, body), line=1) for body in ordered]
    return Run(reports, sources, [], fail_on)


async def _read(
    namespace: str | None, *, all_namespaces: bool, report_api: str = AUTO
) -> tuple[str | None, ReportFlavor, list[dict[str, Any]]]:
    """The namespace read (None: all), and its reports."""
    client = KubeClient.login()
    try:
        if not all_namespaces and not namespace:
            namespace = client.default_namespace or DEFAULT_NAMESPACE
        flavor, bodies = await fetch_reports(
            client, None if all_namespaces else namespace, report_api
        )
        return (None if all_namespaces else namespace), flavor, bodies
    finally:
        await client.close()


def _print(run: Run, args: argparse.Namespace, out: TextIO, err: TextIO) -> None:
    if args.output == "table":
        colour = out.isatty() and not os.environ.get("NO_COLOR")
        out.write(render_table(run, colour=colour, show_passed=args.show_passed))
        print(summary_line(run), file=out)
        return
    out.write(render_json(run) if args.output == "json" else render_sarif(run))
    print(summary_line(run), file=err)


def run(args: argparse.Namespace) -> int:
    """Run `report`; returns the exit code."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    select_from_arguments(args)
    try:
        namespace, flavor, bodies = asyncio.run(
            _read(args.namespace, all_namespaces=args.all_namespaces, report_api=args.report_api)
        )
    except (ReportsUnavailableError, kopf.LoginError) as error:
        print(f"error: {error}", file=err)
        return EXIT_ERROR
    except ApiError as error:
        print(
            f"error: cannot read the reports: {error.status} {error.reason}: {error.message}",
            file=err,
        )
        return EXIT_ERROR
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        print(f"error: cannot reach the cluster: {str(error) or type(error).__name__}", file=err)
        return EXIT_ERROR
    result = to_run(flavor, bodies, Severity(args.fail_on))
    if not bodies:
        where = f"namespace {namespace}" if namespace else "the cluster"
        hint = "" if namespace is None or args.namespace else "; -A reads every namespace"
        print(
            f"note: no prodready reports in {where} (is the operator running there?{hint})",
            file=err,
        )
    _print(result, args, out, err)
    out.flush()
    return EXIT_FINDINGS if result.failed else EXIT_OK

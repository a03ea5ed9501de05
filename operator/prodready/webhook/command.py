"""`prodready webhook-config`: print the ValidatingWebhookConfiguration for the webhook.

    # local run: the operator logged where its generated CA is
    prodready webhook-config --url https://127.0.0.1:9443 --ca-bundle-file /tmp/…/ca.crt \
        | kubectl apply -f -
    # in-cluster, CA injected by cert-manager
    prodready webhook-config --service prodready-webhook --namespace prodready \
        --inject-ca-from prodready/prodready-webhook

The operator's own writes are not sent to the webhook (a matchCondition on the request's
user): `--operator-service-account` names its ServiceAccount in `--namespace` (default
prodready), or `--operator-user` gives the whole username (a local run under a kubeconfig
user).

failurePolicy (of the enforce entries; default Fail) and timeoutSeconds default to the
operator's settings (PRODREADY_WEBHOOK_FAILURE_POLICY, PRODREADY_WEBHOOK_TIMEOUT_SECONDS).
The audit entry always ignores failures and the authorization entry (`/authorize`) always
fails closed, whatever is asked (see prodready.webhook.configuration).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from prodready.config import SettingsError, load_settings
from prodready.webhook.configuration import (
    CERT_MANAGER_INJECT,
    DEFAULT_SERVICE_ACCOUNT,
    ServiceTarget,
    operator_username,
    render_webhook_configuration,
)

EXIT_OK = 0
EXIT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `webhook-config`'s arguments."""
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--url", help="base URL of the webhook (local runs), e.g. https://127.0.0.1:9443"
    )
    target.add_argument("--service", metavar="NAME", help="the webhook's Service (in-cluster)")
    parser.add_argument(
        "-n",
        "--namespace",
        default="prodready",
        help="the operator's namespace: its Service's namespace, and excluded from the webhook "
        "(default: prodready)",
    )
    parser.add_argument("--port", type=int, default=443, help="the Service's port (default: 443)")
    ca = parser.add_mutually_exclusive_group()
    ca.add_argument("--ca-bundle-file", type=Path, metavar="FILE", help="PEM CA bundle")
    ca.add_argument(
        "--inject-ca-from",
        metavar="NAMESPACE/CERTIFICATE",
        help="let cert-manager inject the CA of this Certificate",
    )
    parser.add_argument("--name", default="prodready", help="object name (default: prodready)")
    parser.add_argument(
        "--failure-policy",
        choices=["Fail", "Ignore"],
        help="failurePolicy of the enforce entries (default: PRODREADY_WEBHOOK_FAILURE_POLICY)",
    )
    parser.add_argument("--timeout-seconds", type=int)
    parser.add_argument(
        "--exclude-namespace",
        action="append",
        default=[],
        metavar="NAMESPACE",
        help="another namespace the webhook never sees (repeatable)",
    )
    identity = parser.add_mutually_exclusive_group()
    identity.add_argument(
        "--operator-service-account",
        default=DEFAULT_SERVICE_ACCOUNT,
        metavar="NAME",
        help="the operator's ServiceAccount in --namespace, whose writes the webhook leaves "
        f"to the operator (default: {DEFAULT_SERVICE_ACCOUNT})",
    )
    identity.add_argument(
        "--operator-user",
        metavar="USERNAME",
        help="the operator's whole username instead (e.g. a local run's kubeconfig user)",
    )
    parser.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml")


def run(args: argparse.Namespace) -> int:
    """Print the configuration; 2 on unusable arguments or settings."""
    try:
        settings = load_settings()
    except SettingsError as error:
        print(f"error: invalid settings:\n{error}", file=sys.stderr)
        return EXIT_ERROR
    ca_bundle = None
    if args.ca_bundle_file is not None:
        try:
            ca_bundle = args.ca_bundle_file.read_bytes()
        except OSError as error:
            print(f"error: cannot read {args.ca_bundle_file}: {error.strerror}", file=sys.stderr)
            return EXIT_ERROR
        if b"-----BEGIN CERTIFICATE-----" not in ca_bundle:
            print(f"error: {args.ca_bundle_file} holds no PEM certificate", file=sys.stderr)
            return EXIT_ERROR
    annotations = {CERT_MANAGER_INJECT: args.inject_ca_from} if args.inject_ca_from else None
    try:
        document = render_webhook_configuration(
            operator_namespace=args.namespace,
            url=args.url,
            service=ServiceTarget(args.service, args.namespace, args.port)
            if args.service
            else None,
            ca_bundle=ca_bundle,
            name=args.name,
            failure_policy=args.failure_policy or settings.webhook_failure_policy,
            timeout_seconds=(
                settings.webhook_timeout_seconds
                if args.timeout_seconds is None
                else args.timeout_seconds
            ),
            excluded_namespaces=args.exclude_namespace,
            annotations=annotations,
            operator_user=args.operator_user
            or operator_username(args.namespace, args.operator_service_account),
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR
    if args.output == "json":
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
    else:
        # Through JSON first: entries share lists, which YAML would print as anchors.
        sys.stdout.write(yaml.safe_dump(json.loads(json.dumps(document)), sort_keys=False))
    return EXIT_OK

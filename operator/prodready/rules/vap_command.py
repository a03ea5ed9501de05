"""`prodready admission-policy`: a policy file's ValidatingAdmissionPolicies, printed.

    prodready admission-policy --policy policy.yaml | kubectl apply -f -

Every ReadinessPolicy in the file (with the ReadinessExceptions beside it) becomes a
ValidatingAdmissionPolicy and its binding, `prodready-<policy>` (`prodready.rules.vap`);
a policy in mode Off, or one nothing of which compiles, prints nothing. What each policy
leaves to the webhook, and why, goes to stderr. Exit codes: 0 printed, 2 a file or policy
error (the message names the object and field).
"""

from __future__ import annotations

import argparse
import io
import json
import sys

import yaml

from prodready.rules.policy import PolicyError, load_policy_file
from prodready.rules.vap import objects_for

EXIT_OK = 0
EXIT_ERROR = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `admission-policy`'s arguments."""
    parser.add_argument(
        "--policy",
        required=True,
        metavar="FILE",
        help="a file of ReadinessPolicy (and ReadinessException) documents",
    )
    parser.add_argument(
        "-o", "--output", choices=("yaml", "json"), default="yaml", help="default: yaml"
    )


def run(args: argparse.Namespace) -> int:
    """Print the generated objects; 2 with a message on stderr for a bad file or policy."""
    from prodready.rules.loader import load_inputs

    try:
        load_policy_file(args.policy)  # the strict offline checks (unknown rule IDs)
        loaded = load_inputs([args.policy], io.BytesIO())
        generated, plans = objects_for(item.obj for item in loaded.objects)
    except PolicyError as error:
        print(f"prodready admission-policy: {error}", file=sys.stderr)
        return EXIT_ERROR
    for plan in plans:
        for rule_id, why in sorted(plan.left_to_webhook.items()):
            print(
                f"ReadinessPolicy {plan.policy}: {rule_id} left to the webhook: {why}",
                file=sys.stderr,
            )
    if args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": generated}, indent=2))
    else:
        sys.stdout.write(yaml.safe_dump_all(generated, sort_keys=False, width=100))
    return EXIT_OK

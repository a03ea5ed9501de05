"""`prodready rules`: the rule catalogue, generated from the registry.

`-o markdown` is what the README's rule catalogue is generated from; `-o json` is for
tools (dashboards, policy repositories) that want the metadata. `--policy FILE` lists the
custom rules of the file's ReadinessPolicies after the checklist's (table and json).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from prodready.rules.model import Environment
from prodready.rules.registry import RULES, Rule

FORMATS = ("table", "json", "markdown")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare `rules`' arguments."""
    parser.add_argument(
        "-o", "--output", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="also list the custom rules (customRules) of this file's ReadinessPolicies",
    )


def _custom_rules(path: str) -> list[dict[str, Any]]:
    """The custom rules of a policy file, as `-o json` prints them; raises PolicyError."""
    from prodready.rules.policy import load_policy_file

    return [
        {
            "id": rule.id,
            "title": rule.title,
            "severity": rule.severity.value,
            "kinds": sorted(rule.kinds),
            "expression": rule.expression,
            "fix": rule.fix,
            "policy": policy.name,
        }
        for policy in load_policy_file(path).policies
        for rule in policy.custom_rules
    ]


def _profiles(rule: Rule) -> dict[str, str | None]:
    return {
        environment.value: (severity.value if severity else None)
        for environment in Environment
        for severity in (rule.severity_in(environment),)
    }


def rule_dict(rule: Rule) -> dict[str, Any]:
    """One rule's metadata, as `-o json` prints it."""
    return {
        "id": rule.id,
        "title": rule.title,
        "section": rule.section,
        "severity": rule.severity.value,
        "profiles": _profiles(rule),
        "scope": rule.scope,
        "kinds": sorted(rule.kinds),
        "why": rule.why,
        "fix": rule.fix,
    }


def _profile_text(rule: Rule) -> str:
    profiles = _profiles(rule)
    if rule.prod_only:
        return "prod only"
    if profiles["dev"] != rule.severity.value:
        return f"dev: {profiles['dev']}"
    return "all"


def render_table() -> str:
    """A fixed-width table: ID, severity, where it applies, title."""
    lines = [f"{'ID':<10} {'SEVERITY':<8} {'APPLIES':<14} TITLE"]
    lines.extend(
        f"{rule.id:<10} {rule.severity.value:<8} {_profile_text(rule):<14} {rule.title}"
        for rule in RULES
    )
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown() -> str:
    """A Markdown table with why and how to fix, for the README."""
    lines = [
        "| ID | rule | seed | severity | environments | why | how to fix |",
        "|---|---|---|---|---|---|---|",
    ]
    lines.extend(
        f"| {rule.id} | {_cell(rule.title)} | {rule.section} | {rule.severity.value} | "
        f"{_profile_text(rule)} | {_cell(rule.why)} | {_cell(rule.fix)} |"
        for rule in RULES
    )
    return "\n".join(lines) + "\n"


def render_json() -> str:
    """Every rule's metadata as a JSON list."""
    return json.dumps([rule_dict(rule) for rule in RULES], indent=2, ensure_ascii=False) + "\n"


def run(args: argparse.Namespace) -> int:
    """Print the catalogue; exit 0 (2 when `--policy` cannot be used)."""
    custom: list[dict[str, Any]] = []
    if args.policy:
        from prodready.rules.policy import PolicyError

        try:
            custom = _custom_rules(args.policy)
        except PolicyError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    if args.output == "json" and custom:
        everything = [*(rule_dict(rule) for rule in RULES), *custom]
        sys.stdout.write(json.dumps(everything, indent=2, ensure_ascii=False) + "\n")
        return 0
    renderers = {"table": render_table, "json": render_json, "markdown": render_markdown}
    sys.stdout.write(renderers[args.output]())
    if args.output == "table":
        sys.stdout.writelines(
            f"{rule['id']:<10} {rule['severity']:<8} {'custom':<14} {rule['title']} "
            f"(ReadinessPolicy {rule['policy']})\n"
            for rule in custom
        )
    return 0

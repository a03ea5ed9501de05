"""Secrets in plain sight: high-confidence secret values in env literals and ConfigMap data.

A small set of patterns for secrets whose *shape* gives them away wherever they sit and
whatever the variable is called: private key blocks, cloud access keys, signed JWTs and
the documented prefixes of well-known tokens. Each has a prefix or structure that
ordinary configuration does not have, so a match is a finding, not a guess. A value under
a sensitive *name* is judged by the name (`RuleSettings.secret_reason`); this module is
for the value.

Why patterns, not detect-secrets: the same families measured against detect-secrets on the
10,000-workload corpus (`python -m benchmarks --only quality`; figures in
benchmarks/QUALITY.md) cost a fraction of its time, and its keyword and entropy plugins
flag configuration that is not secret. Every pattern is linear (no nested quantifiers),
bounded in length, and tested by tests/unit/test_rules_secrets.py.

A finding names the variable or key and the *kind* of secret, never the value or any
part of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SecretPattern:
    """One family of secrets recognisable by their shape."""

    kind: str
    pattern: re.Pattern[str]


# Ordered by how specific the shape is: the first that matches names the kind.
PATTERNS: tuple[SecretPattern, ...] = (
    SecretPattern(
        "private key",
        # PEM/OpenSSH/PGP armour, tolerant of the dash count people copy by hand. Exactly
        # three dashes (a substring of five): a repeated `-{3,}` backtracks quadratically on
        # a long run of dashes.
        re.compile(r"--- ?BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY"),
    ),
    SecretPattern(
        "AWS access key",
        re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}(?![A-Z0-9])"),
    ),
    SecretPattern("Google API key", re.compile(r"(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])")),
    SecretPattern(
        "GitHub token",
        re.compile(r"(?<![\w])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?!\w)"),
    ),
    SecretPattern("GitLab token", re.compile(r"(?<![\w])glpat-[A-Za-z0-9_-]{20}(?![\w-])")),
    SecretPattern("Slack token", re.compile(r"(?<![\w])xox[abposr]-[A-Za-z0-9-]{10,250}")),
    SecretPattern(
        "Slack webhook URL",
        re.compile(r"https://hooks\.slack\.com/services/T[A-Z0-9]{6,12}/B[A-Z0-9]{6,12}/\w{20,}"),
    ),
    SecretPattern("Stripe secret key", re.compile(r"(?<![\w])[sr]k_live_[A-Za-z0-9]{20,247}")),
    SecretPattern(
        "OpenAI or Anthropic API key",
        re.compile(
            r"(?<![\w-])sk-(?:proj-)?[A-Za-z0-9_-]{20,200}T3BlbkFJ"
            r"|(?<![\w-])sk-ant-api\d\d-[A-Za-z0-9_-]{80,120}"
        ),
    ),
    SecretPattern("npm token", re.compile(r"(?<![\w])npm_[A-Za-z0-9]{36}(?!\w)")),
    SecretPattern(
        "SendGrid API key", re.compile(r"(?<![\w])SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")
    ),
    SecretPattern(
        "Azure storage account key", re.compile(r"AccountKey=[A-Za-z0-9+/]{80,90}={0,2}")
    ),
    SecretPattern(
        "signed JWT",
        # header.payload.signature, both JSON parts starting with `{"` (base64url `eyJ`).
        re.compile(
            r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,4096}\.eyJ[A-Za-z0-9_-]{8,8192}"
            r"\.[A-Za-z0-9_-]{16,1024}"
        ),
    ),
)


def secret_kind(value: str) -> str | None:
    """The kind of secret `value` holds ("private key", "AWS access key", …), or None."""
    for candidate in PATTERNS:
        if candidate.pattern.search(value):
            return candidate.kind
    return None

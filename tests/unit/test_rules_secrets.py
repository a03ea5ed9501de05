"""`prodready.rules.secrets`: each pattern finds its kind of secret and not its look-alikes.

The examples are made up in the documented shapes (no real credential is in this file).
"""

from __future__ import annotations

import time

import pytest

from prodready.rules.secrets import PATTERNS, secret_kind
from prodready.rules.subject import RuleSettings

FOUND = [
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...", "private key"),
    ("---BEGIN OPENSSH PRIVATE KEY--- abc", "private key"),
    ("-----BEGIN EC PRIVATE KEY-----", "private key"),
    ("-----BEGIN PGP PRIVATE KEY BLOCK-----", "private key"),
    ('{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE"}', "private key"),
    ("AKIAZ7CANARY4Q2X9ZTW", "AWS access key"),
    ("id=ASIAZ7CANARY4Q2X9ZTW;", "AWS access key"),
    ("AIza" + "S" * 35, "Google API key"),
    ("ghp_" + "a1B2" * 9, "GitHub token"),
    ("github_pat_" + "A" * 82, "GitHub token"),
    ("glpat-" + "x" * 20, "GitLab token"),
    ("xoxb-123456789012-abcdefghij", "Slack token"),
    ("https://hooks.slack.com/services/T0123ABCD/B0123ABCD/" + "z" * 24, "Slack webhook URL"),
    ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "Stripe secret key"),
    ("sk-proj-" + "a" * 30 + "T3BlbkFJ" + "b" * 20, "OpenAI or Anthropic API key"),
    ("sk-ant-api03-" + "c" * 95, "OpenAI or Anthropic API key"),
    ("npm_" + "n" * 36, "npm token"),
    ("SG." + "s" * 22 + "." + "t" * 43, "SendGrid API key"),
    ("DefaultEndpointsProtocol=https;AccountKey=" + "k" * 86 + "==;", "Azure storage account key"),
    (
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "signed JWT",
    ),
]

NOT_FOUND = [
    "",
    "-----BEGIN PUBLIC KEY-----",
    "-----BEGIN CERTIFICATE-----",
    "AKIA-not-a-key",
    "XAKIAZ7CANARY4Q2X9ZTWX",  # embedded in a longer token
    "ghp_short",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",  # Stripe test keys are meant to be shared
    "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",  # unsigned: no signature part
    "https://hooks.slack.com/services/",
    "postgres://db:5432/shop",
    "json",
    "a" * 100,
]


@pytest.mark.parametrize(("value", "kind"), FOUND, ids=[k for _, k in FOUND])
def test_each_kind_is_found(value: str, kind: str) -> None:
    assert secret_kind(value) == kind
    assert secret_kind(f"prefix {value} suffix") == kind


@pytest.mark.parametrize("value", NOT_FOUND)
def test_look_alikes_are_not(value: str) -> None:
    assert secret_kind(value) is None


def test_every_pattern_has_an_example() -> None:
    assert {p.kind for p in PATTERNS} == {kind for _, kind in FOUND}


def test_the_reason_names_the_variable_and_the_kind_never_the_value() -> None:
    settings = RuleSettings()
    value = "AKIAZ7CANARY4Q2X9ZTW"
    reason = settings.secret_reason("UPLOAD", value)
    assert reason == "UPLOAD holds a literal AWS access key"
    assert value not in reason


@pytest.mark.parametrize(
    "text",
    [
        "eyJ" * 100_000,
        "eyJaaaaaaaa." * 50_000,
        "-" * 300_000,
        "--- BEGIN " * 50_000,
        "AKIA" * 100_000,
        "sk-" + "a" * 300_000,
    ],
    ids=["jwt-headers", "jwt-parts", "dashes", "armour", "aws", "openai"],
)
def test_adversarial_input_costs_linear_time(text: str) -> None:
    started = time.perf_counter()
    secret_kind(text)
    assert time.perf_counter() - started < 2.0

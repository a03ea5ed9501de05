"""One verdict on "is this variable name sensitive", wherever it is asked (PR-LG-003).

The CRD's CEL rule, `prodready render`, `prodready validate` and the log redactor all use
`prodready.api.sensitive`. These tests hold its patterns to a plain-Python statement of
the rule, check that RE2 (Go's regexp, what CEL's `matches()` runs in the apiserver) and
Python's `re` give the same answers on generated names, and that TOKEN_TTL,
DB_PASSWORD_FILE and SECRET_NAME get the same verdict from all three user-facing checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import string
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from prodready.api import SpecError
from prodready.api.crd import openapi_schema
from prodready.api.sensitive import (
    DEFAULT,
    QUALIFIED_NAME_PATTERN,
    QUALIFIER_WORDS,
    SENSITIVE_NAME_PATTERN,
    SENSITIVE_WORDS,
    is_sensitive_name,
    sensitive_names,
)
from prodready.observability.logging import REDACTED, is_sensitive_key, redact
from prodready.render import render
from prodready.rules import evaluate
from prodready.rules.subject import RuleSettings

RE2_MAIN = Path(__file__).parent / "re2" / "main.go"

# ----------------------------------------------------------------- the rule, in plain words

_COMPOUNDS = {
    "apikey": ("api", "key"),
    "creditcard": ("credit", "card"),
    "privatekey": ("private", "key"),
    "accesskey": ("access", "key"),
    "passphrase": ("pass", "phrase"),
}


def _is_letter(char: str) -> bool:
    return char in string.ascii_letters


def _starts_word(name: str, i: int) -> bool:
    """A word may begin at i: after a non-letter, at a lower→Upper hump, or where an
    upper-case run meets a capitalised word (DB|Password)."""
    if i == 0 or not _is_letter(name[i - 1]):
        return True
    before, here = name[i - 1], name[i]
    nxt = name[i + 1] if i + 1 < len(name) else ""
    return here.isupper() and (before.islower() or (before.isupper() and nxt.islower()))


def _ends_word(name: str, j: int) -> bool:
    """A word may end just before j (the mirror of `_starts_word`)."""
    if j == len(name) or not _is_letter(name[j]):
        return True
    last, here = name[j - 1], name[j]
    nxt = name[j + 1] if j + 1 < len(name) else ""
    return here.isupper() and (last.islower() or (last.isupper() and nxt.islower()))


def _ends_of(name: str, i: int, parts: tuple[str, ...]) -> Iterator[int]:
    """Where `parts` (case-insensitive, at most one separator between two) end from i."""
    starts = {i}
    for index, part in enumerate(parts):
        if index:
            starts |= {p + 1 for p in starts if p < len(name) and not name[p].isalnum()}
        starts = {p + len(part) for p in starts if name[p : p + len(part)].lower() == part}
    yield from starts


def reference_verdict(name: str, words: tuple[str, ...] = SENSITIVE_WORDS) -> bool:
    """The rule written out by hand, independent of the generated patterns."""
    word_parts = [_COMPOUNDS.get(word, (word,)) for word in words]
    has_word = any(
        _starts_word(name, i) and _ends_word(name, j)
        for parts in word_parts
        for i in range(len(name))
        for j in _ends_of(name, i, parts)
    )
    qualified = any(
        _starts_word(name, k)
        and name[k : k + len(word)].lower() == word
        and not any(char.isalnum() for char in name[k + len(word) :])
        for word in QUALIFIER_WORDS
        for k in range(1, len(name))
    )
    return has_word and not qualified


# -------------------------------------------------------------------------- generated names

_SEPARATORS = ("", "", "_", "_", ".", "-", "2")
_CASES: tuple[Callable[[str], str], ...] = (str.lower, str.upper, str.capitalize, str.title)


@st.composite
def _piece(draw: st.DrawFn) -> str:
    word = draw(
        st.sampled_from(
            [
                *SENSITIVE_WORDS,
                *QUALIFIER_WORDS,
                "api_key",
                "pass_word",
                "id",
                "db",
                "aws",
                "ary",
                "izer",
                "s",
            ]
        )
        | st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=4)
    )
    case = draw(st.sampled_from(_CASES))
    if draw(st.booleans()):
        return case(word)
    # Mixed case, letter by letter (catches humps inside a word).
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c.lower() for c, up in zip(word, flips, strict=True))


@st.composite
def names(draw: st.DrawFn) -> str:
    """Variable-like names built from sensitive words, qualifiers and filler."""
    pieces = draw(st.lists(_piece(), min_size=1, max_size=4))
    name = pieces[0]
    for piece in pieces[1:]:
        name += draw(st.sampled_from(_SEPARATORS)) + piece
    return draw(st.sampled_from(("", "_", "x_"))) + name + draw(st.sampled_from(("", "", "_")))


# ---------------------------------------------------------------------------- the patterns


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(names())
def test_patterns_implement_the_rule(name: str) -> None:
    assert is_sensitive_name(name) == reference_verdict(name), name


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [
        ("DB_PASSWORD", True),
        ("dbPassword", True),
        ("DBPassword", True),
        ("APIKey", True),
        ("X-API-KEY", True),
        ("PASS_PHRASE", True),
        ("AWS_ACCESS_KEY_ID", True),  # `id` is no qualifier: half a credential
        ("AUTHORIZATION_HEADER", True),  # nor `header`: often `Bearer …`
        ("TOKEN_TTL_2", True),  # the last word is 2
        ("TOKEN_TTL", False),
        ("DB_PASSWORD_FILE", False),
        ("SECRET_NAME", False),
        ("TOKEN_TTL_SECONDS", False),
        ("tokenTtl", False),
        ("PASSWORDFile", False),
        ("secretRef", False),
        ("OAUTH_TOKEN_URL", False),
        ("TOKEN_TTL_", False),
        ("SECRETARY", False),
        ("TOKENIZER", False),
        ("MAX_TOKENS", False),
        ("TTL", False),
    ],
)
def test_examples(name: str, sensitive: bool) -> None:
    assert is_sensitive_name(name) is sensitive
    assert reference_verdict(name) is sensitive


def test_configured_words_use_the_same_rule() -> None:
    pins = sensitive_names(("pin", "session_key"))
    assert pins.matches("ATM_PIN")
    assert pins.matches("atmPin")
    assert pins.matches("SESSION_KEY")
    assert pins.matches("sessionKey")
    assert pins.matches("SESSIONKEY")
    assert not pins.matches("PINNED")
    assert not pins.matches("PIN_FILE")
    assert not pins.matches("DB_PASSWORD")
    # A word declared sensitive is never a qualifier that clears it.
    assert sensitive_names(("name",)).matches("USER_NAME")
    assert RuleSettings(sensitive_names=("pin",)).is_sensitive_name("ATM_PIN")
    assert RuleSettings().is_sensitive_name("DB_PASSWORD")
    assert not RuleSettings().is_sensitive_name("TOKEN_TTL")


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("session_id", True),
        ("sessionId", True),
        ("SESSIONID", True),
        ("card_number", True),
        ("Set-Cookie", True),
        ("pwd", True),
        ("token_type", False),
        ("secret_name", False),
        ("tokenizer", False),
    ],
)
def test_log_keys_use_the_same_rule_with_log_words(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_patterns_use_only_constructs_re2_and_python_share() -> None:
    """No look-around, back-references, \\ escapes or `.`; `$` only where Python's
    "before a final newline" cannot change the answer (after a non-letter option)."""
    for pattern in (SENSITIVE_NAME_PATTERN, QUALIFIED_NAME_PATTERN):
        # Without `=`, `!`, `<`, `\\`, `.` and `'` there can be no look-around, escape,
        # back-reference, any-character or end of the CEL string literal.
        assert re.fullmatch(r"[A-Za-z0-9_|()\[\]^$?*:-]+", pattern), pattern


@pytest.fixture(scope="module")
def re2(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[list[str], list[str]], list[list[bool]]]:
    """Match with Go's regexp, the RE2 the apiserver's CEL runs (skipped without Go)."""
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain is not installed")
    binary = tmp_path_factory.mktemp("re2") / "re2"
    subprocess.run(
        [go, "build", "-o", str(binary), str(RE2_MAIN)],
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "GO111MODULE": "off", "GOFLAGS": ""},
    )

    def run(patterns: list[str], checked: list[str]) -> list[list[bool]]:
        request = json.dumps({"patterns": patterns, "names": checked})
        done = subprocess.run(
            [str(binary)], input=request, capture_output=True, text=True, check=True, timeout=60
        )
        result: list[list[bool]] = json.loads(done.stdout)
        return result

    return run


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(names(), min_size=50, max_size=400))
def test_re2_and_python_agree(
    re2: Callable[[list[str], list[str]], list[list[bool]]], batch: list[str]
) -> None:
    patterns = [SENSITIVE_NAME_PATTERN, QUALIFIED_NAME_PATTERN]
    go_sensitive, go_qualified = re2(patterns, batch)
    for name, sensitive, qualified in zip(batch, go_sensitive, go_qualified, strict=True):
        assert (re.search(patterns[0], name) is not None) == sensitive, name
        assert (re.search(patterns[1], name) is not None) == qualified, name
        assert is_sensitive_name(name) == (sensitive and not qualified), name


# ------------------------------------------------------- one verdict, CRD / render / validate


def _crd_patterns() -> tuple[str, str]:
    """The two patterns in the generated CRD's PR-LG-003 rule (what the apiserver runs)."""
    rules = openapi_schema()["properties"]["spec"]["x-kubernetes-validations"]
    (rule,) = [r["rule"] for r in rules if r["message"].startswith("PR-LG-003")]
    found = re.fullmatch(
        r".*e\.name\.matches\('([^']*)'\) && !e\.name\.matches\('([^']*)'\)\)", rule
    )
    assert found, rule
    return found[1], found[2]


def test_the_crd_rule_is_the_module_s() -> None:
    assert _crd_patterns() == (SENSITIVE_NAME_PATTERN, QUALIFIED_NAME_PATTERN)
    rules = openapi_schema()["properties"]["spec"]["x-kubernetes-validations"]
    assert any(DEFAULT.cel("e.name") in rule["rule"] for rule in rules)


def _crd_verdict(name: str) -> bool:
    sensitive, qualified = _crd_patterns()
    return re.search(sensitive, name) is not None and re.search(qualified, name) is None


def _render_verdict(name: str) -> bool:
    service = {
        "apiVersion": "prodready.io/v1alpha1",
        "kind": "ProductionService",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "image": "ghcr.io/example/api:1.0",
            "environment": "dev",
            "env": [{"name": name, "value": "3600"}],
        },
    }
    try:
        render(service)
    except SpecError as error:
        message = str(error)
    else:
        return False
    assert "PR-LG-003" in message, message
    return True


def _validate_verdict(name: str) -> bool:
    deployment: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "shop"},
        "spec": {
            "selector": {"matchLabels": {"app": "api"}},
            "template": {
                "metadata": {"labels": {"app": "api"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "ghcr.io/example/api:1.0",
                            "env": [{"name": name, "value": "3600"}],
                        }
                    ]
                },
            },
        },
    }
    (report,) = evaluate([deployment], environment="dev")
    lg003 = [f for f in report.findings if f.rule_id == "PR-LG-003"]
    assert lg003, "PR-LG-003 judged nothing"
    return any(f.failed for f in lg003)


AGREEMENT_CASES = [
    ("TOKEN_TTL", False),
    ("DB_PASSWORD_FILE", False),
    ("SECRET_NAME", False),
    ("DB_PASSWORD", True),
    ("apiToken", True),
]


@pytest.mark.parametrize(("name", "sensitive"), AGREEMENT_CASES)
def test_crd_render_and_validate_agree(name: str, sensitive: bool) -> None:
    verdicts = {
        "CRD": _crd_verdict(name),
        "render": _render_verdict(name),
        "validate": _validate_verdict(name),
        "log redaction": redact({"name": name, "value": "3600"})["value"] == REDACTED,
    }
    assert verdicts == dict.fromkeys(verdicts, sensitive)


def test_the_crd_patterns_under_re2(
    re2: Callable[[list[str], list[str]], list[list[bool]]],
) -> None:
    """The apiserver's verdict on the named cases, by the regexp engine it runs."""
    checked = [name for name, _ in AGREEMENT_CASES] + ["dbPassword", "PASSWORDFile", "TOKENTtl"]
    go_sensitive, go_qualified = re2(list(_crd_patterns()), checked)
    verdicts = {
        name: s and not q for name, s, q in zip(checked, go_sensitive, go_qualified, strict=True)
    }
    assert verdicts == {name: is_sensitive_name(name) for name in checked}
    assert [verdicts[name] for name, _ in AGREEMENT_CASES] == [s for _, s in AGREEMENT_CASES]

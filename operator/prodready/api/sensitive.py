"""Which variable names look like they hold a secret: the one definition (PR-LG-003).

The CRD's CEL rule, the renderer (through the pydantic models), the checklist rules and
the log redactor all ask this module, so a name gets one verdict wherever it is judged.

A name is sensitive when it contains a sensitive word (`password`, `token`, `api key`, …)
standing as a word of its own, and its last word is not a qualifier that makes it about a
secret rather than the secret itself: `DB_PASSWORD_FILE` is a path, `TOKEN_TTL` a
duration, `SECRET_NAME` the name of a Secret, `TOKEN_URL` an endpoint (a URL carrying
`user:pass@` is caught by its value, in any variable, by the rule and the redactor).
`_ID` is not a qualifier: `AWS_ACCESS_KEY_ID` is half a credential.

Words are matched case-insensitively and delimited at a non-letter (`_`, `.`, `-`, a
digit, the ends of the name) or at a case change: `dbPassword` (lower to upper),
`DBPassword` and `PASSWORDFile` (an upper-case run before a capitalised word). So
`SECRETARY` and `TOKENIZER` are not sensitive. Compound words may have one separator
between their halves (`API_KEY`, `APIKEY`, `apiKey`).

The definition is written as two RE2 patterns (no look-around, no back-references), used
as they are by CEL's `matches()` in the apiserver and by Python's `re`: sensitive when
`sensitive_pattern` matches and `qualified_pattern` does not. Both engines agree on
every ASCII name with these constructs (a test runs both on generated names); variable
names are ASCII in Kubernetes.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

# Whole words that mark a variable as secret. Compounds are listed joined; `_COMPOUNDS`
# says where a separator may fall. This tuple is also the default `sensitive_names` of
# the rules configuration.
SENSITIVE_WORDS: Final = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "apikey",
    "authorization",
    "creditcard",
    "privatekey",
    "accesskey",
    "credential",
    "credentials",
)
_COMPOUNDS: Final = {
    "apikey": ("api", "key"),
    "creditcard": ("credit", "card"),
    "privatekey": ("private", "key"),
    "accesskey": ("access", "key"),
    "passphrase": ("pass", "phrase"),
}

# A last word that makes the name refer to a secret rather than hold one: where it is
# (file, path, name, ref), how long it lives (ttl, timeout, units), how it is used (type,
# mode, issuer, …) and where it is fetched (url, endpoint). Left out on purpose: `id`
# (AWS_ACCESS_KEY_ID) and `header` (AUTHORIZATION_HEADER often holds `Bearer …`).
QUALIFIER_WORDS: Final = (
    "file",
    "files",
    "path",
    "dir",
    "name",
    "names",
    "ref",
    "refs",
    "ttl",
    "timeout",
    "expiry",
    "expires",
    "expiration",
    "seconds",
    "minutes",
    "hours",
    "days",
    "length",
    "count",
    "url",
    "uri",
    "endpoint",
    "type",
    "mode",
    "enabled",
    "issuer",
    "audience",
    "algorithm",
)

_NOT_LETTER: Final = "[^A-Za-z]"
_SEPARATOR: Final = "[^A-Za-z0-9]?"
_NEVER: Final = "x^"  # matches nothing, in RE2 and Python alike


def _any_case(text: str) -> str:
    return f"(?i:{text})" if text else ""


def _parts(word: str) -> tuple[str, ...]:
    """A word's halves (where a separator may fall), lower-case letters and digits only."""
    normalised = word.lower()
    if normalised in _COMPOUNDS:
        return _COMPOUNDS[normalised]
    return tuple(part for part in re.split(r"[^a-z0-9]+", normalised) if part)


def _head(first: str, second: str, *, at_start: bool) -> str:
    """RE2 for a word's first two letters where a word may begin (`at_start`: or at ^)."""
    edge = f"(^|{_NOT_LETTER})" if at_start else _NOT_LETTER
    either = f"[{second}{second.upper()}]"
    up = first.upper()
    # After a non-letter in any case; after a lower-case letter capitalised (dbPassword);
    # after an upper-case run as a capitalised word (DBPassword).
    return f"({edge}[{first}{up}]{either}|[a-z]{up}{either}|[A-Z]{up}{second})"


def _tail(last: str) -> str:
    """RE2 for a word's last letter where a word may end."""
    # Before a non-letter or the end in any case; lower-case before a capital (tokenTtl);
    # upper-case before a capitalised word (TOKENTtl).
    return f"({last}({_NOT_LETTER}|[A-Z]|$)|{last.upper()}({_NOT_LETTER}|[A-Z][a-z]|$))"


def _splittable(parts: tuple[str, ...]) -> bool:
    """Whether a word has a head (two letters), a body and a last letter of its own."""
    first_part, last_part = parts[0], parts[-1]
    return (
        len(first_part) >= 2
        and len(last_part) >= 2
        and len("".join(parts)) >= 3
        and first_part[:2].isalpha()
        and last_part[-1].isalpha()
    )


def _body(parts: tuple[str, ...]) -> str:
    """A word without its first two and last letters, separators allowed between parts."""
    first, *rest = parts
    middle = [first[2:-1]] if not rest else [first[2:], *rest[:-1], rest[-1][:-1]]
    return _SEPARATOR.join(_any_case(part) for part in middle)


def _alternatives(options: list[str]) -> str:
    return options[0] if len(options) == 1 else "(" + "|".join(options) + ")"


def _sensitive_pattern(words: list[tuple[str, ...]]) -> str:
    """RE2: one of `words` stands as a word somewhere in the name.

    Words are grouped by last letter and then by first two, so each tail and head is
    spelled once per group: the apiserver prices a regex by its length.
    """
    groups: dict[str, dict[str, list[tuple[str, ...]]]] = {}
    short: list[str] = []
    for parts in words:
        if _splittable(parts):
            head, last = parts[0][:2], parts[-1][-1]
            groups.setdefault(last, {}).setdefault(head, []).append(parts)
        else:
            # A short word, or one with digits at an edge: delimited by non-letters only.
            body = _SEPARATOR.join(_any_case(part) for part in parts)
            short.append(f"(^|{_NOT_LETTER}){body}({_NOT_LETTER}|$)")
    options = []
    for last, heads in groups.items():
        starts = []
        for head, members in heads.items():
            if all(len(parts) == 1 for parts in members):
                bodies = _any_case("|".join(parts[0][2:-1] for parts in members))
            else:
                bodies = _alternatives([_body(parts) for parts in members])
            starts.append(_head(head[0], head[1], at_start=True) + bodies)
        options.append(_alternatives(starts) + _tail(last))
    return "|".join(options + short) or _NEVER


def _qualified_pattern(words: Iterable[str]) -> str:
    """RE2: one of `words` is the last word of a longer name (trailing punctuation ok)."""
    words = list(words)
    if not words:
        return _NEVER
    by_first: dict[str, list[str]] = {}
    by_two: dict[str, list[str]] = {}
    for word in words:
        by_first.setdefault(word[0], []).append(word[1:])
        by_two.setdefault(word[:2], []).append(word[2:])
    capitalised = "|".join(
        f"{first.upper()}{_any_case('|'.join(rests))}" for first, rests in by_first.items()
    )
    after_capitals = "|".join(
        f"{two[0].upper()}{two[1]}{_any_case('|'.join(rests))}" for two, rests in by_two.items()
    )
    # The same three word starts as `_head`: after a non-letter in any case, capitalised
    # after a lower-case letter, capitalised (second letter lower) after a capital.
    return (
        f"({_NOT_LETTER}(?i:{'|'.join(words)})|[a-z]({capitalised})|[A-Z]({after_capitals}))"
        "[^A-Za-z0-9]*$"
    )


@dataclass(frozen=True, slots=True)
class SensitiveNames:
    """The sensitive-name verdict for one vocabulary (the default one, or a configured one)."""

    words: tuple[str, ...]
    sensitive_pattern: str = field(init=False)
    """RE2: a sensitive word stands as a word somewhere in the name."""
    qualified_pattern: str = field(init=False)
    """RE2: the name's last word is a qualifier (`_FILE`, `_TTL`, `_NAME`, …)."""
    _sensitive: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _qualified: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _verdict: Callable[[str], bool] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        word_parts = dict.fromkeys(parts for word in self.words if (parts := _parts(word)))
        # A word someone declared sensitive is never a qualifier.
        declared = {"".join(parts) for parts in word_parts}
        qualifiers = [word for word in QUALIFIER_WORDS if word not in declared]
        sensitive = _sensitive_pattern(list(word_parts))
        qualified = _qualified_pattern(qualifiers)
        object.__setattr__(self, "sensitive_pattern", sensitive)
        object.__setattr__(self, "qualified_pattern", qualified)
        object.__setattr__(self, "_sensitive", re.compile(sensitive))
        object.__setattr__(self, "_qualified", re.compile(qualified))
        # Variable names recur in every container of every workload; the cache is
        # bounded, so names an object makes up cannot grow it.
        object.__setattr__(self, "_verdict", functools.lru_cache(maxsize=8192)(self._search))

    def matches(self, name: str) -> bool:
        """True when `name` looks like it carries a secret."""
        return self._verdict(name)

    def _search(self, name: str) -> bool:
        return self._sensitive.search(name) is not None and self._qualified.search(name) is None

    def cel(self, name: str) -> str:
        """The same verdict as a CEL expression over the string expression `name`."""
        return (
            f"{name}.matches('{self.sensitive_pattern}') && "
            f"!{name}.matches('{self.qualified_pattern}')"
        )


@functools.lru_cache(maxsize=32)
def sensitive_names(words: tuple[str, ...]) -> SensitiveNames:
    """The verdict for a vocabulary (cached: the rules build one per configuration)."""
    return SensitiveNames(words=words)


DEFAULT: Final = sensitive_names(SENSITIVE_WORDS)

SENSITIVE_NAME_PATTERN: Final = DEFAULT.sensitive_pattern
"""RE2 over the name as written: a sensitive word stands as a word in it."""
QUALIFIED_NAME_PATTERN: Final = DEFAULT.qualified_pattern
"""RE2 over the name as written: its last word makes it about a secret, not a secret."""


def is_sensitive_name(name: str) -> bool:
    """True when a variable name looks like it carries a secret (the default vocabulary)."""
    return DEFAULT.matches(name)

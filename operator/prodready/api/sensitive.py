"""Which environment variable names look like they hold a secret (PR-LG-003).

One definition serves two checkers: `SENSITIVE_NAME_PATTERN` is RE2-compatible and is
what the CRD's CEL rule matches against the lower-cased name, and `is_sensitive_name`
(used by the renderer and the pydantic models) matches the same pattern and also splits
camelCase, which CEL's regular expressions cannot do. So the Python check accepts nothing
the apiserver rejects, and rejects a little more (`dbPassword`).
"""

from __future__ import annotations

import itertools
import re
from typing import Final

# Whole name parts that mark a variable as secret. Pairs that are often written as one
# word (`API_KEY` / `APIKEY`) are listed joined; the pattern allows a separator between.
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
_SPLITTABLE: Final = {
    "apikey": ("api", "key"),
    "creditcard": ("credit", "card"),
    "privatekey": ("private", "key"),
    "accesskey": ("access", "key"),
}


def _word_pattern(word: str) -> str:
    parts = _SPLITTABLE.get(word)
    return "[^a-z0-9]?".join(parts) if parts else word


SENSITIVE_NAME_PATTERN: Final = (
    "(^|[^a-z0-9])(" + "|".join(_word_pattern(word) for word in SENSITIVE_WORDS) + ")([^a-z0-9]|$)"
)
"""RE2 pattern over the lower-cased name; a match means the name looks sensitive."""

_SENSITIVE_RE: Final = re.compile(SENSITIVE_NAME_PATTERN)
# camelCase and digit boundaries: `dbPassword` -> db, Password; `APIKey` -> API, Key.
_NAME_PART_RE: Final = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def name_parts(name: str) -> list[str]:
    """Split a variable name into lower-case words at separators, case changes and digits."""
    return [part.lower() for part in _NAME_PART_RE.findall(name)]


def is_sensitive_name(name: str) -> bool:
    """True when a variable name looks like it carries a secret (password, token, …)."""
    if _SENSITIVE_RE.search(name.lower()):
        return True
    parts = name_parts(name)
    joined_pairs = (a + b for a, b in itertools.pairwise(parts))
    return any(part in SENSITIVE_WORDS for part in (*parts, *joined_pairs))

"""prodready: production-readiness enforced by the cluster."""

from __future__ import annotations

import functools


def __getattr__(name: str) -> str:
    # `__version__` is looked up on first use: importlib.metadata costs more to import
    # than a small `prodready validate` run takes to check its input.
    if name == "__version__":
        return _version()
    raise AttributeError(f"module 'prodready' has no attribute {name!r}")


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prodready")
    except PackageNotFoundError:  # pragma: no cover - only when run from a bare source tree
        return "0.0.0"


__all__ = ["__version__"]

"""prodready: production-readiness enforced by the cluster."""

# Written here as in pyproject.toml, the Dockerfile and the chart (tests hold them equal):
# asking importlib.metadata costs more to import and look up than a small
# `prodready validate` run takes to check its input.
__version__ = "0.1.0"

__all__ = ["__version__"]

"""referenced_secrets: what the controller checks for existence (PR-CF-002)."""

from __future__ import annotations

from typing import Any

from prodready.api import API_VERSION, KIND, parse_production_service
from prodready.render import SecretReference, referenced_secrets


def ps(**spec: Any) -> Any:
    """A parsed ProductionService with `spec` overrides."""
    return parse_production_service(
        {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "metadata": {"name": "api"},
            "spec": {"image": "ghcr.io/example/api:1.0", "environment": "dev", **spec},
        }
    )


def test_no_secrets() -> None:
    assert referenced_secrets(ps()) == []


def test_every_reference_once_with_its_keys_sorted_by_name() -> None:
    references = referenced_secrets(
        ps(
            secretEnv=[
                {"name": "DATABASE_URL", "secretName": "app", "key": "database-url"},
                {"name": "REDIS_URL", "secretName": "app", "key": "redis-url"},
                {"name": "EXTRA", "secretName": "extra", "key": "k", "optional": True},
                {"name": "SECRET_KEY", "secretName": "app", "key": "database-url"},
            ],
            envFromSecrets=[{"secretName": "common"}, {"secretName": "extra"}],
            exposure={"host": "api.example.com", "tlsSecretName": "api-tls"},
            pod={"imagePullSecrets": ["registry"]},
        )
    )
    assert references == [
        SecretReference("api-tls", ("tls.crt", "tls.key"), optional=False, usages=("tls",)),
        SecretReference("app", ("database-url", "redis-url"), optional=False, usages=("env",)),
        SecretReference("common", (), optional=False, usages=("envFrom",)),
        # Optional for one variable, required as a whole: it must exist.
        SecretReference("extra", ("k",), optional=False, usages=("env", "envFrom")),
        SecretReference("registry", (), optional=True, usages=("imagePull",)),
    ]


def test_optional_only_when_every_use_is() -> None:
    (reference,) = referenced_secrets(
        ps(
            secretEnv=[{"name": "A", "secretName": "s", "key": "a", "optional": True}],
            envFromSecrets=[{"secretName": "s", "optional": True}],
        )
    )
    assert reference.optional

"""Which Secrets a ProductionService refers to, for the controller's existence check."""

from __future__ import annotations

from dataclasses import dataclass, field

from prodready.api.models import ProductionService

USAGE_ENV = "env"
USAGE_ENV_FROM = "envFrom"
USAGE_TLS = "tls"
USAGE_IMAGE_PULL = "imagePull"


@dataclass(frozen=True)
class SecretReference:
    """A Secret the rendered objects refer to (PR-CF-002).

    `keys` are the keys read one by one (empty when only whole-Secret uses refer to it);
    `optional` is True only when every use tolerates its absence; `usages` says what
    refers to it: env, envFrom, tls (the Ingress; cert-manager may create it later) or
    imagePull.
    """

    name: str
    keys: tuple[str, ...] = ()
    optional: bool = False
    usages: tuple[str, ...] = field(default=())


@dataclass
class _Accumulator:
    keys: set[str] = field(default_factory=set)
    optional: bool = True
    usages: set[str] = field(default_factory=set)

    def add(self, usage: str, *, optional: bool, keys: tuple[str, ...] = ()) -> None:
        self.keys.update(keys)
        self.optional = self.optional and optional
        self.usages.add(usage)


def referenced_secrets(ps: ProductionService) -> list[SecretReference]:
    """Every Secret referenced, with the keys read, sorted by name; never any value."""
    found: dict[str, _Accumulator] = {}

    def use(name: str, usage: str, *, optional: bool, keys: tuple[str, ...] = ()) -> None:
        found.setdefault(name, _Accumulator()).add(usage, optional=optional, keys=keys)

    for variable in ps.spec.secret_env:
        use(variable.secret_name, USAGE_ENV, optional=variable.optional, keys=(variable.key,))
    for source in ps.spec.env_from_secrets:
        use(source.secret_name, USAGE_ENV_FROM, optional=source.optional)
    exposure = ps.spec.exposure
    if exposure is not None and exposure.tls_secret_name:
        use(exposure.tls_secret_name, USAGE_TLS, optional=False, keys=("tls.crt", "tls.key"))
    for name in ps.spec.pod.image_pull_secrets:
        # The kubelet tries the next pull secret when one is missing.
        use(name, USAGE_IMAGE_PULL, optional=True)
    return [
        SecretReference(
            name=name,
            keys=tuple(sorted(entry.keys)),
            optional=entry.optional,
            usages=tuple(sorted(entry.usages)),
        )
        for name, entry in sorted(found.items())
    ]

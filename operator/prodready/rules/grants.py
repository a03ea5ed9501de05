"""What a ProductionService may ask for that only the platform team can allow: pure, no I/O.

A ProductionService makes the operator create an Ingress and pods on the author's behalf.
Some of what it can ask for is not covered by any Kubernetes permission of the author —
which host names the cluster's ingress controller serves, which of the controller's
annotations it obeys (`server-snippet` runs arbitrary configuration), which taints pods
tolerate and which nodes they select (the control plane's), which ServiceAccount the pods
run as. The platform team sets an allow-list for each (`PRODREADY_ALLOWED_*`, chart values
`allowed.*`) and `check` lists every part of a spec outside them. The admission webhook
denies such a spec (`/authorize`), and the reconciler can refuse it too when the webhook
was bypassed: one function, the same answer.

Patterns are globs: `*` matches any run of characters (dots and slashes included) and `?`
one character, but neither ever matches the `*` of a wildcard Ingress host — so the
default `*` admits every concrete host and no wildcard host. To allow a wildcard host, list
it with its star in brackets, the usual glob escape: `[*].apps.example.com`. In host
patterns, `{namespace}` stands for the ProductionService's namespace
(`*.{namespace}.apps.example.com` delegates one subdomain per namespace).

* Ingress hosts: `spec.exposure.host` must match a pattern.
* Ingress annotations: every key of `spec.exposure.annotations` must match a pattern.
* Tolerations: entries `KEY` or `KEY:EFFECT` (KEY a glob; no effect: any effect). A
  toleration with no key tolerates every taint and needs an entry whose KEY is `*`; one
  with no effect tolerates every effect and needs an entry without one.
* Node selectors: entries `KEY` (any value) or `KEY=VALUE`, both globs.
* ServiceAccounts: `spec.pod.serviceAccountName`, when set, must match a pattern (the
  webhook also requires the author may create pods: see `prodready.webhook.authorization`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Protocol

from prodready.api.models import ProductionService, Toleration

__all__ = [
    "TOLERATION_EFFECTS",
    "AllowLists",
    "GrantPolicy",
    "GrantViolation",
    "check",
    "pattern_matches",
]

TOLERATION_EFFECTS: Final = ("NoSchedule", "PreferNoSchedule", "NoExecute")
NAMESPACE_PLACEHOLDER: Final = "{namespace}"
_FIX: Final = "ask the platform team to allow it, or remove it"


class AllowLists(Protocol):
    """Where the allow-lists come from: the operator's Settings have these attributes."""

    @property
    def allowed_ingress_hosts(self) -> Sequence[str]: ...
    @property
    def allowed_ingress_annotations(self) -> Sequence[str]: ...
    @property
    def allowed_tolerations(self) -> Sequence[str]: ...
    @property
    def allowed_node_selectors(self) -> Sequence[str]: ...
    @property
    def allowed_service_accounts(self) -> Sequence[str]: ...


@dataclass(frozen=True, kw_only=True)
class GrantPolicy:
    """The platform team's allow-lists (see the module docstring for the entry formats)."""

    ingress_hosts: tuple[str, ...]
    ingress_annotations: tuple[str, ...]
    tolerations: tuple[str, ...]
    node_selectors: tuple[str, ...]
    service_accounts: tuple[str, ...]

    @classmethod
    def from_settings(cls, settings: AllowLists) -> GrantPolicy:
        """The allow-lists of the operator's settings (`PRODREADY_ALLOWED_*`)."""
        return cls(
            ingress_hosts=tuple(settings.allowed_ingress_hosts),
            ingress_annotations=tuple(settings.allowed_ingress_annotations),
            tolerations=tuple(settings.allowed_tolerations),
            node_selectors=tuple(settings.allowed_node_selectors),
            service_accounts=tuple(settings.allowed_service_accounts),
        )


@dataclass(frozen=True, kw_only=True)
class GrantViolation:
    """One part of a spec outside an allow-list."""

    path: str
    """The field, e.g. `spec.exposure.annotations["nginx.ingress.kubernetes.io/server-snippet"]`."""
    what: str
    """What is not allowed, e.g. `annotation "nginx.ingress.kubernetes.io/server-snippet"`."""
    allow_list: str
    """Which allow-list, as its setting and chart value."""
    hint: str = ""

    @property
    def message(self) -> str:
        """One sentence naming the field, the value and the allow-list."""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.path}: {self.what} is not allowed by the platform's {self.allow_list}{hint}"


_HOSTS: Final = "Ingress hosts (PRODREADY_ALLOWED_INGRESS_HOSTS, chart allowed.ingressHosts)"
_ANNOTATIONS: Final = (
    "Ingress annotations (PRODREADY_ALLOWED_INGRESS_ANNOTATIONS, chart allowed.ingressAnnotations)"
)
_TOLERATIONS: Final = "tolerations (PRODREADY_ALLOWED_TOLERATIONS, chart allowed.tolerations)"
_NODE_SELECTORS: Final = (
    "node selectors (PRODREADY_ALLOWED_NODE_SELECTORS, chart allowed.nodeSelectors)"
)
_SERVICE_ACCOUNTS: Final = (
    "ServiceAccounts (PRODREADY_ALLOWED_SERVICE_ACCOUNTS, chart allowed.serviceAccounts)"
)


@functools.lru_cache(maxsize=1024)
def _compile(pattern: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("[*]", index):
            parts.append(r"\*")
            index += 3
            continue
        character = pattern[index]
        if character == "*":
            parts.append(r"[^*]*")
        elif character == "?":
            parts.append(r"[^*]")
        else:
            parts.append(re.escape(character))
        index += 1
    return re.compile("".join(parts), re.DOTALL)


def pattern_matches(pattern: str, value: str) -> bool:
    """Whether `value` matches the glob `pattern` (`*`, `?`, and `[*]` for a literal star)."""
    return _compile(pattern).fullmatch(value) is not None


def _any(patterns: Sequence[str], value: str) -> bool:
    return any(pattern_matches(pattern, value) for pattern in patterns)


def _split(entry: str, separator: str) -> tuple[str, str | None]:
    key, found, rest = entry.partition(separator)
    return key, (rest if found else None)


def _covers_every_key(pattern: str) -> bool:
    return pattern != "" and pattern.strip("*") == ""


def _toleration_allowed(toleration: Toleration, entries: Sequence[str]) -> bool:
    for entry in entries:
        key_pattern, effect = _split(entry, ":")
        if effect is not None and effect != toleration.effect:
            continue  # the entry allows one effect; the toleration names another, or all
        if toleration.key is None:
            if _covers_every_key(key_pattern):
                return True
        elif pattern_matches(key_pattern, toleration.key):
            return True
    return False


def _describe_toleration(toleration: Toleration) -> str:
    effect = toleration.effect or "any effect"
    if toleration.key is None:
        return (
            f"a toleration with no key ({toleration.operator}, {effect}), which tolerates "
            "every taint, the control plane's included,"
        )
    return f'toleration of taint "{toleration.key}" ({effect})'


def _node_selector_allowed(key: str, value: str, entries: Sequence[str]) -> bool:
    for entry in entries:
        key_pattern, value_pattern = _split(entry, "=")
        if pattern_matches(key_pattern, key) and (
            value_pattern is None or pattern_matches(value_pattern, value)
        ):
            return True
    return False


def _check_host(host: str, policy: GrantPolicy, namespace: str) -> GrantViolation | None:
    patterns = [
        pattern.replace(NAMESPACE_PLACEHOLDER, namespace) for pattern in policy.ingress_hosts
    ]
    if _any(patterns, host):
        return None
    if host.startswith("*."):
        return GrantViolation(
            path="spec.exposure.host",
            what=f'wildcard host "{host}"',
            allow_list=_HOSTS,
            hint=f"a wildcard host is allowed only when listed as [*]{host[1:]}",
        )
    return GrantViolation(
        path="spec.exposure.host", what=f'host "{host}"', allow_list=_HOSTS, hint=_FIX
    )


def check(
    ps: ProductionService, policy: GrantPolicy, *, namespace: str | None = None
) -> list[GrantViolation]:
    """Every part of `ps` outside the platform's allow-lists, in spec order (empty: none).

    `namespace` fills `{namespace}` in host patterns; default: the object's own.
    """
    namespace = namespace or ps.metadata.namespace or ""
    spec = ps.spec
    violations: list[GrantViolation] = []
    exposure = spec.exposure
    if exposure is not None:
        host = _check_host(exposure.host, policy, namespace)
        if host is not None:
            violations.append(host)
        for key in exposure.annotations:
            if not _any(policy.ingress_annotations, key):
                violations.append(
                    GrantViolation(
                        path=f'spec.exposure.annotations["{key}"]',
                        what=f'Ingress annotation "{key}"',
                        allow_list=_ANNOTATIONS,
                        hint=_FIX,
                    )
                )
    pod = spec.pod
    if pod.service_account_name is not None and not _any(
        policy.service_accounts, pod.service_account_name
    ):
        violations.append(
            GrantViolation(
                path="spec.pod.serviceAccountName",
                what=f'ServiceAccount "{pod.service_account_name}"',
                allow_list=_SERVICE_ACCOUNTS,
                hint=_FIX,
            )
        )
    for index, toleration in enumerate(pod.tolerations):
        if not _toleration_allowed(toleration, policy.tolerations):
            violations.append(
                GrantViolation(
                    path=f"spec.pod.tolerations[{index}]",
                    what=_describe_toleration(toleration),
                    allow_list=_TOLERATIONS,
                    hint=_FIX,
                )
            )
    for key, value in pod.node_selector.items():
        if not _node_selector_allowed(key, value, policy.node_selectors):
            violations.append(
                GrantViolation(
                    path=f'spec.pod.nodeSelector["{key}"]',
                    what=f'node selector "{key}={value}"',
                    allow_list=_NODE_SELECTORS,
                    hint=_FIX,
                )
            )
    return violations

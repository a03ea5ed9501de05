"""A ProductionService grants nothing its author lacks: the webhook's `/authorize` answer.

The operator creates a ProductionService's children with its own permissions, so without
this check anyone allowed to create ProductionServices could have the operator create
Deployments, Ingresses and pods they may not create themselves, mount Secrets they may not
read, or run pods as any ServiceAccount. At admission the apiserver tells the webhook who
sent the request (`userInfo`), and this module asks the apiserver, through
SubjectAccessReviews for that user, whether the author could do themselves what the spec
implies (`required_access`):

* `create` each kind the spec renders among Deployments, Services, Ingresses,
  PodDisruptionBudgets and HorizontalPodAutoscalers, in the namespace (the ServiceMonitor
  and PrometheusRule only describe how to watch the service; requiring them would deny
  authors of clusters whose `edit` role does not aggregate the monitoring CRDs);
* `get` each Secret the spec refers to, by name (`render.referenced_secrets`);
* `create pods` in the namespace for a named ServiceAccount: Kubernetes has no `use` verb
  for ServiceAccounts, and whoever may create pods may run them as any ServiceAccount of
  the namespace; the platform's allow-list (`rules.grants`) narrows that.

Then the allow-lists the platform team sets for what no permission covers (Ingress hosts
and annotations, tolerations, node selectors: `prodready.rules.grants.check`). A denial
names each missing permission or allow-list.

What is decided, and why:

* CREATE and UPDATE are checked; an UPDATE that leaves `spec` unchanged (a label, an
  annotation) is allowed: it asks for nothing new. Any spec change is checked whole,
  against the new spec only: simple, and never weaker than a diff.
* A spec that does not parse is allowed here: the operator renders nothing from it (the
  same `render.parse`), and the checklist's entry reports the error.
* Fail closed: a SubjectAccessReview that fails or does not answer within the deadline
  denies the request with a message saying so; it is never allowed unchecked. The
  webhook configuration's entry for this path is `failurePolicy: Fail` for the same reason.
* Answers are cached for a few seconds per (identity, verb, resource, namespace, name), so
  a `kubectl apply` retried or a CI pipeline applying many services costs a handful of
  reviews; the reviews of one request run concurrently, at most `concurrency` at a time.

The reviews are sent from the webhook's own thread and event loop (`WebhookServer`): the
`KubeClient` is created on that loop at the first review (an aiohttp session belongs to
the loop it was created on) and closed with the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from prodready import render
from prodready.api.errors import SpecError
from prodready.api.models import ProductionService
from prodready.kube.client import ApiError, KubeClient
from prodready.rules import grants
from prodready.webhook.admission import EVALUATED_OPERATIONS, AdmissionRequest, UserInfo

__all__ = [
    "SUBJECT_ACCESS_REVIEW_PATH",
    "AccessCheck",
    "AuthorizationUnavailableError",
    "Authorizer",
    "required_access",
    "subject_access_review",
]

logger = logging.getLogger("prodready.webhook")

SUBJECT_ACCESS_REVIEW_PATH: Final = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
KIND: Final = "ProductionService"
CLOSING: Final = "a ProductionService cannot grant what its author lacks"
# The children whose creation the author must be allowed (see the module docstring).
AUTHORIZED_KINDS: Final = frozenset(
    {"Deployment", "Service", "Ingress", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
)
_GROUP_RESOURCE: Final = {child.kind: (child.group, child.plural) for child in render.CHILD_KINDS}


@dataclass(frozen=True, kw_only=True)
class AccessCheck:
    """One permission the author must have: a SubjectAccessReview's resource attributes."""

    verb: str
    group: str
    resource: str
    namespace: str
    name: str = ""
    reason: str
    """Why the spec needs it: the field, or what the operator would create."""

    @property
    def resource_text(self) -> str:
        """`deployments.apps`, `secrets "db-creds"`: the resource as kubectl spells it."""
        text = f"{self.resource}.{self.group}" if self.group else self.resource
        return f'{text} "{self.name}"' if self.name else text

    def denial(self, user: UserInfo) -> str:
        """The sentence a denial gives for this missing permission."""
        who = user.username or "(unknown user)"
        return (
            f'user "{who}" may not {self.verb} {self.resource_text} in namespace '
            f'"{self.namespace}" ({self.reason})'
        )

    def attributes(self) -> dict[str, str]:
        """The SubjectAccessReview's `resourceAttributes`."""
        attributes = {
            "namespace": self.namespace,
            "verb": self.verb,
            "group": self.group,
            "resource": self.resource,
        }
        if self.name:
            attributes["name"] = self.name
        return attributes


def _secret_fields(ps: ProductionService) -> dict[str, str]:
    """The first field naming each Secret (for messages); the names are checked against
    `render.referenced_secrets`, the one definition of what a spec refers to."""
    spec = ps.spec
    fields: dict[str, str] = {}
    for index, variable in enumerate(spec.secret_env):
        fields.setdefault(variable.secret_name, f"spec.secretEnv[{index}].secretName")
    for index, source in enumerate(spec.env_from_secrets):
        fields.setdefault(source.secret_name, f"spec.envFromSecrets[{index}].secretName")
    if spec.exposure is not None and spec.exposure.tls_secret_name:
        fields.setdefault(spec.exposure.tls_secret_name, "spec.exposure.tlsSecretName")
    for index, name in enumerate(spec.pod.image_pull_secrets):
        fields.setdefault(name, f"spec.pod.imagePullSecrets[{index}]")
    return fields


def required_access(ps: ProductionService, namespace: str) -> list[AccessCheck]:
    """Every permission the author of `ps` must have in `namespace`, without duplicates."""
    checks: list[AccessCheck] = []
    for child in render.render_production_service(ps):
        kind = str(child["kind"])
        if kind not in AUTHORIZED_KINDS:
            continue
        group, plural = _GROUP_RESOURCE[kind]
        checks.append(
            AccessCheck(
                verb="create",
                group=group,
                resource=plural,
                namespace=namespace,
                reason=f"the ProductionService creates a {kind}",
            )
        )
    fields = _secret_fields(ps)
    for reference in render.referenced_secrets(ps):
        checks.append(
            AccessCheck(
                verb="get",
                group="",
                resource="secrets",
                namespace=namespace,
                name=reference.name,
                reason=fields.get(reference.name, "spec"),
            )
        )
    account = ps.spec.pod.service_account_name
    if account is not None:
        checks.append(
            AccessCheck(
                verb="create",
                group="",
                resource="pods",
                namespace=namespace,
                reason=f'spec.pod.serviceAccountName: running pods as ServiceAccount "{account}" '
                "needs it",
            )
        )
    return checks


def subject_access_review(user: UserInfo, check: AccessCheck) -> dict[str, Any]:
    """The SubjectAccessReview asking whether `user` may do `check`."""
    spec: dict[str, Any] = {"resourceAttributes": check.attributes()}
    if user.username:
        spec["user"] = user.username
    if user.uid:
        spec["uid"] = user.uid
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {key: list(values) for key, values in user.extra}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


class AuthorizationUnavailableError(Exception):
    """The apiserver could not answer a SubjectAccessReview (the request is denied)."""


Review = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]
_CacheKey = tuple[UserInfo, str, str, str, str, str]


class Authorizer:
    """Answers `/authorize` reviews (see the module docstring)."""

    def __init__(
        self,
        *,
        policy: grants.GrantPolicy,
        client_factory: Callable[[], KubeClient] = KubeClient.login,
        review: Review | None = None,
        deadline_seconds: float = 3.0,
        cache_seconds: float = 5.0,
        cache_entries: int = 4096,
        concurrency: int = 8,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare; no client exists until the first review (on the loop that sends it).

        `review` replaces the SubjectAccessReview call (tests); by default it is a POST
        through a `KubeClient` from `client_factory`.
        """
        self.policy = policy
        self._client_factory = client_factory
        self._review = review or self._post
        self._client: KubeClient | None = None
        self._deadline = deadline_seconds
        self._ttl = cache_seconds
        self._cache_entries = cache_entries
        self._concurrency = concurrency
        self._semaphore: asyncio.Semaphore | None = None
        self._clock = clock
        self._cache: OrderedDict[_CacheKey, tuple[bool, float]] = OrderedDict()

    async def close(self) -> None:
        """Close the client (on the loop that created it; idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def _post(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        if self._client is None:
            self._client = self._client_factory()
        return await self._client.request("POST", SUBJECT_ACCESS_REVIEW_PATH, body=dict(body))

    # -- the cache -----------------------------------------------------------------------

    def _cached(self, key: _CacheKey) -> bool | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        allowed, expires = entry
        if self._clock() >= expires:
            del self._cache[key]
            return None
        return allowed

    def _remember(self, key: _CacheKey, allowed: bool) -> None:
        self._cache[key] = (allowed, self._clock() + self._ttl)
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_entries:
            self._cache.popitem(last=False)

    # -- the reviews ---------------------------------------------------------------------

    async def allowed(self, user: UserInfo, check: AccessCheck) -> bool:
        """Whether the apiserver says `user` may do `check` (cached for a few seconds).

        Raises AuthorizationUnavailableError when it cannot say.
        """
        key = (user, check.verb, check.group, check.resource, check.namespace, check.name)
        cached = self._cached(key)
        if cached is not None:
            return cached
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self._concurrency)
        async with self._semaphore:
            try:
                answer = await self._review(subject_access_review(user, check))
            except ApiError as error:
                raise AuthorizationUnavailableError(f"{error.status} {error.reason}") from error
            except (aiohttp.ClientError, OSError, ValueError) as error:
                raise AuthorizationUnavailableError(type(error).__name__) from error
        status = answer.get("status")
        if not isinstance(status, Mapping):
            raise AuthorizationUnavailableError("the SubjectAccessReview has no status")
        allowed = status.get("allowed") is True and status.get("denied") is not True
        self._remember(key, allowed)
        return allowed

    async def missing(self, user: UserInfo, checks: list[AccessCheck]) -> list[AccessCheck]:
        """The checks the apiserver refuses `user`, in order; AuthorizationUnavailableError when
        any review fails or the whole does not finish within the deadline."""
        try:
            async with asyncio.timeout(self._deadline):
                answers = await asyncio.gather(*(self.allowed(user, check) for check in checks))
        except TimeoutError:
            raise AuthorizationUnavailableError(f"no answer within {self._deadline:g} s") from None
        return [check for check, allowed in zip(checks, answers, strict=True) if not allowed]

    async def review(self, request: AdmissionRequest) -> dict[str, Any]:
        """The AdmissionReview `response` for `/authorize`."""
        allowed: dict[str, Any] = {"uid": request.uid, "allowed": True}
        obj = request.object
        if request.kind != KIND or request.operation not in EVALUATED_OPERATIONS or obj is None:
            return allowed
        if (obj.get("metadata") or {}).get("deletionTimestamp"):
            return allowed
        old = request.old_object
        if request.operation == "UPDATE" and old is not None and old.get("spec") == obj.get("spec"):
            return allowed
        try:
            ps = render.parse(obj)
        except SpecError:
            return allowed  # renders nothing; the checklist's entry reports the error
        namespace = request.namespace or ps.metadata.namespace or ""
        problems = [
            violation.message for violation in grants.check(ps, self.policy, namespace=namespace)
        ]
        try:
            refused = await self.missing(request.user, required_access(ps, namespace))
        except AuthorizationUnavailableError as error:
            logger.warning(
                "authorization check failed; denying",
                extra={"namespace": namespace, "object_name": request.name, "reason": str(error)},
            )
            return _denied(
                request.uid,
                "prodready could not check the author's permissions (SubjectAccessReview: "
                f"{error}); the ProductionService is denied until they can be checked, try "
                "again",
            )
        problems = [check.denial(request.user) for check in refused] + problems
        if not problems:
            return allowed
        return _denied(request.uid, f"prodready: {'; '.join(problems)}; {CLOSING}")


def _denied(uid: str, message: str) -> dict[str, Any]:
    return {
        "uid": uid,
        "allowed": False,
        "status": {"code": 403, "reason": "Forbidden", "message": message},
    }

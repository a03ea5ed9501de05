"""The few Kubernetes API calls the operator makes, on aiohttp.

kopf watches; this client writes: server-side apply under one field manager, status
patches, deletes, metadata-only reads and discovery. It logs in with the very function
kopf's login handler uses (`prodready.kube.login`: kubectl's credentials, exec plugins
included), so the operator has one notion of "the cluster" whether it runs in a pod or on
a laptop.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any

import aiohttp
import kopf

from prodready.api.resource import Resource
from prodready.kube.login import ClusterTarget, expired, login as login_to_cluster, selected
from prodready.observability.metrics import Metrics

JSON = dict[str, Any]
JSONList = list[JSON]  # named here: inside KubeClient, `list` is the method
APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
# Ask the apiserver for metadata only: no Secret value ever reaches this process this way.
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json"
PARTIAL_METADATA_LIST = (
    "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"
)

TRANSIENT_RETRIES = 5

# The apiserver parses an apply-patch body as YAML. JSON is YAML, except that json.dumps
# escapes a character outside the Basic Multilingual Plane (an emoji) as a UTF-16
# surrogate pair, which YAML's \u escapes cannot express: the whole patch is refused. So
# that body is sent as UTF-8, escaping only what YAML forbids raw (C0/C1 controls, line
# and paragraph separators that YAML would fold, BOM, non-characters, surrogates).
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff]")

logger = logging.getLogger(__name__)


def encode_body(body: Any, content_type: str) -> str:
    """A request body as JSON text the apiserver reads as meant, for `content_type`."""
    if content_type != APPLY_PATCH:
        return json.dumps(body, separators=(",", ":"))
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda match: f"\\u{ord(match[0]):04x}", text)


def _retry_delay(retry_after: str | None, attempt: int) -> float:
    try:
        return min(5.0, max(0.1, float(retry_after or "")))
    except ValueError:
        return min(5.0, 0.2 * float(2**attempt))


class ApiError(Exception):
    """A non-2xx answer from the apiserver, with its Status reason and message."""

    def __init__(self, status: int, reason: str, message: str, method: str, path: str) -> None:
        super().__init__(f"{method} {path}: {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def namespace_terminating(self) -> bool:
        """Creating in a namespace that is being deleted: nothing to do but wait for it."""
        return self.status == 403 and "being terminated" in self.message


class KubeClient:
    """An authenticated aiohttp session against one apiserver.

    With `metrics`, every call that fails counts once in `prodready_api_errors` by its
    Status reason, whoever made it (reconciler, audit, webhook, leader election).
    """

    # Set before the first request; the apiserver's audit log records it as userAgent
    # (the operator adds its replica's identity, so each replica's writes can be told apart).
    user_agent: str = "prodready"

    def __init__(
        self,
        connection: kopf.ConnectionInfo,
        *,
        timeout: float = 30.0,
        metrics: Metrics | None = None,
        credentials: Callable[[], kopf.ConnectionInfo] | None = None,
    ) -> None:
        """`credentials` logs in again (default: to the selected cluster)."""
        self._connection = connection
        self._credentials = credentials or (lambda: login_to_cluster(selected()))
        self._metrics = metrics
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._relogin_lock = asyncio.Lock()

    @classmethod
    def login(
        cls,
        settings: kopf.OperatorSettings | None = None,
        *,
        metrics: Metrics | None = None,
        target: ClusterTarget | None = None,
    ) -> KubeClient:
        """Log in as kubectl does (`prodready.kube.login`), to `target` or the selected one.

        `settings` is accepted for kopf's signature; the credentials do not depend on it.
        """
        credentials = functools.partial(login_to_cluster, target or selected())
        return cls(credentials(), metrics=metrics, credentials=credentials)

    @property
    def server(self) -> str:
        return self._connection.server.rstrip("/")

    @property
    def default_namespace(self) -> str | None:
        """The namespace of the kubeconfig's context (or the pod's), as kubectl defaults to."""
        return self._connection.default_namespace

    def _session_or_new(self) -> aiohttp.ClientSession:
        # The credential travels per request (`_auth`): a refreshed token needs no new
        # session; only new TLS material (a new client certificate) does.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=None,
                headers={"User-Agent": self.user_agent},
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._connection.as_ssl_context(), limit=64),
            )
        return self._session

    def _auth(self) -> dict[str, str]:
        return self._connection.as_http_headers()

    async def close(self) -> None:
        """Close the HTTP session (idempotent)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        accept: str = "application/json",
        expected: Collection[int] = (),
    ) -> JSON:
        """Send one request; return the decoded JSON body or raise ApiError.

        401 logs in again once (rotated tokens); 429 and 503 (priority-and-fairness
        throttling, a CRD's storage still initialising) are retried a few times after the
        server's Retry-After. A status in `expected` is an answer the caller handles (a
        GET's 404 means "absent"): it is raised like any other, but not counted as failed.
        """
        relogged = False
        for attempt in range(TRANSIENT_RETRIES + 1):
            if expired(self._connection):
                await self._relogin(self._connection)
            session = self._session_or_new()
            data = None if body is None else encode_body(body, content_type)
            stale = self._connection
            headers = {"Accept": accept, **self._auth()}
            if data is not None:
                headers["Content-Type"] = content_type
            async with session.request(
                method, self.server + path, params=params, data=data, headers=headers
            ) as response:
                text = await response.text()
                status, retry_after = response.status, response.headers.get("Retry-After")
            if status == 401 and not relogged:
                relogged = True
                await self._relogin(stale)
                continue
            if status in (429, 503) and attempt < TRANSIENT_RETRIES:
                await asyncio.sleep(_retry_delay(retry_after, attempt))
                continue
            if status >= 400:
                raise self._failed(status, text, method, path, expected)
            return dict(json.loads(text)) if text else {}
        raise self._failed(status, text, method, path, expected)

    def _failed(
        self, status: int, text: str, method: str, path: str, expected: Collection[int]
    ) -> ApiError:
        """The error for a failed call, counted once here, where every call passes."""
        error = _api_error(status, text, method, path)
        if self._metrics is not None and status not in expected:
            self._metrics.api_errors.labels(reason=error.reason).inc()
        return error

    async def _relogin(self, stale: kopf.ConnectionInfo) -> None:
        """Log in again (a rotated token file, an expired exec credential), once for all
        the requests that found `stale` wanting; in a thread, as a plugin is a subprocess."""
        async with self._relogin_lock:
            if self._connection is not stale:
                return  # another request has logged in meanwhile
            fresh = await asyncio.to_thread(self._credentials)
            tls_changed = _tls(fresh) != _tls(stale)
            self._connection = fresh
            if tls_changed:
                await self.close()

    # -- verbs -----------------------------------------------------------------------------

    async def get(self, path: str) -> JSON | None:
        """GET an object; None when it does not exist."""
        try:
            return await self.request("GET", path, expected=(404,))
        except ApiError as error:
            if error.not_found:
                return None
            raise

    async def get_metadata(self, path: str) -> JSON | None:
        """GET only an object's metadata (PartialObjectMetadata); None when absent."""
        try:
            return await self.request("GET", path, accept=PARTIAL_METADATA, expected=(404,))
        except ApiError as error:
            if error.not_found:
                return None
            raise

    async def list(self, path: str, *, label_selector: str | None = None) -> list[JSON]:
        """LIST a collection (all pages)."""
        items, _ = await self.list_with_version(path, label_selector=label_selector)
        return items

    async def list_with_version(
        self, path: str, *, label_selector: str | None = None, metadata_only: bool = False
    ) -> tuple[JSONList, int | None]:
        """LIST a collection (all pages, 500 at a time) and the resourceVersion of the list.

        `metadata_only` asks for PartialObjectMetadata: names and versions without the
        objects' contents (what a repair pass needs, at a fraction of the bytes).
        """
        items: JSONList = []
        params: dict[str, str] = {"limit": "500"}
        if label_selector:
            params["labelSelector"] = label_selector
        accept = PARTIAL_METADATA_LIST if metadata_only else "application/json"
        version: int | None = None
        first = True
        while True:
            page = await self.request("GET", path, params=params, accept=accept)
            list_metadata = page.get("metadata") or {}
            if first:
                first = False
                try:
                    version = int(str(list_metadata.get("resourceVersion")))
                except ValueError:
                    version = None
            items.extend(page.get("items") or [])
            token = list_metadata.get("continue")
            if not token:
                return items, version
            params["continue"] = str(token)

    async def apply(
        self, resource: Resource, body: JSON, *, field_manager: str, force: bool = True
    ) -> JSON:
        """Server-side apply `body` under `field_manager`."""
        metadata = body["metadata"]
        path = resource.path(metadata.get("namespace"), metadata["name"])
        params = {"fieldManager": field_manager, "force": "true" if force else "false"}
        # JSON is YAML, so the apply-patch content type takes the JSON body as is.
        return await self.request("PATCH", path, params=params, body=body, content_type=APPLY_PATCH)

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: JSON
    ) -> JSON:
        """Merge-patch an object's status subresource."""
        return await self.request(
            "PATCH",
            resource.path(namespace, name, "status"),
            body={"status": status},
            content_type=MERGE_PATCH,
        )

    async def delete(self, resource: Resource, namespace: str | None, name: str, uid: str) -> bool:
        """Delete one object, only if it is still the object with `uid`; False if gone."""
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": "Background",
            "preconditions": {"uid": uid},
        }
        try:
            await self.request(
                "DELETE", resource.path(namespace, name), body=body, expected=(404, 409)
            )
        except ApiError as error:
            if error.not_found or error.conflict:
                return False
            raise
        return True

    async def create(
        self,
        resource: Resource,
        namespace: str | None,
        body: JSON,
        *,
        field_manager: str | None = None,
    ) -> JSON:
        """POST a new object; an ApiError with `conflict` when the name is taken."""
        params = {"fieldManager": field_manager} if field_manager else None
        return await self.request("POST", resource.path(namespace), params=params, body=body)

    async def claim_fields_for_apply(
        self, resource: Resource, created: JSON, *, field_manager: str, attempts: int = 3
    ) -> JSON | None:
        """Turn `field_manager`'s Update entry of a just-created object into an Apply entry.

        A POST records its fields under an "Update" operation, and a later server-side
        apply by the same manager is a different entry: a field the applied configuration
        no longer sets would stay, still owned by the Update entry. Renaming the operation
        is what kubectl's client-side-to-server-side upgrade does (csaupgrade). The patch
        tests the object's uid and the entry first, so it never rewrites anyone else's
        entry; when a concurrent writer moved the entries (a Deployment's controller writes
        at once), it reads the object again and retries. The answer, or None when there
        was nothing to claim or the object is gone.
        """
        metadata = created.get("metadata") or {}
        path = resource.path(metadata.get("namespace"), metadata["name"])
        current: JSON | None = created
        for _ in range(attempts):
            if current is None:
                return None
            entries = list((current.get("metadata") or {}).get("managedFields") or ())
            index = next(
                (
                    i
                    for i, entry in enumerate(entries)
                    if entry.get("manager") == field_manager and entry.get("operation") == "Update"
                ),
                None,
            )
            if index is None:
                return None
            where = f"/metadata/managedFields/{index}"
            patch = [
                {"op": "test", "path": "/metadata/uid", "value": metadata.get("uid")},
                {"op": "test", "path": f"{where}/manager", "value": field_manager},
                {"op": "test", "path": f"{where}/operation", "value": "Update"},
                {"op": "replace", "path": f"{where}/operation", "value": "Apply"},
            ]
            try:
                return await self.request(
                    "PATCH", path, body=patch, content_type=JSON_PATCH, expected=(404, 409, 422)
                )
            except ApiError as error:
                if error.not_found:
                    return None
                if error.status not in (409, 422):
                    raise
                logger.debug("managed fields moved; reading again", extra={"path": path})
            current = await self.get(path)
        return None

    async def served_resources(self, api_version: str) -> set[str] | None:
        """The plural names served under a group/version; None when it is not served."""
        path = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
        try:
            answer = await self.request("GET", path, expected=(404, 503))
        except ApiError as error:
            if error.not_found or error.status == 503:
                return None
            raise
        return {str(r["name"]) for r in answer.get("resources", []) if "/" not in r["name"]}

    async def ping(self) -> bool:
        """Whether the apiserver answers /readyz right now."""
        try:
            session = self._session_or_new()
            async with session.get(
                self.server + "/readyz",
                headers=self._auth(),
                timeout=aiohttp.ClientTimeout(total=3),
            ) as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False


def _tls(connection: kopf.ConnectionInfo) -> tuple[object, ...]:
    """What the TLS context of a session is made of (the server's CA, the client pair)."""
    return (
        connection.server,
        connection.ca_path,
        connection.ca_data,
        connection.insecure,
        connection.certificate_path,
        connection.certificate_data,
        connection.private_key_path,
        connection.private_key_data,
    )


def _api_error(status: int, text: str, method: str, path: str) -> ApiError:
    try:
        payload = json.loads(text)
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    return ApiError(
        status,
        str(payload.get("reason") or status),
        str(payload.get("message") or text[:500]),
        method,
        path,
    )

"""Kubernetes Events on the objects the operator acts on (what `kubectl describe` shows)."""

from __future__ import annotations

import datetime
import logging
import os
import socket
from collections.abc import Mapping
from typing import Any

from prodready.kube.client import ApiError, KubeClient
from prodready.observability.logging import redact

logger = logging.getLogger("prodready.events")
COMPONENT = "prodready"


class EventRecorder:
    """Posts core/v1 Events; a failure to post is logged, never raised."""

    def __init__(self, client: KubeClient, *, instance: str | None = None) -> None:
        self._client = client
        self._instance = instance or os.environ.get("POD_NAME") or socket.gethostname()

    async def normal(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        """Record a Normal event."""
        await self._post(obj, "Normal", reason, message)

    async def warning(self, obj: Mapping[str, Any], reason: str, message: str) -> None:
        """Record a Warning event."""
        await self._post(obj, "Warning", reason, message)

    async def _post(self, obj: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        metadata = obj.get("metadata") or {}
        namespace = metadata.get("namespace") or "default"
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = str(redact(message))[:1024]
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"{metadata.get('name', 'object')}.",
                "namespace": namespace,
            },
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": metadata.get("name"),
                "namespace": namespace,
                "uid": metadata.get("uid"),
            },
            "type": kind,
            "reason": reason,
            "message": text,
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._client.request("POST", f"/api/v1/namespaces/{namespace}/events", body=event)
        except (ApiError, OSError) as error:
            logger.warning("could not post event %s: %s", reason, error)

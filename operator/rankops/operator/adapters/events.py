"""Posting core/v1 Events through the API client, from any task.

kopf's ``kopf.event`` needs the posting queue kopf installs in its handler tasks; the
QualitySLO controller also runs from the Alertmanager receiver's consumer task, outside them.
:class:`ApiEventPoster` creates the Event objects itself (as ``kubectl`` and client-go's
recorder do: ``involvedObject``, ``reason``, ``message``, ``type``, ``source``, times), in a
background task so the caller never waits, and logs a failure instead of raising: an Event is
a record, never a reason for an evaluation to fail.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from rankops.operator.core.events import Event
from rankops.operator.core.timeutil import format_time

from .kube import ApiError, KubeClient

__all__ = ["ApiEventPoster", "event_body"]

logger = logging.getLogger(__name__)
COMPONENT = "rankops-operator"


def event_body(obj: Mapping[str, Any], event: Event, now: datetime) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    stamp = format_time(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": meta.get("namespace")},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "reason": event.reason,
        "message": event.message[:1024],
        "type": event.type,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class ApiEventPoster:
    def __init__(self, client: KubeClient, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.client = client
        self.clock = clock
        self._tasks: set[asyncio.Task[None]] = set()

    def __call__(self, obj: Mapping[str, Any], event: Event) -> None:
        body = event_body(obj, event, self.clock())
        task = asyncio.get_running_loop().create_task(self._post(body))
        self._tasks.add(task)  # a reference until done: the loop keeps only weak ones
        task.add_done_callback(self._tasks.discard)

    async def _post(self, body: dict[str, Any]) -> None:
        namespace = body["metadata"]["namespace"] or "default"
        try:
            await self.client.create(f"/api/v1/namespaces/{quote(namespace)}/events", body)
        except (ApiError, OSError) as exc:
            logger.warning(
                "Event %s on %s not posted: %s", body["reason"], body["involvedObject"]["name"], exc
            )

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

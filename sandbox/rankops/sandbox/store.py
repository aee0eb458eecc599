"""The object store: one cluster-wide resourceVersion counter, objects, and a watch-event log."""

from __future__ import annotations

import asyncio
import collections
import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["Event", "ObjectKey", "Store"]

# (group, plural, namespace or "", name): versions of one resource share their objects.
ObjectKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Event:
    rv: int
    group: str
    plural: str
    type: str  # ADDED, MODIFIED, DELETED
    object: dict[str, Any]
    previous: dict[str, Any] | None = None  # the prior state, for MODIFIED


class Store:
    """In-memory objects with a monotonically increasing resourceVersion and an event log.

    Not thread-safe: every mutation runs in the server's event loop (the threaded runner
    marshals calls into that loop). Watchers subscribe with an asyncio.Queue.
    """

    def __init__(self, log_size: int = 10_000) -> None:
        self.objects: dict[ObjectKey, dict[str, Any]] = {}
        self.rv = 0
        self.log: collections.deque[Event] = collections.deque(maxlen=log_size)
        self.subscribers: set[asyncio.Queue[Event | None]] = set()  # None: the stream ends

    def next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    @property
    def oldest_replayable(self) -> int:
        """Events with rv > this value can be replayed; older resourceVersions are Gone."""
        return self.log[0].rv - 1 if len(self.log) == self.log.maxlen else 0

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        return self.objects.get(key)

    def items(self, group: str, plural: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        for (g, p, ns, _), obj in sorted(self.objects.items()):
            if g == group and p == plural and (namespace is None or ns == namespace):
                yield obj

    def put(self, key: ObjectKey, obj: dict[str, Any], event_type: str) -> None:
        """Store ``obj`` (its metadata.resourceVersion already set by the caller) and notify."""
        previous = self.objects.get(key)
        self.objects[key] = obj
        self._emit(key, event_type, obj, previous if event_type == "MODIFIED" else None)

    def remove(self, key: ObjectKey, obj: dict[str, Any]) -> None:
        self.objects.pop(key, None)
        self._emit(key, "DELETED", obj)

    def _emit(
        self, key: ObjectKey, event_type: str, obj: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> None:
        # Stored objects are replaced, never mutated in place, so `previous` needs no copy.
        event = Event(
            int(obj["metadata"]["resourceVersion"]), key[0], key[1], event_type, copy.deepcopy(obj), previous
        )
        self.log.append(event)
        for queue in list(self.subscribers):
            queue.put_nowait(event)

    def events_since(self, rv: int, group: str, plural: str) -> list[Event]:
        return [e for e in self.log if e.rv > rv and e.group == group and e.plural == plural]

"""The per-object loops' one wait: until a wake-up, the daemon's stop, or a timeout."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Stopped(Protocol):
    """kopf's ``DaemonStopped`` flag, as the loops use it."""

    def __bool__(self) -> bool: ...
    async def wait(self) -> Any: ...


async def sleep_until_woken(stopped: Stopped, wake: asyncio.Event, delay: float) -> None:
    """Sleep ``delay`` seconds, ending early when ``wake`` is set or the daemon is stopped."""

    async def stop_waiter() -> None:
        await stopped.wait()

    tasks = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop_waiter())}
    try:
        await asyncio.wait(tasks, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class PerObject:
    """A controller's per-object lock (one reconcile at a time) and wake-up event (reconcile
    now), kept from the object's first loop until :meth:`forget`."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._wakeups: dict[tuple[str, str], asyncio.Event] = {}

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def wakeup(self, namespace: str, name: str) -> asyncio.Event:
        """The event the object's loop waits on (created by the loop, set by :meth:`wake`)."""
        return self._wakeups.setdefault((namespace, name), asyncio.Event())

    def wake(self, namespace: str, name: str) -> None:
        event = self._wakeups.get((namespace, name))
        if event is not None:
            event.set()

    def forget(self, namespace: str, name: str) -> None:
        self._locks.pop((namespace, name), None)
        self._wakeups.pop((namespace, name), None)

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

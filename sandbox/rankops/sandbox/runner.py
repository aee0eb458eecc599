"""Running the sandbox API server in a thread of its own (for sync code and kopf's KopfRunner)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rankops.sandbox.apiserver import SandboxAPIServer

__all__ = ["ThreadedServer"]


class ThreadedServer:
    """Runs a :class:`SandboxAPIServer` in a daemon thread with its own event loop.

    ``with SandboxAPIServer.in_thread(crds=[...]) as api: ...`` -- ``api`` is the server;
    its ``url``, ``write_kubeconfig()``, ``get_object()``, ``list_objects()``,
    ``apply_object()``, ``delete_object()`` are safe to call from the calling thread.
    """

    def __init__(self, cls: type[SandboxAPIServer], kwargs: Mapping[str, Any]) -> None:
        self._cls, self._kwargs = cls, dict(kwargs)
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.api: SandboxAPIServer | None = None

    def __enter__(self) -> SandboxAPIServer:
        self._thread = threading.Thread(target=self._run, name="sandbox-apiserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=30):
            raise RuntimeError("the sandbox API server did not start within 30 seconds")
        if self._error is not None:
            raise RuntimeError("the sandbox API server failed to start") from self._error
        assert self.api is not None
        return self.api

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with self._cls(**self._kwargs) as api:
            self.api = api
            self._ready.set()
            await self._stop.wait()

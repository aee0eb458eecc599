"""The process runtime: the sandbox API server's objects come alive as local processes.

:class:`ProcessRuntime` runs in the API server's event loop and, on every change (and at
least every ``tick`` seconds), passes over the objects in dependency order: the Deployment
and ReplicaSet controller and the Job controller create and remove Pods
(:mod:`~rankops.sandbox.workloads`, :mod:`~rankops.sandbox.jobs`), the kubelet stand-in runs
them (:mod:`~rankops.sandbox.kubelet`), the EndpointSlice controller publishes the ready ones
(:mod:`~rankops.sandbox.endpoints`), and listeners (the Prometheus targets file, the entry
point's routing table) see the result. ``close()`` stops every process it started.

    async with SandboxAPIServer(crds=["crds/"]) as api:
        async with ProcessRuntime(api, workdir):
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from rankops.sandbox.endpoints import EndpointSliceController
from rankops.sandbox.jobs import JobController
from rankops.sandbox.kubelet import Kubelet
from rankops.sandbox.objects import Snapshot
from rankops.sandbox.processes import ManagedProcess
from rankops.sandbox.store import Event
from rankops.sandbox.workloads import DeploymentController

if TYPE_CHECKING:
    from rankops.sandbox.apiserver import SandboxAPIServer

__all__ = ["ProcessRuntime"]

log = logging.getLogger(__name__)
WATCHED = {
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("", "pods"),
    ("batch", "jobs"),
    ("", "services"),
}


class ProcessRuntime:
    def __init__(
        self,
        api: SandboxAPIServer,
        workdir: Path,
        *,
        tick: float = 0.25,
        probe_interval: float = 0.5,
        backoff_base: float = 1.0,
        backoff_max: float = 8.0,
        image_root: Path | None = None,
    ) -> None:
        self.api = api
        self.cluster = api.cluster
        self.workdir = workdir
        self.tick = tick
        self.kubelet = Kubelet(
            self.cluster,
            workdir,
            probe_interval=probe_interval,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            image_root=image_root,
        )
        self.deployments = DeploymentController(self.cluster)
        self.jobs = JobController(self.cluster)
        self.endpoints = EndpointSliceController(self.cluster)
        self.listeners: list[Callable[[Snapshot], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._changes: asyncio.Queue[Event | None] = asyncio.Queue()
        self.passes = 0
        self.errors = 0

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def start(self) -> None:
        self.cluster.store.subscribers.add(self._changes)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sandbox-runtime")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            relevant = False
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(self._changes.get(), self.tick)
                if event is None:  # the API server is stopping
                    return
                await asyncio.sleep(0.02)  # let a burst of writes land before one pass over them
                relevant = (event.group, event.plural) in WATCHED
                while not self._changes.empty():
                    queued = self._changes.get_nowait()
                    if queued is None:
                        return
                    relevant = relevant or (queued.group, queued.plural) in WATCHED
            if not relevant and loop.time() - last < self.tick:
                continue  # e.g. an Event object: nothing for the controllers
            last = loop.time()
            try:
                await self.sync_once()
            except Exception:  # a bug in one pass must not stop the pods' supervision
                self.errors += 1
                log.exception("sandbox runtime pass failed")

    async def sync_once(self) -> None:
        self.deployments.sync(Snapshot(self.cluster))
        self.jobs.sync(Snapshot(self.cluster))
        await self.kubelet.sync(Snapshot(self.cluster))
        self.endpoints.sync(Snapshot(self.cluster))
        snap = Snapshot(self.cluster)
        for listener in self.listeners:
            try:
                listener(snap)
            except Exception:
                log.exception("sandbox runtime listener failed")
        self.passes += 1

    def processes(self) -> list[ManagedProcess]:
        return self.kubelet.processes()

    async def close(self) -> None:
        """Stop the passes, then every process (pods of Deployments and Jobs alike)."""
        self.cluster.store.subscribers.discard(self._changes)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.kubelet.close()

    def describe(self) -> dict[str, Any]:
        return {"passes": self.passes, "errors": self.errors, "processes": len(self.processes())}

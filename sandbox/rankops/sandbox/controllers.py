"""Background controllers of the sandbox: garbage collector, namespace purge, kubelet stand-in.

A mixin of :class:`rankops.sandbox.apiserver.SandboxAPIServer`; kept apart so the request
handling and these loops stay readable. The kubelet stand-in RUNS NO PODS: it writes status.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from rankops.sandbox.clock import utc_now
from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.store import Event, ObjectKey, Store

__all__ = ["ControllersMixin"]


class ControllersMixin:
    store: Store
    types: dict[tuple[str, str, str], ResourceType]
    workload_delay: float
    gc_delay: float
    _bg_tasks: set[asyncio.Task[Any]]

    if TYPE_CHECKING:

        def delete(
            self,
            rt: ResourceType,
            ns: str | None,
            name: str,
            options: Mapping[str, Any],
            dry_run: bool = False,
        ) -> dict[str, Any]: ...

        def update(
            self,
            rt: ResourceType,
            ns: str | None,
            name: str,
            body: dict[str, Any],
            subresource: str | None,
            params: Mapping[str, str],
            manager: str | None = None,
            operation: str = "Update",
            changed: Mapping[str, Any] | None = None,
        ) -> dict[str, Any]: ...

    def _schedule(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()  # not started yet (bootstrap): nothing to collect
            return
        task = loop.create_task(coro)
        self._bg_tasks.add(task)
        task.add_done_callback(self._bg_tasks.discard)

    def _type_for_key(self, key: ObjectKey, obj: Mapping[str, Any]) -> ResourceType | None:
        version = str(obj.get("apiVersion", "")).rpartition("/")[2]
        rt = self.types.get((key[0], version, key[1]))
        if rt is None:
            rt = next((t for t in self.types.values() if t.group == key[0] and t.plural == key[1]), None)
        return rt

    def _orphan_dependents(self, uid: str) -> None:
        for key, obj in list(self.store.objects.items()):
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            if any(r.get("uid") == uid for r in refs):
                new = copy.deepcopy(obj)
                new["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != uid] or None
                if new["metadata"]["ownerReferences"] is None:
                    del new["metadata"]["ownerReferences"]
                new["metadata"]["resourceVersion"] = self.store.next_rv()
                self.store.put(key, new, "MODIFIED")

    def _has_dependents(self, uid: str) -> bool:
        return any(
            any(r.get("uid") == uid for r in (o.get("metadata") or {}).get("ownerReferences") or [])
            for o in self.store.objects.values()
        )

    async def _delete_in_foreground(self, key: ObjectKey, uid: str) -> None:
        """Foreground cascade: delete the dependents, wait until they are gone, then the owner."""
        await asyncio.sleep(self.gc_delay)
        for dep_key, dep in list(self.store.objects.items()):
            refs = (dep.get("metadata") or {}).get("ownerReferences") or []
            rt = self._type_for_key(dep_key, dep)
            if rt is not None and any(r.get("uid") == uid for r in refs):
                with contextlib.suppress(ApiError):  # deleted meanwhile
                    self.delete(rt, dep_key[2] or None, dep_key[3], {"propagationPolicy": "Foreground"})
        changes: asyncio.Queue[Event | None] = asyncio.Queue()
        self.store.subscribers.add(changes)
        try:
            while self._has_dependents(uid):
                if await changes.get() is None:  # the server is stopping
                    return
        finally:
            self.store.subscribers.discard(changes)
        owner = self.store.get(key)
        rt = self._type_for_key(key, owner) if owner is not None else None
        if owner is None or rt is None or owner["metadata"]["uid"] != uid:
            return
        body = copy.deepcopy(owner)
        body["metadata"]["finalizers"] = [
            f for f in owner["metadata"].get("finalizers") or [] if f != "foregroundDeletion"
        ]
        body["metadata"].pop("resourceVersion", None)
        self.update(rt, key[2] or None, key[3], body, None, {}, manager="sandbox-garbage-collector")

    async def _collect_garbage(self, uid: str) -> None:
        """Background cascade: dependents whose owners are all gone are deleted (recursively)."""
        await asyncio.sleep(self.gc_delay)
        live_uids = {o["metadata"]["uid"] for o in self.store.objects.values()}
        for key, obj in list(self.store.objects.items()):
            refs = (obj.get("metadata") or {}).get("ownerReferences") or []
            if not any(r.get("uid") == uid for r in refs):
                continue
            rt = self._type_for_key(key, obj)
            if rt is None:
                continue
            if any(r.get("uid") in live_uids for r in refs if r.get("uid") != uid):
                self._orphan_dependents_of(key, uid)
                continue
            with contextlib.suppress(ApiError):  # deleted meanwhile
                self.delete(rt, key[2] or None, key[3], {"propagationPolicy": "Background"})

    def _orphan_dependents_of(self, key: ObjectKey, uid: str) -> None:
        obj = self.store.get(key)
        if obj is None:
            return
        new = copy.deepcopy(obj)
        new["metadata"]["ownerReferences"] = [
            r for r in new["metadata"]["ownerReferences"] if r.get("uid") != uid
        ]
        new["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.put(key, new, "MODIFIED")

    async def _purge_namespace(self, namespace: str) -> None:
        # DIFFERENCE: the namespace goes at once; its objects follow (a real server keeps the
        # namespace Terminating until they are gone).
        await asyncio.sleep(self.gc_delay)
        for key, obj in list(self.store.objects.items()):
            if key[2] == namespace:
                rt = self._type_for_key(key, obj)
                if rt is not None:
                    with contextlib.suppress(ApiError):  # deleted meanwhile
                        self.delete(rt, namespace, key[3], {})

    async def _kubelet_deployment(self, key: ObjectKey) -> None:
        """Kubelet stand-in: NO PODS RUN. It only reports the desired replicas as ready."""
        await asyncio.sleep(self.workload_delay)
        obj = self.store.get(key)
        if obj is None or obj["metadata"].get("deletionTimestamp"):
            return
        replicas = int((obj.get("spec") or {}).get("replicas", 1))
        now = utc_now()
        status: dict[str, Any] = {"observedGeneration": obj["metadata"].get("generation", 1)}
        for field in ("replicas", "readyReplicas", "availableReplicas", "updatedReplicas"):
            if replicas:  # zero counts are omitted, as the real controller's omitempty does
                status[field] = replicas
        old_status = obj.get("status") or {}
        conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
        for ctype, reason, message in (
            ("Available", "MinimumReplicasAvailable", "Deployment has minimum availability."),
            ("Progressing", "NewReplicaSetAvailable", "ReplicaSet has successfully progressed."),
        ):
            prior = conditions.get(ctype)
            conditions[ctype] = {
                "type": ctype,
                "status": "True",
                "reason": reason,
                "message": message,
                "lastUpdateTime": now,
                "lastTransitionTime": prior["lastTransitionTime"]
                if prior and prior.get("status") == "True"
                else now,
            }
        status["conditions"] = list(conditions.values())
        if {k: v for k, v in old_status.items() if k != "conditions"} == {
            k: v for k, v in status.items() if k != "conditions"
        } and old_status.get("conditions"):
            return
        rt = self._type_for_key(key, obj)
        if rt is not None:
            body = copy.deepcopy(obj)
            body["status"] = status
            body["metadata"].pop("resourceVersion", None)
            self.update(rt, key[2] or None, key[3], body, "status", {}, manager="sandbox-kubelet")

    async def _kubelet_job(self, key: ObjectKey) -> None:
        """Job stand-in: NO PODS RUN. It only marks the Job Complete (succeeded=1)."""
        await asyncio.sleep(self.workload_delay)
        obj = self.store.get(key)
        finished = any(
            c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
            for c in (obj or {}).get("status", {}).get("conditions") or []
        )
        if (
            obj is None
            or finished  # a finished Job stays as it ended (a real Job controller never revives one)
            or (obj.get("status") or {}).get("succeeded")
            or (obj.get("spec") or {}).get("suspend")
        ):
            return
        now = utc_now()
        body = copy.deepcopy(obj)
        body["metadata"].pop("resourceVersion", None)
        body["status"] = {
            "startTime": now,
            "completionTime": now,
            "succeeded": 1,
            "ready": 0,
            "conditions": [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
                {"type": "Complete", "status": "True", "lastProbeTime": now, "lastTransitionTime": now},
            ],
        }
        rt = self._type_for_key(key, obj)
        if rt is not None:
            self.update(rt, key[2] or None, key[3], body, "status", {}, manager="sandbox-kubelet")

    async def stop_background(self) -> None:
        """Cancel the pending background work (the server is stopping)."""
        for task in list(self._bg_tasks):
            task.cancel()
        await asyncio.gather(*self._bg_tasks, return_exceptions=True)

    async def settle(self, seconds: float | None = None) -> None:
        """Wait until background work (GC, kubelet stand-in) is done (or ``seconds`` pass)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (seconds if seconds is not None else 5.0)
        while self._bg_tasks and loop.time() < deadline:
            await asyncio.wait(list(self._bg_tasks), timeout=max(0.0, deadline - loop.time()))

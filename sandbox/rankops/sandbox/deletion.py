"""Deleting from the sandbox API server as kube-apiserver does: preconditions, propagation
(Orphan, Background, Foreground), finalizers and ``deletionTimestamp``, and what removal sets
off (a CRD's objects and type, a namespace's purge, garbage collection)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Mapping
from typing import Any

from rankops.sandbox.clock import utc_now
from rankops.sandbox.cluster_state import CRD_KEY, NAMESPACES_KEY, ClusterState
from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.store import ObjectKey

__all__ = ["ClusterDeletion"]

FOREGROUND = "foregroundDeletion"


class ClusterDeletion(ClusterState):
    """``delete``, ``delete_collection`` and the final removal."""

    def delete(
        self, rt: ResourceType, ns: str | None, name: str, options: Mapping[str, Any], dry_run: bool = False
    ) -> dict[str, Any]:
        key = self.key(rt, ns, name)
        obj = self.store.get(key)
        if obj is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        pre = options.get("preconditions") or {}
        meta = obj["metadata"]
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise ApiError.conflict(
                rt.group,
                rt.plural,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {meta['uid']}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise ApiError.conflict(
                rt.group,
                rt.plural,
                name,
                "Precondition failed: ResourceVersion in "
                f"precondition: {pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if dry_run:
            return self.present(rt, obj)
        policy = options.get("propagationPolicy") or (
            "Orphan" if options.get("orphanDependents") else "Background"
        )
        if policy == "Orphan":
            # DIFFERENCE: dependents are orphaned at once (a real server goes through the
            # `orphan` finalizer and the garbage collector).
            self._orphan_dependents(meta["uid"])
        if meta.get("deletionTimestamp"):
            return self.present(rt, obj)
        foreground = policy == "Foreground" and self._has_dependents(meta["uid"])
        if meta.get("finalizers") or foreground:
            # Foreground: the owner waits (finalizer `foregroundDeletion`) for its dependents.
            new = copy.deepcopy(obj)
            if foreground and FOREGROUND not in (new["metadata"].get("finalizers") or []):
                new["metadata"]["finalizers"] = [*(new["metadata"].get("finalizers") or []), FOREGROUND]
                self._schedule(self._delete_in_foreground(key, meta["uid"]))
            new["metadata"]["deletionTimestamp"] = utc_now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            new["metadata"]["resourceVersion"] = self.store.next_rv()
            self.store.put(key, new, "MODIFIED")
            return self.present(rt, new)
        final = self._finalize(rt, key, obj)
        return self.present(rt, final)

    def delete_collection(
        self, rt: ResourceType, ns: str | None, params: Mapping[str, str], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        items = self.list(rt, ns, params)
        for item in items:
            meta = item["metadata"]
            with contextlib.suppress(ApiError):  # e.g. gone meanwhile
                self.delete(rt, meta.get("namespace"), meta["name"], options, dry_run="dryRun" in params)
        return {
            "kind": f"{rt.kind}List",
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": items,
        }

    def _finalize(self, rt: ResourceType, key: ObjectKey, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove the object for good (its last finalizer is gone, or it never had one)."""
        final = copy.deepcopy(obj)
        final["metadata"]["resourceVersion"] = self.store.next_rv()
        self.store.remove(key, final)
        uid = final["metadata"]["uid"]
        if rt.key == CRD_KEY:
            spec = final.get("spec") or {}
            group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
            for okey in [k for k in self.store.objects if k[0] == group and k[1] == plural]:
                gone = copy.deepcopy(self.store.objects[okey])
                gone["metadata"]["resourceVersion"] = self.store.next_rv()
                self.store.remove(okey, gone)
            self.unregister(group, plural)
        if rt.key == NAMESPACES_KEY:
            self._schedule(self._purge_namespace(final["metadata"]["name"]))
        self._schedule(self._collect_garbage(uid))
        return final

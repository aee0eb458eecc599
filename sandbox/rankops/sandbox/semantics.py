"""The object semantics of the API server, without HTTP: what a create, update, patch or
delete does to the stored objects (metadata, validation, concurrency, status isolation,
finalizers, cascades). :class:`rankops.sandbox.apiserver.SandboxAPIServer` serves it.

The layers: reads in :mod:`~rankops.sandbox.cluster_state`, deletion in
:mod:`~rankops.sandbox.deletion`, create and update in :mod:`~rankops.sandbox.writes`; here,
on top, PATCH (merge, JSON, strategic merge, server-side apply) and the ``scale``
subresource, each ending in a create or an update.

Every method here is synchronous and runs in the server's event loop: a write is atomic
with respect to watchers. Deliberate differences from a real server are marked DIFFERENCE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rankops.sandbox import patching
from rankops.sandbox.cluster_state import CRD_KEY, NAMESPACES_KEY
from rankops.sandbox.errors import ApiError
from rankops.sandbox.field_errors import FieldError
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.writes import ClusterWrites

__all__ = ["CRD_KEY", "NAMESPACES_KEY", "Cluster"]


class Cluster(ClusterWrites):
    """Served resource types, stored objects, and the rules of writing them."""

    def patch(
        self,
        rt: ResourceType,
        ns: str | None,
        name: str,
        content_type: str,
        text: str,
        subresource: str | None,
        params: Mapping[str, str],
    ) -> dict[str, Any]:
        if content_type not in (patching.MERGE, patching.JSON, patching.STRATEGIC, patching.APPLY):
            raise ApiError.unsupported_media_type(content_type)
        try:
            body = patching.parse_body(content_type, text)
        except patching.PatchError as exc:
            raise ApiError.bad_request(str(exc)) from exc
        key = self.key(rt, ns, name)
        old = self.store.get(key)
        if content_type == patching.APPLY:
            manager = params.get("fieldManager")
            if not manager:
                raise ApiError.bad_request("fieldManager must be set for apply patch requests")
            if not isinstance(body, dict):
                raise ApiError.bad_request("an apply patch must be an object")
            bmeta = body.get("metadata") or {}
            if bmeta.get("name") not in (None, name):
                raise ApiError.bad_request("the name of the object does not match the name on the URL")
            if old is None:
                if subresource:
                    raise ApiError.not_found(rt.group, rt.plural, name)
                created = patching.server_side_apply(None, body, manager)
                created.setdefault("metadata", {})["name"] = name
                return self.create(rt, ns, created, params, manager=manager)
            try:
                merged = patching.server_side_apply(
                    old, body, manager, subresource, force=params.get("force") in ("true", "1")
                )
            except patching.ApplyConflict as exc:
                raise ApiError(
                    409,
                    "Conflict",
                    str(exc),
                    {
                        "name": name,
                        "group": rt.group,
                        "kind": rt.plural,
                        "causes": [
                            {"reason": "FieldManagerConflict", "message": f'conflict with "{m}"', "field": f}
                            for m, f in exc.conflicts
                        ],
                    },
                ) from exc
            merged["metadata"].pop("resourceVersion", None)
            if bmeta.get("resourceVersion"):
                merged["metadata"]["resourceVersion"] = bmeta["resourceVersion"]
            return self.update(rt, ns, name, merged, subresource, params, manager="", operation="Apply")
        if old is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        if subresource == "scale":
            scale = patching.apply_patch(self.scale_of(rt, self.present(rt, old)), content_type, body)
            return self.write_scale(rt, ns, name, scale, params)
        current = self.present(rt, old)
        try:
            new = patching.apply_patch(current, content_type, body)
        except patching.PatchError as exc:
            raise ApiError(
                422 if content_type == patching.JSON else 400,
                "Invalid" if content_type == patching.JSON else "BadRequest",
                str(exc),
            ) from exc
        # A patch carries a resourceVersion precondition only if it sets one itself.
        new_meta = new.setdefault("metadata", {})
        patch_rv = None
        if isinstance(body, Mapping):
            patch_rv = (body.get("metadata") or {}).get("resourceVersion")
        elif new_meta.get("resourceVersion") != current["metadata"].get("resourceVersion"):
            patch_rv = new_meta.get("resourceVersion")
        if patch_rv:
            new_meta["resourceVersion"] = patch_rv
        else:
            new_meta.pop("resourceVersion", None)
        changed = body if isinstance(body, Mapping) else new
        return self.update(
            rt, ns, name, new, subresource, params, manager=self._manager(params), changed=changed
        )

    def scale_of(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = obj.get("metadata") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 1)},
            "status": {"replicas": (obj.get("status") or {}).get("replicas", 0), "selector": ""},
        }

    def write_scale(
        self, rt: ResourceType, ns: str | None, name: str, scale: Mapping[str, Any], params: Mapping[str, str]
    ) -> dict[str, Any]:
        current = self.get(rt, ns, name)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise ApiError.invalid(
                "autoscaling",
                "Scale",
                name,
                [FieldError("spec.replicas", "must be greater than or equal to 0", value=replicas)],
            )
        current.setdefault("spec", {})["replicas"] = replicas
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        current["metadata"]["resourceVersion"] = rv or ""
        obj = self.update(rt, ns, name, current, None, params)
        return self.scale_of(rt, obj)

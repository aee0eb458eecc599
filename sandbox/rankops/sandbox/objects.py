"""Small helpers the sandbox's controllers share: reading, creating and writing objects in the
emulator's :class:`~rankops.sandbox.semantics.Cluster` from its own event loop."""

from __future__ import annotations

import copy
import hashlib
import json
import random
import string
from collections.abc import Iterable, Mapping
from typing import Any

from rankops.sandbox.clock import utc_now
from rankops.sandbox.errors import ApiError
from rankops.sandbox.semantics import Cluster

__all__ = [
    "Snapshot",
    "owned_by",
    "pod_ready",
    "random_suffix",
    "replace",
    "template_hash",
    "utc_now",
    "write_status",
]


def random_suffix(k: int = 5) -> str:
    # Kubernetes' alphabet for generated names: no vowels, no look-alike digits.
    return "".join(random.choices("bcdfghjklmnpqrstvwxz2456789", k=k))


def template_hash(template: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()
    alphabet = string.ascii_lowercase[:22] + string.digits
    return "".join(alphabet[int(digest[i : i + 2], 16) % len(alphabet)] for i in range(0, 20, 2))


def owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(r.get("uid") == uid and r.get("controller") for r in refs)


def pod_ready(pod: Mapping[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    meta = owner["metadata"]
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


class Snapshot:
    """The objects of a few kinds at one moment, bucketed once (the store sorts on every read)."""

    KINDS = {
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("", "pods"),
        ("", "services"),
        ("discovery.k8s.io", "endpointslices"),
        ("batch", "jobs"),
        ("gateway.networking.k8s.io", "httproutes"),
    }

    def __init__(self, cluster: Cluster) -> None:
        self.by_kind: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in self.KINDS}
        for (group, plural, _ns, _name), obj in cluster.store.objects.items():
            bucket = self.by_kind.get((group, plural))
            if bucket is not None:
                bucket.append(obj)

    def of(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items = self.by_kind[(group, plural)]
        if namespace is None:
            return items
        return [o for o in items if o["metadata"].get("namespace") == namespace]

    def owned(self, group: str, plural: str, uid: str) -> list[dict[str, Any]]:
        return [o for o in self.by_kind[(group, plural)] if owned_by(o, uid)]


def _strip_volatile(status: Any) -> Any:
    """Status without timestamps, to tell a real change from a rewrite of the same state."""
    if isinstance(status, Mapping):
        return {
            k: _strip_volatile(v)
            for k, v in status.items()
            if k not in ("lastProbeTime", "lastUpdateTime", "lastHeartbeatTime")
        }
    if isinstance(status, list):
        return [_strip_volatile(v) for v in status]
    return status


def write_status(cluster: Cluster, obj: Mapping[str, Any], status: dict[str, Any], manager: str) -> bool:
    """Replace ``obj``'s status when it changed (ignoring probe/update times); True if written."""
    if _strip_volatile(obj.get("status") or {}) == _strip_volatile(status):
        return False
    rt = cluster.type_of(obj)
    meta = obj["metadata"]
    body = copy.deepcopy(dict(obj))
    body["status"] = status
    body["metadata"].pop("resourceVersion", None)
    try:
        cluster.update(rt, meta.get("namespace"), meta["name"], body, "status", {"fieldManager": manager})
    except ApiError as exc:
        if exc.status == 404:  # deleted meanwhile: nothing to report on
            return False
        raise
    return True


def create(cluster: Cluster, obj: dict[str, Any], manager: str) -> dict[str, Any] | None:
    """Create ``obj``; None if its namespace is going away or it exists already."""
    rt = cluster.type_of(obj)
    try:
        return cluster.create(rt, obj["metadata"].get("namespace"), obj, {"fieldManager": manager})
    except ApiError as exc:
        if exc.status in (404, 409, 403):
            return None
        raise


def delete(cluster: Cluster, objs: Iterable[Mapping[str, Any]]) -> None:
    for obj in objs:
        meta = obj["metadata"]
        try:
            cluster.delete(cluster.type_of(obj), meta.get("namespace"), meta["name"], {})
        except ApiError as exc:
            if exc.status != 404:
                raise


def replace(cluster: Cluster, obj: Mapping[str, Any], fields: Mapping[str, Any], manager: str) -> None:
    """Write ``obj`` with its top-level ``fields`` replaced (no write when they are unchanged)."""
    if all(obj.get(k) == v for k, v in fields.items()):
        return
    body = copy.deepcopy(dict(obj))
    body.update(copy.deepcopy(dict(fields)))
    body["metadata"].pop("resourceVersion", None)
    meta = obj["metadata"]
    try:
        cluster.update(
            cluster.type_of(obj), meta.get("namespace"), meta["name"], body, None, {"fieldManager": manager}
        )
    except ApiError as exc:
        if exc.status != 404:
            raise


def update_spec(cluster: Cluster, obj: Mapping[str, Any], spec: dict[str, Any], manager: str) -> None:
    replace(cluster, obj, {"spec": spec}, manager)

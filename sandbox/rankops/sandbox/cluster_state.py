"""The served resource types and the stored objects of the sandbox API server, and reading
them (get, list with selectors). :class:`rankops.sandbox.semantics.Cluster` builds the writes on
it.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Mapping
from typing import Any

from rankops.sandbox.controllers import ControllersMixin
from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType
from rankops.sandbox.selectors import SelectorError, parse_field_selector, parse_label_selector
from rankops.sandbox.store import ObjectKey, Store

__all__ = ["CRD_KEY", "NAMESPACES_KEY", "ClusterState"]

CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES_KEY = ("", "v1", "namespaces")


class ClusterState(ControllersMixin):
    """Served resource types and stored objects; lookups and reads."""

    def __init__(
        self,
        *,
        strict_namespaces: bool = True,
        simulate_workloads: bool = False,
        simulate_jobs: bool = False,
        workload_delay: float = 0.1,
        gc_delay: float = 0.05,
        watch_log_size: int = 10_000,
    ) -> None:
        self.store = Store(watch_log_size)
        self.types: dict[tuple[str, str, str], ResourceType] = {}
        self.strict_namespaces = strict_namespaces
        self.simulate_workloads = simulate_workloads
        self.simulate_jobs = simulate_jobs
        self.workload_delay = workload_delay
        self.gc_delay = gc_delay
        self._bg_tasks: set[asyncio.Task[Any]] = set()
        # Called with (resource type, served?) when a resource starts or stops being served.
        self.listeners: list[Callable[[ResourceType, bool], None]] = []
        # Warnings of the operation in progress (the HTTP layer sends them as `Warning` headers
        # and clears them; operations are synchronous, so they never interleave).
        self.warnings: list[str] = []

    def resolve(self, spec: str) -> ResourceType:
        """A served resource by plural, ``plural.group``, ``group/version/plural``, kind or short name."""
        for rt in self.types.values():
            candidates = {
                rt.plural,
                f"{rt.plural}.{rt.group}",
                f"{rt.group}/{rt.version}/{rt.plural}",
                f"{rt.version}/{rt.plural}" if not rt.group else "",
                rt.kind,
                *rt.shortnames,
            }
            if spec in candidates:
                return rt
        raise KeyError(f"no resource {spec!r} is served")

    def type_of(self, obj: Mapping[str, Any]) -> ResourceType:
        api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        group, _, version = api_version.rpartition("/")
        for rt in self.types.values():
            if rt.group == group and rt.version == version and rt.kind == kind:
                return rt
        raise KeyError(f"no resource is served for {api_version} {kind}")

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt
        for listener in self.listeners:
            listener(rt, True)

    def unregister(self, group: str, plural: str) -> None:
        for key in [k for k in self.types if k[0] == group and k[2] == plural]:
            rt = self.types.pop(key)
            for listener in self.listeners:
                listener(rt, False)

    @staticmethod
    def key(rt: ResourceType, namespace: str | None, name: str) -> ObjectKey:
        return (rt.group, rt.plural, (namespace or "") if rt.namespaced else "", name)

    def present(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(dict(obj))
        out["apiVersion"], out["kind"] = rt.api_version, rt.kind  # DIFFERENCE: no version conversion
        return out

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.store.get(self.key(rt, ns, name))
        if obj is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        return self.present(rt, obj)

    def predicates(self, params: Mapping[str, str]) -> Callable[[Mapping[str, Any]], bool]:
        try:
            labels = parse_label_selector(params.get("labelSelector"))
            fields = parse_field_selector(params.get("fieldSelector"))
        except SelectorError as exc:
            raise ApiError.bad_request(str(exc)) from exc
        return lambda obj: labels((obj.get("metadata") or {}).get("labels") or {}) and fields(obj)

    def list(self, rt: ResourceType, ns: str | None, params: Mapping[str, str]) -> list[dict[str, Any]]:
        # Pages (`limit`/`continue`) are cut by the HTTP layer.
        match = self.predicates(params)
        return [self.present(rt, o) for o in self.store.items(rt.group, rt.plural, ns) if match(o)]

    @staticmethod
    def _manager(params: Mapping[str, str], default: str = "") -> str:
        return params.get("fieldManager") or default

"""The object semantics of the API server, without HTTP: what a create, update, patch or
delete does to the stored objects (metadata, validation, concurrency, status isolation,
finalizers, cascades). :class:`rankops.sandbox.apiserver.SandboxAPIServer` serves it.

Every method here is synchronous and runs in the server's event loop: a write is atomic
with respect to watchers. Deliberate differences from a real server are marked DIFFERENCE.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import random
import string
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from rankops.sandbox import patching
from rankops.sandbox.controllers import ControllersMixin
from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType, resource_types_from_crd
from rankops.sandbox.schema import FieldError, validate_crd, validate_custom_resource, validate_object_name
from rankops.sandbox.selectors import SelectorError, parse_field_selector, parse_label_selector
from rankops.sandbox.store import ObjectKey, Store

__all__ = ["CRD_KEY", "NAMESPACES_KEY", "Cluster"]

CRD_KEY = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")
NAMESPACES_KEY = ("", "v1", "namespaces")
FOREGROUND = "foregroundDeletion"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Cluster(ControllersMixin):
    """Served resource types, stored objects, and the rules of writing them."""

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

    def _require_namespace(self, rt: ResourceType, ns: str | None) -> None:
        if not rt.namespaced or ns is None:
            return
        if self.store.get(("", "namespaces", "", ns)) is not None:
            return
        if self.strict_namespaces:
            raise ApiError.not_found("", "namespaces", ns)
        self.create(
            self.types[NAMESPACES_KEY],
            None,
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}},
            {},
        )

    def create(
        self,
        rt: ResourceType,
        ns: str | None,
        body: dict[str, Any],
        params: Mapping[str, str],
        manager: str | None = None,
    ) -> dict[str, Any]:
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            ns = ns or meta.get("namespace")
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = None
        if not meta.get("name") and meta.get("generateName"):
            alphabet = string.ascii_lowercase + string.digits
            for _ in range(100):
                candidate = meta["generateName"] + "".join(random.choices(alphabet, k=5))
                if self.store.get(self.key(rt, ns, candidate)) is None:
                    meta["name"] = candidate
                    break
        name = meta.get("name") or ""
        errors = validate_object_name(name) if rt.crd is None else []
        if errors:
            raise ApiError.invalid(rt.group, rt.kind, name, errors)
        self._require_namespace(rt, ns)
        key = self.key(rt, ns, name)
        if self.store.get(key) is not None:
            raise ApiError.already_exists(rt.group, rt.plural, name)

        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        if rt.has_status:
            body.pop("status", None)  # the status of a new object is the controllers' to write
        body = self._validate(rt, body, None, params)
        meta = body["metadata"]
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        if rt.key == NAMESPACES_KEY:
            body["status"] = {"phase": "Active"}
            # as a real server (1.21+): what namespaceSelectors select a namespace by name with
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
        if rt.key == CRD_KEY:
            body["status"] = self._crd_status(body)
        patching.record_managed_fields(
            body,
            manager if manager is not None else self._manager(params),
            "Update" if manager is None else "Apply",
            body,
        )
        if "dryRun" in params:
            return self.present(rt, body)
        meta["resourceVersion"] = self.store.next_rv()
        self.store.put(key, body, "ADDED")
        self._after_write(rt, key, body, None)
        return self.present(rt, body)

    def _validate(
        self,
        rt: ResourceType,
        body: dict[str, Any],
        old: Mapping[str, Any] | None,
        params: Mapping[str, str],
    ) -> dict[str, Any]:
        name = (body.get("metadata") or {}).get("name", "")
        errors: list[FieldError] = []
        if rt.crd is not None:
            unknown: list[str] = []
            body, errors = validate_custom_resource(rt.crd, body, old, unknown_fields=unknown)
            body["apiVersion"] = rt.api_version
            mode = params.get("fieldValidation", "Warn")  # the server's default is Warn
            if unknown and mode == "Strict":
                listed = ", ".join(f'unknown field "{path}"' for path in unknown)
                raise ApiError.bad_request(
                    f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                    f"strict decoding error: {listed}"
                )
            if unknown and mode == "Warn":
                self.warnings.extend(f'unknown field "{path}"' for path in unknown)
        elif rt.key == CRD_KEY:
            errors = validate_crd(body)
            if not errors:
                clash = self._crd_clash(body)
                if clash:
                    errors = [clash]
        if errors:
            raise ApiError.invalid(rt.group, rt.kind, name, errors)
        return body

    def _crd_clash(self, crd: Mapping[str, Any]) -> FieldError | None:
        spec = crd.get("spec") or {}
        for rt in self.types.values():
            if (
                rt.crd is None
                and rt.group == spec.get("group")
                and rt.plural == (spec.get("names") or {}).get("plural")
            ):
                return FieldError(
                    "spec.names.plural", "the resource is built into this server", value=rt.plural
                )
        return None

    @staticmethod
    def _crd_status(crd: Mapping[str, Any]) -> dict[str, Any]:
        now = _now()
        names = (crd.get("spec") or {}).get("names") or {}
        return {
            "acceptedNames": copy.deepcopy(dict(names)),
            "storedVersions": [
                v["name"] for v in (crd.get("spec") or {}).get("versions") or [] if v.get("storage")
            ],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
        }

    @staticmethod
    def _spec_part(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        skip = {"metadata", "apiVersion", "kind"} | ({"status"} if rt.has_status else set())
        return {k: v for k, v in obj.items() if k not in skip}

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
    ) -> dict[str, Any]:
        key = self.key(rt, ns, name)
        old = self.store.get(key)
        if old is None:
            raise ApiError.not_found(rt.group, rt.plural, name)
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        if meta.get("name", name) != name:
            raise ApiError.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") and meta["namespace"] != ns:
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = meta.get("resourceVersion")
        if rv and str(rv) != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(
                rt.group,
                rt.plural,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )

        new = copy.deepcopy(body)
        if rt.has_status and subresource == "status":
            # The status endpoint changes the status only (and never bumps generation).
            # DIFFERENCE: metadata changes sent to /status are dropped too (a real server keeps
            # some of them for some resources).
            status = new.get("status")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
        elif rt.has_status:
            # The main endpoint ignores status changes of resources with a status subresource.
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        nmeta = new.setdefault("metadata", {})
        ometa = old["metadata"]
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ):
            if field in ometa:
                nmeta[field] = ometa[field]
            else:
                nmeta.pop(field, None)
        if ometa.get("deletionTimestamp"):
            added = set(nmeta.get("finalizers") or []) - set(ometa.get("finalizers") or [])
            if added:
                raise ApiError.invalid(
                    rt.group,
                    rt.kind,
                    name,
                    [
                        FieldError(
                            "metadata.finalizers",
                            "no new finalizers can be added if the object is being deleted",
                            reason="FieldValueForbidden",
                            value=sorted(added),
                            show_value=False,
                        )
                    ],
                )
        if "managedFields" not in nmeta and "managedFields" in ometa:
            nmeta["managedFields"] = copy.deepcopy(ometa["managedFields"])

        if rt.key == CRD_KEY and subresource != "status":
            new["status"] = self._crd_status(new)
        new = self._validate(rt, new, old, params)
        nmeta = new["metadata"]
        if self._spec_part(rt, new) != self._spec_part(rt, old):
            nmeta["generation"] = int(ometa.get("generation", 1)) + 1
        patching.record_managed_fields(
            new,
            manager if manager is not None else self._manager(params),
            operation,
            changed if changed is not None else body,
            subresource,
        )

        # A no-op write changes nothing: no new resourceVersion, no event (as a real server).
        def comparable(o: Mapping[str, Any]) -> dict[str, Any]:
            m = {
                k: v
                for k, v in (o.get("metadata") or {}).items()
                if k not in ("resourceVersion", "managedFields")
            }
            return {**o, "metadata": m}

        if comparable(new) == comparable(old):
            return self.present(rt, old)
        if "dryRun" in params:
            return self.present(rt, new)
        nmeta["resourceVersion"] = self.store.next_rv()
        if nmeta.get("deletionTimestamp") and not nmeta.get("finalizers"):
            self.store.put(key, new, "MODIFIED")
            self._finalize(rt, key, new)
        else:
            self.store.put(key, new, "MODIFIED")
            self._after_write(rt, key, new, old)
        return self.present(rt, new)

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
            new["metadata"]["deletionTimestamp"] = _now()
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

    def _after_write(
        self, rt: ResourceType, key: ObjectKey, obj: dict[str, Any], old: Mapping[str, Any] | None
    ) -> None:
        if rt.key == CRD_KEY:
            spec = obj.get("spec") or {}
            self.unregister(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
            for new_rt in resource_types_from_crd(obj):
                self.register(new_rt)
        if self.simulate_workloads and rt.group == "apps" and rt.plural == "deployments":
            self._schedule(self._kubelet_deployment(key))
        if self.simulate_jobs and rt.group == "batch" and rt.plural == "jobs":
            self._schedule(self._kubelet_job(key))

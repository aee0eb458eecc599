"""Creating and updating objects in the sandbox API server as kube-apiserver does: names and
namespaces, validation (schemas, CRDs), metadata the server owns, generation, optimistic
concurrency, the status subresource, no-op writes, managed fields, and what a CRD's write sets
off. Deliberate differences from a real server are marked DIFFERENCE.
"""

from __future__ import annotations

import copy
import random
import string
import uuid
from collections.abc import Mapping
from typing import Any

from rankops.sandbox import patching
from rankops.sandbox.clock import utc_now
from rankops.sandbox.cluster_state import CRD_KEY, NAMESPACES_KEY
from rankops.sandbox.crd_checks import builtin_clash, crd_status
from rankops.sandbox.deletion import ClusterDeletion
from rankops.sandbox.errors import ApiError
from rankops.sandbox.field_errors import FieldError
from rankops.sandbox.registry import ResourceType, resource_types_from_crd
from rankops.sandbox.schema import validate_crd, validate_custom_resource, validate_object_name
from rankops.sandbox.store import ObjectKey

__all__ = ["ClusterWrites"]


class ClusterWrites(ClusterDeletion):
    """``create`` and ``update`` (every write ends in one of them)."""

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
        meta["creationTimestamp"] = utc_now()
        meta["generation"] = 1
        if rt.key == NAMESPACES_KEY:
            body["status"] = {"phase": "Active"}
            # as a real server (1.21+): what namespaceSelectors select a namespace by name with
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
        if rt.key == CRD_KEY:
            body["status"] = crd_status(body)
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
                clash = builtin_clash(body, self.types.values())
                if clash:
                    errors = [clash]
        if errors:
            raise ApiError.invalid(rt.group, rt.kind, name, errors)
        return body

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
            new["status"] = crd_status(new)
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

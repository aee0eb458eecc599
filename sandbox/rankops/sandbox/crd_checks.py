"""Checks of CustomResourceDefinitions and object names, as kube-apiserver makes them: the
CRD's own validity (names, scope, storage version, the estimated cost of its CEL rules, no clash
with a built-in resource), the version a custom resource is stored at, and the status the server
gives an accepted CRD."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from rankops.sandbox.cel.budget import check_schema_rules
from rankops.sandbox.clock import utc_now
from rankops.sandbox.field_errors import FieldError
from rankops.sandbox.registry import ResourceType

__all__ = ["builtin_clash", "crd_status", "crd_version", "validate_crd", "validate_object_name"]


def crd_version(crd: Mapping[str, Any], version: str | None = None) -> Mapping[str, Any]:
    """The CRD's entry in ``spec.versions`` for ``version`` (default: the storage version)."""
    versions = crd.get("spec", {}).get("versions", []) or []
    for ver in versions:
        if version is None and ver.get("storage"):
            return ver
        if version is not None and ver.get("name") == version:
            return ver
    if version is None and versions:
        return versions[0]
    raise KeyError(f"version {version!r} is not defined in CRD {crd.get('metadata', {}).get('name')!r}")


_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def validate_object_name(name: Any, path: str = "metadata.name") -> list[FieldError]:
    """Names of custom resources (and most objects) are DNS-1123 subdomains."""
    if not isinstance(name, str) or not name:
        return [FieldError(path, "name or generateName is required", reason="FieldValueRequired")]
    if len(name) > 253:
        return [FieldError(path, "must be no more than 253 characters", value=name)]
    if not _DNS1123_SUBDOMAIN.match(name):
        return [
            FieldError(
                path,
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
                " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex"
                " used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
                value=name,
            )
        ]
    return []


def validate_crd(crd: Mapping[str, Any]) -> list[FieldError]:
    """The checks of a CustomResourceDefinition that matter for serving it (not all of them)."""
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group")
    plural = names.get("plural")
    if not group:
        errors.append(FieldError("spec.group", "", reason="FieldValueRequired"))
    if not plural:
        errors.append(FieldError("spec.names.plural", "", reason="FieldValueRequired"))
    if not names.get("kind"):
        errors.append(FieldError("spec.names.kind", "", reason="FieldValueRequired"))
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        errors.append(
            FieldError(
                "spec.scope",
                'supported values: "Cluster", "Namespaced"',
                reason="FieldValueNotSupported",
                value=spec.get("scope"),
            )
        )
    name = (crd.get("metadata") or {}).get("name")
    if group and plural and name != f"{plural}.{group}":
        errors.append(FieldError("metadata.name", 'must be spec.names.plural+"."+spec.group', value=name))
    versions = spec.get("versions") or []
    if not versions or sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            FieldError(
                "spec.versions", "must have exactly one version marked as storage version", value=versions
            )
        )
    for idx, ver in enumerate(versions):
        schema = (ver.get("schema") or {}).get("openAPIV3Schema")
        if schema is None:
            errors.append(
                FieldError(
                    f"spec.versions[{idx}].schema.openAPIV3Schema",
                    "schemas are required",
                    reason="FieldValueRequired",
                )
            )
            continue
        for problem in check_schema_rules(schema, f"spec.versions[{idx}].schema.openAPIV3Schema"):
            if problem.forbidden:
                errors.append(
                    FieldError(problem.path, problem.message, reason="FieldValueForbidden", show_value=False)
                )
            else:
                errors.append(FieldError(problem.path, problem.message, value=problem.rule))
    return errors


def builtin_clash(crd: Mapping[str, Any], served: Iterable[ResourceType]) -> FieldError | None:
    """The error for a CRD naming a resource this server has built in, if it does."""
    spec = crd.get("spec") or {}
    for rt in served:
        if (
            rt.crd is None
            and rt.group == spec.get("group")
            and rt.plural == (spec.get("names") or {}).get("plural")
        ):
            return FieldError("spec.names.plural", "the resource is built into this server", value=rt.plural)
    return None


def crd_status(crd: Mapping[str, Any]) -> dict[str, Any]:
    """An accepted CRD's status: its names accepted, its storage version, Established."""
    now = utc_now()
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

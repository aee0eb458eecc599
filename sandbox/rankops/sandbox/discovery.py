"""Discovery documents: /version, /api, /apis, /apis/<group>, /apis/<group>/<version>.

Legacy (unaggregated) discovery only; clients that ask for aggregated discovery (kubectl)
fall back to it when the answer is a plain APIGroupList.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rankops.sandbox.errors import ApiError
from rankops.sandbox.registry import ResourceType

__all__ = ["api_group", "api_groups", "api_versions", "resource_list", "root_paths", "version_info"]

Types = Mapping[tuple[str, str, str], ResourceType]


def version_info() -> dict[str, str]:
    return {
        "major": "1",
        "minor": "31",
        "gitVersion": "v1.31.0-rankops-sandbox",
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.22",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def root_paths(types: Types) -> list[str]:
    paths = {"/api", "/api/v1", "/apis", "/version", "/healthz", "/readyz", "/livez"}
    for rt in types.values():
        if rt.group:
            paths |= {f"/apis/{rt.group}", f"/apis/{rt.group}/{rt.version}"}
    return sorted(paths)


def api_versions(address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}],
    }


def _group_versions(types: Types) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for rt in types.values():
        if rt.group and rt.version not in groups.setdefault(rt.group, []):
            groups[rt.group].append(rt.version)
    return groups


def _preferred(types: Types, group: str, versions: list[str]) -> str:
    for rt in types.values():  # a CRD's storage version is preferred
        if rt.group == group and rt.crd is not None:
            for ver in (rt.crd.get("spec") or {}).get("versions") or []:
                if ver.get("storage") and ver.get("name") in versions:
                    return str(ver["name"])
    return sorted(versions)[-1] if all(v.startswith("v") for v in versions) else versions[0]


def api_group(types: Types, group: str) -> dict[str, Any]:
    versions = _group_versions(types).get(group)
    if not versions:
        raise ApiError.not_served(f"/apis/{group}")
    preferred = _preferred(types, group, versions)
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{preferred}", "version": preferred},
    }


def api_groups(types: Types) -> dict[str, Any]:
    groups = [api_group(types, g) for g in sorted(_group_versions(types))]
    for g in groups:
        del g["kind"], g["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def resource_list(types: Types, group: str, version: str) -> dict[str, Any]:
    served = [rt for rt in types.values() if rt.group == group and rt.version == version]
    if not served:
        raise ApiError.not_served(f"/apis/{group}/{version}")
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [entry for rt in sorted(served, key=lambda t: t.plural) for entry in rt.discovery()],
    }

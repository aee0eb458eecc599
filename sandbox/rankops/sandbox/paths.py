"""API paths: ``/api/v1/namespaces/ns/pods/name/status`` into group, version, plural, namespace,
name and subresource (kmock 0.8's parser fails on ``/api/v1/namespaces`` and cluster-scoped
objects)."""

from __future__ import annotations

import attrs

__all__ = ["Path", "parse_api_path"]


@attrs.frozen
class Path:
    group: str | None = None  # None: not an API path
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_api_path(path: str) -> Path:
    parts = [p for p in path.split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return Path()
    if parts[0] == "api":
        group, rest = "", parts[1:]
    else:
        if len(parts) < 2:
            return Path()
        group, rest = parts[1], parts[2:]
    if not rest:
        return Path(group=group)
    version, rest = rest[0], rest[1:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":  # /namespaces/{ns}/{plural}...
        namespace, rest = rest[1], rest[2:]
    plural = rest[0] if rest else None
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return Path(group, version, plural, namespace, name, sub)

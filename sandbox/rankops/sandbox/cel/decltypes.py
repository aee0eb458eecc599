"""CEL types of schema nodes, with the size bounds the Kubernetes cost estimator uses.

A port of ``SchemaDeclType`` (``k8s.io/apiserver/pkg/cel/common/schemas.go``): each node's
kind, its ``max_elements`` (list items, map entries, string length) and the minimum size
of its JSON form. Unbounded lists, maps and strings get the most a 3 MiB request could
hold; a string's ``maxLength`` counts four bytes per character, as the server counts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_REQUEST_SIZE", "DeclType", "decl_type", "max_cardinality"]

MAX_REQUEST_SIZE = 3 * 1024 * 1024
_MIN_STRING = 2  # ""
_MIN_BOOL = 4  # true
_MIN_NUMBER = 1  # 0
_MAX_DURATION = 32
_DATE = 12
_MAX_DATETIME = 32
_MIN_DATETIME = 21
_MIN_DURATION = 3
SCALARS = frozenset({"int", "uint", "double", "bool", "timestamp", "duration", "null"})


@dataclass(frozen=True)
class DeclType:
    """``kind`` is object, map, list, string, bytes, int, uint, double, bool, timestamp,
    duration or dyn; ``elem`` the item (list) or value (map) type; ``fields`` an object's
    properties."""

    kind: str
    max_elements: int = 0
    min_size: int = _MIN_NUMBER
    elem: DeclType | None = None
    fields: Mapping[str, DeclType] | None = field(default=None, compare=False)


def _string_max(schema: Mapping[str, Any]) -> int:
    if schema.get("x-kubernetes-int-or-string"):
        return MAX_REQUEST_SIZE - 2
    return {"duration": _MAX_DURATION, "date": _DATE, "date-time": _MAX_DATETIME}.get(
        schema.get("format", ""), MAX_REQUEST_SIZE - 2
    )


_STRING = {"type": "string"}
_OBJECT_META = {"type": "object", "properties": {"name": _STRING, "generateName": _STRING}}


def decl_type(schema: Mapping[str, Any] | None, is_root: bool = False) -> DeclType | None:
    """The node's CEL type, or None where the server does not expose the node to CEL."""
    if not isinstance(schema, Mapping):
        return None
    if schema.get("x-kubernetes-int-or-string"):
        bound = schema.get("maxLength")
        return DeclType("dyn", int(bound) * 4 if bound is not None else _string_max(schema), 1)
    if is_root:  # apiVersion, kind and metadata.name/generateName, and only those, are visible
        props = {**(schema.get("properties") or {}), "apiVersion": _STRING, "kind": _STRING}
        schema = {**schema, "properties": {**props, "metadata": _OBJECT_META}}
    typ = schema.get("type")
    if typ == "array":
        items = schema.get("items")
        item = decl_type(
            items, bool(isinstance(items, Mapping) and items.get("x-kubernetes-embedded-resource"))
        )
        if item is None:
            return None
        bound = schema.get("maxItems")
        count = max(0, int(bound)) if bound is not None else (MAX_REQUEST_SIZE - 2) // (item.min_size + 1)
        return DeclType("list", count, 2, elem=item)
    if typ == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            value = decl_type(extra, bool(extra.get("x-kubernetes-embedded-resource")))
            if value is None:
                return None
            bound = schema.get("maxProperties")
            count = (
                max(0, int(bound)) if bound is not None else (MAX_REQUEST_SIZE - 2) // (value.min_size + 6)
            )
            return DeclType("map", count, 2, elem=value)
        fields: dict[str, DeclType] = {}
        required = set(schema.get("required") or [])
        min_size = 2  # {}
        for name, prop in (schema.get("properties") or {}).items():
            sub = decl_type(
                prop, bool(isinstance(prop, Mapping) and prop.get("x-kubernetes-embedded-resource"))
            )
            if sub is None:
                continue
            fields[name] = sub
            if name in required and "default" not in prop:
                min_size += len(name) + sub.min_size + 4
        return DeclType("object", 0, min_size, fields=fields)
    if typ == "string":
        fmt = schema.get("format")
        if fmt == "byte":
            bound = schema.get("maxLength")
            return DeclType(
                "bytes", max(0, int(bound)) if bound is not None else _string_max(schema), _MIN_STRING
            )
        if fmt == "duration":
            return DeclType("duration", _string_max(schema), _MIN_DURATION)
        if fmt in ("date", "date-time"):
            return DeclType("timestamp", _string_max(schema), _DATE if fmt == "date" else _MIN_DATETIME)
        bound = schema.get("maxLength")
        if bound is not None:
            longest = max(0, int(bound)) * 4
        elif schema.get("enum"):
            longest = max((len(v) for v in schema["enum"] if isinstance(v, str)), default=0)
        else:
            longest = _string_max(schema)
        return DeclType("string", longest, _MIN_STRING)
    if typ == "boolean":
        return DeclType("bool", 0, _MIN_BOOL)
    if typ == "number":
        return DeclType("double", 0, _MIN_NUMBER)
    if typ == "integer":
        return DeclType("int", 0, _MIN_NUMBER)
    return None


def max_cardinality(min_size: int) -> int:
    """How often data of this minimum size could repeat in one request (unbounded parents)."""
    return MAX_REQUEST_SIZE // (min_size + 1)

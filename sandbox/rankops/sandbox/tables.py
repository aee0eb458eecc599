"""Server-side printing: ``meta.k8s.io/v1 Table`` for ``kubectl get``.

Includes a small JSONPath evaluator for ``additionalPrinterColumns`` (the subset CRDs use:
``.a.b``, ``.a[0]``, ``.a[*].b``, ``.a[?(@.type=="Ready")].status``, ``['key.with.dots']``).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["build_table", "human_age", "jsonpath"]

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_$-]+)           # .field
      | \[(?P<index>-?\d+|\*)\]               # [0] or [*]
      | \[\?\(@\.(?P<fkey>[A-Za-z0-9_.]+)\s*==\s*(?P<fval>"[^"]*"|'[^']*'|[^)]+)\)\]  # filter
      | \[['"](?P<qname>[^'"]+)['"]\]         # ['a.b']
      | \.\*                                  # .*
    """,
    re.X,
)


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate a simple JSONPath (optionally wrapped in ``{}``) and return all matches."""
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    if path.startswith("$"):
        path = path[1:]
    nodes: list[Any] = [obj]
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if not m:
            return []
        pos = m.end()
        nxt: list[Any] = []
        for node in nodes:
            if m.group("name") is not None or m.group("qname") is not None:
                key = m.group("name") or m.group("qname")
                if isinstance(node, Mapping) and key in node:
                    nxt.append(node[key])
            elif m.group("index") is not None:
                if isinstance(node, list):
                    if m.group("index") == "*":
                        nxt.extend(node)
                    else:
                        idx = int(m.group("index"))
                        if -len(node) <= idx < len(node):
                            nxt.append(node[idx])
            elif m.group("fkey") is not None:
                want = m.group("fval").strip()
                if want[:1] in "\"'":
                    want = want[1:-1]
                if isinstance(node, list):
                    for item in node:
                        val = _dig(item, m.group("fkey").split("."))
                        if val is not None and _scalar_text(val) == want:
                            nxt.append(item)
            else:  # .*
                if isinstance(node, Mapping):
                    nxt.extend(node.values())
                elif isinstance(node, list):
                    nxt.extend(node)
        nodes = nxt
    return nodes


def _dig(node: Any, keys: Sequence[str]) -> Any:
    for key in keys:
        node = node.get(key) if isinstance(node, Mapping) else None
    return node


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def human_age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """``kubectl``-style age: 5s, 3m, 2h5m, 4d... (or ``<unknown>``)."""
    if not timestamp:
        return "<unknown>"
    try:
        then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return "<unknown>"
    now = now or datetime.datetime.now(datetime.UTC)
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h{minutes % 60}m" if hours < 8 and minutes % 60 else f"{hours}h"
    days = hours // 24
    return f"{days}d" if days < 730 else f"{days // 365}y"


_COLUMN_TYPES = {"integer", "number", "string", "boolean", "date"}


def build_table(
    objects: Sequence[Mapping[str, Any]],
    printer_columns: Sequence[Mapping[str, Any]] = (),
    resource_version: str = "",
    include_object: str = "Metadata",
) -> dict[str, Any]:
    """A ``meta.k8s.io/v1`` Table: Name, the printer columns (Age where the CRD says so)."""
    columns: list[dict[str, Any]] = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "priority": 0,
            "description": "Name must be unique within a namespace.",
        }
    ]
    specs: list[Mapping[str, Any]] = list(printer_columns)
    has_age = any(c.get("jsonPath") == ".metadata.creationTimestamp" for c in specs)
    for col in specs:
        columns.append(
            {
                "name": col.get("name", ""),
                "type": col.get("type", "string") if col.get("type") in _COLUMN_TYPES else "string",
                "format": col.get("format", ""),
                "description": col.get("description", ""),
                "priority": int(col.get("priority", 0)),
            }
        )
    if not has_age:  # the real server adds Age for CRDs without columns, and builtins have one
        columns.append(
            {
                "name": "Age",
                "type": "date",
                "format": "",
                "priority": 0,
                "description": "CreationTimestamp is a timestamp.",
            }
        )
    now = datetime.datetime.now(datetime.UTC)
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        cells: list[Any] = [meta.get("name", "")]
        for col in specs:
            found = jsonpath(obj, col.get("jsonPath", ""))
            if not found:
                cells.append(None)
            elif col.get("type") == "date":
                cells.append(human_age(str(found[0]), now))
            elif col.get("type") in ("integer", "number", "boolean") and len(found) == 1:
                cells.append(found[0])
            else:
                cells.append(",".join(_scalar_text(v) for v in found))
        if not has_age:
            cells.append(human_age(meta.get("creationTimestamp"), now))
        row: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            row["object"] = dict(obj)
        elif include_object != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": dict(meta),
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    }

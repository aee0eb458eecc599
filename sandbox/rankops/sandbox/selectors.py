"""Label and field selectors, as the API server parses them from query parameters."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["SelectorError", "match_fields", "match_labels", "parse_field_selector", "parse_label_selector"]

Predicate = Callable[[Mapping[str, Any]], bool]
LabelPredicate = Callable[[Mapping[str, str]], bool]


class SelectorError(ValueError):
    """A selector that cannot be parsed (the server answers 400 BadRequest)."""


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    depth, current = 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([A-Za-z0-9_./-]+)\s+(in|notin)\s*\(([^)]*)\)$")
_OP_RE = re.compile(r"^([A-Za-z0-9_./-]+)\s*(==|!=|=)\s*([A-Za-z0-9_.-]*)$")
_KEY_RE = re.compile(r"^(!?)\s*([A-Za-z0-9_./-]+)$")


def _label_check(kind: str, key: str, values: frozenset[str] = frozenset()) -> LabelPredicate:
    def check(labels: Mapping[str, str]) -> bool:
        if kind == "in":
            return labels.get(key) in values
        if kind == "notin":
            return labels.get(key) not in values
        if kind == "eq":
            return key in labels and labels.get(key) in values
        if kind == "ne":
            return labels.get(key) not in values
        if kind == "exists":
            return key in labels
        return key not in labels  # "absent"

    return check


def parse_label_selector(text: str | None) -> LabelPredicate:
    """Parse ``a=b,c!=d,e in (x,y),f notin (z),g,!h`` into a predicate over a labels dict."""
    checks: list[LabelPredicate] = []
    for term in _split_top_level(text or ""):
        if m := _SET_RE.match(term):
            key, op, values_text = m.groups()
            values = frozenset(v.strip() for v in values_text.split(",") if v.strip())
            checks.append(_label_check(op, key, values))
        elif m := _OP_RE.match(term):
            key, op, value = m.groups()
            checks.append(_label_check("ne" if op == "!=" else "eq", key, frozenset([value])))
        elif m := _KEY_RE.match(term):
            negated, key = m.groups()
            checks.append(_label_check("absent" if negated else "exists", key))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(check(labels) for check in checks)


def _field_check(path: str, negate: bool, value: str) -> Predicate:
    keys = path.split(".")

    def check(obj: Mapping[str, Any]) -> bool:
        node: Any = obj
        for key in keys:
            node = node.get(key) if isinstance(node, Mapping) else None
        text = "" if node is None else str(node)
        return (text != value) if negate else (text == value)

    return check


def parse_field_selector(text: str | None) -> Predicate:
    """Parse ``metadata.name=x,metadata.namespace!=y`` into a predicate over a whole object.

    DIFFERENCE: any dotted path is accepted (a real server allows a per-resource set of
    fields: ``metadata.name``, ``metadata.namespace``, and a few like ``status.phase`` for pods).
    """
    checks: list[Predicate] = []
    for term in _split_top_level(text or ""):
        m = _OP_RE.match(term)
        if not m:
            raise SelectorError(f"invalid field selector: {term!r}")
        path, op, value = m.groups()
        checks.append(_field_check(path, op == "!=", value))
    return lambda obj: all(check(obj) for check in checks)


def match_labels(selector: str | None, obj: Mapping[str, Any]) -> bool:
    return parse_label_selector(selector)((obj.get("metadata") or {}).get("labels") or {})


def match_fields(selector: str | None, obj: Mapping[str, Any]) -> bool:
    return parse_field_selector(selector)(obj)

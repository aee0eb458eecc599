"""Patch flavours of the API server: merge, JSON, strategic-merge (as merge) and server-side apply."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import jsonpatch
import yaml

from rankops.sandbox.clock import utc_now

__all__ = [
    "APPLY",
    "JSON",
    "MERGE",
    "STRATEGIC",
    "apply_patch",
    "fields_v1",
    "json_merge_patch",
    "record_managed_fields",
    "server_side_apply",
]

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"


class PatchError(ValueError):
    """A patch that cannot be parsed or applied (the server answers 400 / 422)."""


def json_merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


def parse_body(content_type: str, text: str) -> Any:
    try:
        if content_type == APPLY:
            return yaml.safe_load(text)
        return json.loads(text) if text else None
    except (ValueError, yaml.YAMLError) as exc:
        raise PatchError(f"the body of the request could not be decoded: {exc}") from exc


def apply_patch(current: dict[str, Any], content_type: str, body: Any) -> dict[str, Any]:
    """Apply a merge / JSON / strategic-merge patch to ``current``; return a new dict."""
    if content_type == JSON:
        if not isinstance(body, list):
            raise PatchError("a JSON patch must be a list of operations")
        try:
            result = jsonpatch.apply_patch(current, body, in_place=False)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise PatchError(
                f"the server rejected our request due to an error in our request: {exc}"
            ) from exc
        if not isinstance(result, dict):
            raise PatchError("a JSON patch must leave an object")
        return result
    if content_type in (MERGE, STRATEGIC):
        # DIFFERENCE: strategic-merge-patch is treated as a JSON merge patch: lists are replaced
        # as a whole, never merged by their patchMergeKey, and `$patch`/`$retainKeys`
        # directives are not interpreted. kubectl's client-side apply of built-ins works
        # with this because it sends whole lists.
        if not isinstance(body, Mapping):
            raise PatchError("a merge patch must be an object")
        result = json_merge_patch(current, body)
        assert isinstance(result, dict)
        return result
    raise PatchError(f"unsupported patch type {content_type}")


# ---------------------------------------------------------------------------------------------
# Server-side apply, minimal model.
#
# What is emulated: create-if-absent; the applied configuration is merged into the live object
# (maps merge recursively; lists of maps that carry a `name` key merge by name; other lists are
# replaced); fields that the same manager applied before but omits now are removed, unless
# another manager's entry also lists them; `metadata.managedFields` records one entry per
# manager and operation with a `fieldsV1` set of the fields it applied or wrote; an apply that
# changes the value of a field another manager owns is a conflict (409) unless `force=true`,
# which moves the field to the applier.
# What is not emulated: ownership moving on Update operations (a merge patch adds the
# patcher's entry but leaves other owners in place); `x-kubernetes-list-map-keys` other than
# `name`; atomic/granular struct markers; sets (`x-kubernetes-list-type: set`) by value.


def _leaf_paths(value: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    if isinstance(value, Mapping) and value:
        for key, child in value.items():
            paths |= _leaf_paths(child, (*prefix, f"f:{key}"))
    elif isinstance(value, list) and value and all(isinstance(i, Mapping) and "name" in i for i in value):
        for item in value:
            key = "k:" + json.dumps({"name": item["name"]}, separators=(",", ":"))
            sub = {k: v for k, v in item.items() if k != "name"}
            paths.add((*prefix, key))
            paths |= _leaf_paths(sub, (*prefix, key))
    else:
        paths.add(prefix)
    return paths


def fields_v1(value: Mapping[str, Any]) -> dict[str, Any]:
    """The ``fieldsV1`` tree (``{"f:spec": {"f:replicas": {}}}``) of the fields in ``value``."""
    tree: dict[str, Any] = {}
    trimmed = {k: v for k, v in value.items() if k not in ("apiVersion", "kind")}
    meta = trimmed.get("metadata")
    if isinstance(meta, Mapping):
        meta = {
            k: v for k, v in meta.items() if k in ("labels", "annotations", "finalizers", "ownerReferences")
        }
        trimmed = (
            {**trimmed, "metadata": meta} if meta else {k: v for k, v in trimmed.items() if k != "metadata"}
        )
    for path in _leaf_paths(trimmed):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def _tree_paths(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for key, child in tree.items():
        paths.add((*prefix, key))
        if isinstance(child, Mapping):
            paths |= _tree_paths(child, (*prefix, key))
    return paths


def _remove_path(obj: Any, path: tuple[str, ...]) -> None:
    node = obj
    for idx, part in enumerate(path):
        last = idx == len(path) - 1
        if part.startswith("f:") and isinstance(node, dict):
            key = part[2:]
            if last:
                node.pop(key, None)
                return
            node = node.get(key)
        elif part.startswith("k:") and isinstance(node, list):
            want = json.loads(part[2:])
            match = [
                i for i in node if isinstance(i, Mapping) and all(i.get(k) == v for k, v in want.items())
            ]
            if not match:
                return
            if last:
                node.remove(match[0])
                return
            node = match[0]
        else:
            return


def _merge_apply(live: Any, applied: Any) -> Any:
    if isinstance(applied, Mapping) and isinstance(live, Mapping):
        result = dict(live)
        for key, value in applied.items():
            result[key] = _merge_apply(live.get(key), value)
        return result
    if (
        isinstance(applied, list)
        and isinstance(live, list)
        and all(isinstance(i, Mapping) and "name" in i for i in applied)
        and all(isinstance(i, Mapping) and "name" in i for i in live)
    ):
        by_name = {i["name"]: i for i in live}
        merged = [_merge_apply(by_name.get(i["name"]), i) for i in applied]
        applied_names = {i["name"] for i in applied}
        return merged + [copy.deepcopy(i) for i in live if i["name"] not in applied_names]
    return copy.deepcopy(applied)


class ApplyConflict(Exception):
    """Fields the apply would change are owned by other managers: ``[(manager, ".a.b"), ...]``."""

    def __init__(self, conflicts: list[tuple[str, str]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts

    def __str__(self) -> str:
        lines = "\n".join(f'- conflict with "{m}": {f}' for m, f in self.conflicts)
        plural = "s" if len(self.conflicts) > 1 else ""
        return f"Apply failed with {len(self.conflicts)} conflict{plural}:\n{lines}"


def _leaves(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for key, child in tree.items():
        if isinstance(child, Mapping) and child:
            found |= _leaves(child, (*prefix, key))
        else:
            found.add((*prefix, key))
    return found


def _lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    node = obj
    for part in path:
        if part.startswith("f:") and isinstance(node, Mapping) and part[2:] in node:
            node = node[part[2:]]
        elif part.startswith("k:") and isinstance(node, list):
            want = json.loads(part[2:])
            match = [
                i for i in node if isinstance(i, Mapping) and all(i.get(k) == v for k, v in want.items())
            ]
            if not match:
                return False, None
            node = match[0]
        else:
            return False, None
    return True, node


def _path_text(path: tuple[str, ...]) -> str:
    text = ""
    for part in path:
        if part.startswith("f:"):
            text += "." + part[2:]
        else:
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in json.loads(part[2:]).items()) + "]"
    return text


def _drop_leaf(tree: dict[str, Any], path: tuple[str, ...]) -> None:
    node = tree
    parents = []
    for part in path[:-1]:
        if part not in node:
            return
        parents.append((node, part))
        node = node[part]
    node.pop(path[-1], None)
    for parent, part in reversed(parents):
        if not parent[part]:
            del parent[part]


def server_side_apply(
    live: dict[str, Any] | None,
    applied: Mapping[str, Any],
    manager: str,
    subresource: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Merge an applied configuration into the live object (or a new one) for ``manager``.

    Raises :class:`ApplyConflict` when it would change fields other managers own, unless
    ``force`` (then those fields move to ``manager``).
    """
    base: dict[str, Any] = copy.deepcopy(live) if live is not None else {}
    entries: list[dict[str, Any]] = list((base.get("metadata") or {}).get("managedFields") or [])
    mine = [
        e
        for e in entries
        if e.get("manager") == manager
        and e.get("operation") == "Apply"
        and e.get("subresource", "") == (subresource or "")
    ]
    others = [copy.deepcopy(e) for e in entries if e not in mine]
    new_tree = fields_v1(applied)
    new_leaves = _leaves(new_tree)
    conflicts: list[tuple[str, str]] = []
    for other in others:
        if other.get("subresource", "") != (subresource or ""):
            continue
        tree = other.get("fieldsV1") or {}
        for path in sorted(new_leaves & _leaves(tree)):
            live_found, live_value = _lookup(base, path)
            _, applied_value = _lookup(applied, path)
            if live_found and live_value != applied_value:
                if not force:
                    conflicts.append((str(other.get("manager", "")), _path_text(path)))
                else:
                    _drop_leaf(tree, path)
    if conflicts:
        raise ApplyConflict(conflicts)
    others = [e for e in others if e.get("fieldsV1")]
    if mine:
        old_paths = _tree_paths(mine[0].get("fieldsV1") or {})
        keep = _tree_paths(new_tree)
        for other in others:
            keep |= _tree_paths(other.get("fieldsV1") or {})
        for path in sorted(old_paths - keep, key=len, reverse=True):
            _remove_path(base, path)
    result = _merge_apply(base, applied)
    assert isinstance(result, dict)
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": applied.get("apiVersion", ""),
        "time": utc_now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": new_tree,
    }
    if subresource:
        entry["subresource"] = subresource
    result.setdefault("metadata", {})["managedFields"] = [*others, entry]
    return result


def record_managed_fields(
    obj: dict[str, Any],
    manager: str | None,
    operation: str,
    changed: Mapping[str, Any],
    subresource: str | None = None,
) -> None:
    """Record (replace) this manager's ``Update`` entry in ``metadata.managedFields``, minimally."""
    if not manager:
        return
    meta = obj.setdefault("metadata", {})
    entries = [
        e
        for e in (meta.get("managedFields") or [])
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource", "") == (subresource or "")
        )
    ]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": obj.get("apiVersion", ""),
        "time": utc_now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(changed),
    }
    if subresource:
        entry["subresource"] = subresource
    meta["managedFields"] = [*entries, entry]

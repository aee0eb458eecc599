"""The structural-schema walk of a custom resource: prune, default and validate one node at a
time, children first (objects, arrays, ``allOf``/``anyOf``/``oneOf``/``not``, the
``x-kubernetes-validations`` CEL rules), collecting the :class:`FieldError` the server answers
with. :func:`rankops.sandbox.schema.validate_custom_resource` drives it."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any

from rankops.sandbox.cel import runtime as cel_runtime
from rankops.sandbox.field_errors import FieldError, format_value
from rankops.sandbox.schema_values import json_type_name, type_ok, value_errors

__all__ = ["SchemaWalker", "evaluate_cel"]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class SchemaWalker:
    def __init__(self, errors: list[FieldError], pruned: list[str] | None = None) -> None:
        self.errors = errors
        self.pruned = pruned

    def err(
        self,
        path: str,
        message: str,
        value: Any = None,
        reason: str = "FieldValueInvalid",
        show_value: bool = True,
    ) -> None:
        self.errors.append(FieldError(path, message, reason=reason, value=value, show_value=show_value))

    def walk(self, value: Any, schema: Mapping[str, Any], path: str, old: Any, root: bool = False) -> Any:
        if value is None:
            if schema.get("nullable"):
                return None
            typ = schema.get("type")
            if typ:
                self.err(path, f'{path or "<root>"} in body must be of type {typ}: "null"', value=None)
            return None

        typ = schema.get("type")
        int_or_string = schema.get("x-kubernetes-int-or-string")
        if int_or_string:
            if not (isinstance(value, str) or type_ok(value, "integer")):
                self.err(
                    path, f"{path} in body must be of type integer,string: {format_value(value)}", value=value
                )
                return value
        elif typ and not type_ok(value, typ):
            actual = json_type_name(value)
            self.err(path, f'{path} in body must be of type {typ}: "{actual}"', value=value)
            return value

        if isinstance(value, dict):
            value = self._walk_object(value, schema, path, old if isinstance(old, dict) else None, root)
        elif isinstance(value, list):
            value = self._walk_array(value, schema, path, old if isinstance(old, list) else None)

        self.errors.extend(value_errors(value, schema, path))
        self._check_composition(value, schema, path)
        self._check_cel(value, schema, path, old)
        return value

    # -- objects ---------------------------------------------------------------------------

    def _walk_object(
        self,
        value: dict[str, Any],
        schema: Mapping[str, Any],
        path: str,
        old: dict[str, Any] | None,
        root: bool,
    ) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        keep_always = {"apiVersion", "kind", "metadata"} if (root or embedded) else set()

        result: dict[str, Any] = {}
        for key, child in value.items():
            if (
                key in keep_always
                or key in props
                or isinstance(additional, Mapping)
                or additional is True
                or preserve
            ):
                result[key] = child
            elif self.pruned is not None:  # pruned, as a structural schema requires
                self.pruned.append(_join(path, key))

        # Defaults: absent keys, and nulls of non-nullable fields that have a default.
        for key, sub in props.items():
            if not isinstance(sub, Mapping) or "default" not in sub:
                continue
            if key not in result or (result[key] is None and not sub.get("nullable")):
                result[key] = copy.deepcopy(sub["default"])

        for key in list(result):
            if key in keep_always:
                # apiVersion, kind and metadata of a (root or embedded) object are the API
                # machinery's: never pruned or validated through the schema (DIFFERENCE: the
                # server still applies name/generateName constraints from a root schema).
                continue
            sub = props.get(key)
            if sub is None and isinstance(additional, Mapping):
                sub = additional
                child_path = f"{path}[{key}]" if path else key
            else:
                child_path = _join(path, key)
            if isinstance(sub, Mapping):
                old_child = old.get(key) if old is not None else None
                result[key] = self.walk(result[key], sub, child_path, old_child)

        for req in schema.get("required") or []:
            if req not in result:
                self.err(_join(path, req), "", reason="FieldValueRequired")
        if "maxProperties" in schema and len(result) > schema["maxProperties"]:
            self.err(
                path,
                f"must have at most {schema['maxProperties']} items",
                value=len(result),
                reason="FieldValueTooMany",
            )
        if "minProperties" in schema and len(result) < schema["minProperties"]:
            self.err(
                path,
                f"{path} in body should have at least {schema['minProperties']} properties",
                value=len(result),
            )
        return result

    # -- arrays ----------------------------------------------------------------------------

    def _walk_array(
        self, value: list[Any], schema: Mapping[str, Any], path: str, old: list[Any] | None
    ) -> list[Any]:
        items = schema.get("items")
        list_type = schema.get("x-kubernetes-list-type")
        map_keys = schema.get("x-kubernetes-list-map-keys") or []
        old_by_key: dict[tuple[Any, ...], Any] = {}
        if old is not None and list_type == "map" and map_keys:
            for item in old:
                if isinstance(item, dict):
                    old_by_key[tuple(item.get(k) for k in map_keys)] = item
        result = []
        for idx, item in enumerate(value):
            if isinstance(items, Mapping):
                old_item = None
                if old_by_key and isinstance(item, dict):
                    old_item = old_by_key.get(tuple(item.get(k) for k in map_keys))
                item = self.walk(item, items, f"{path}[{idx}]", old_item)
            result.append(item)

        if "maxItems" in schema and len(result) > schema["maxItems"]:
            self.err(
                path,
                f"must have at most {schema['maxItems']} items",
                value=len(result),
                reason="FieldValueTooMany",
            )
        if "minItems" in schema and len(result) < schema["minItems"]:
            self.err(
                path, f"{path} in body should have at least {schema['minItems']} items", value=len(result)
            )
        if schema.get("uniqueItems") or list_type == "set":
            seen: list[Any] = []
            for idx, item in enumerate(result):
                if item in seen:
                    self.err(f"{path}[{idx}]", "", value=item, reason="FieldValueDuplicate")
                else:
                    seen.append(item)
        if list_type == "map" and map_keys:
            seen_keys: set[str] = set()
            for idx, item in enumerate(result):
                if isinstance(item, dict):
                    key = json.dumps([item.get(k) for k in map_keys])
                    if key in seen_keys:
                        self.err(f"{path}[{idx}]", "", value=item, reason="FieldValueDuplicate")
                    seen_keys.add(key)
        return result

    # -- scalar constraints ----------------------------------------------------------------

    def _check_composition(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        # Structural schemas allow value validations only inside allOf/anyOf/oneOf/not.
        for sub in schema.get("allOf") or []:
            self._sub_errors(value, sub, path, record=True)
        any_of = schema.get("anyOf")
        if any_of and not any(not self._sub_errors(value, sub, path) for sub in any_of):
            self.err(path, f"{path} in body must validate at least one schema (anyOf)", value=value)
        one_of = schema.get("oneOf")
        if one_of:
            passing = sum(1 for sub in one_of if not self._sub_errors(value, sub, path))
            if passing != 1:
                self.err(path, f"{path} in body must validate one and only one schema (oneOf)", value=value)
        not_schema = schema.get("not")
        if isinstance(not_schema, Mapping) and not self._sub_errors(value, not_schema, path):
            self.err(path, f"{path} in body must not validate the schema (not)", value=value)

    def _sub_errors(
        self, value: Any, sub: Mapping[str, Any], path: str, record: bool = False
    ) -> list[FieldError]:
        errors: list[FieldError] = []
        walker = SchemaWalker(errors)
        sub = dict(sub)
        sub.setdefault("x-kubernetes-preserve-unknown-fields", True)  # value validations only
        walker.walk(copy.deepcopy(value), sub, path, None)
        if record:
            self.errors.extend(errors)
        return errors

    # -- CEL ---------------------------------------------------------------------------------

    def _check_cel(self, value: Any, schema: Mapping[str, Any], path: str, old: Any) -> None:
        rules = schema.get("x-kubernetes-validations") or []
        for rule in rules:
            if not isinstance(rule, Mapping) or not isinstance(rule.get("rule"), str):
                continue
            text: str = rule["rule"]
            uses_old = bool(re.search(r"\boldSelf\b", text))
            if uses_old and old is None:
                continue  # a transition rule: only evaluated on update with a correlatable old value
            err_path = path
            if rule.get("fieldPath"):
                err_path = (
                    path + rule["fieldPath"]
                    if rule["fieldPath"].startswith((".", "["))
                    else (_join(path, rule["fieldPath"]))
                )
            # The server reports the schema type as the value ("object", "string", ...), not the data.
            shown = schema.get("type", "")
            told = (rule.get("message") or "").strip() or text.strip()
            try:
                outcome = evaluate_cel(text, value, old if uses_old else None, schema=schema)
            except Exception as exc:
                detail = str(exc.args[0]) if exc.args else str(exc)
                if detail.startswith("no such overload"):
                    detail = (
                        f"'{detail}': call arguments did not match a supported operator, function or macro"
                        f" signature for rule: {told}"
                    )
                else:
                    detail = f"{detail} evaluating rule: {told}"
                self.err(path, detail, value=shown)
                continue
            if outcome is True:
                continue
            message = (rule.get("message") or "").strip() or f"failed rule: {told}"
            if rule.get("messageExpression"):
                try:
                    produced = evaluate_cel(
                        rule["messageExpression"], value, old if uses_old else None, raw=True, schema=schema
                    )
                    if isinstance(produced, str) and produced.strip() and "\n" not in produced:
                        message = produced.strip()
                except Exception:
                    pass  # the server falls back to message (and logs the failure)
            reason = rule.get("reason", "")
            if reason == "FieldValueForbidden":
                self.err(err_path, message, reason=reason, show_value=False)
            elif reason == "FieldValueRequired":
                self.err(err_path, message, reason=reason)
            elif reason == "FieldValueDuplicate":
                self.err(err_path, "", value=shown, reason=reason)
            else:
                self.err(err_path, message, value=shown)


def evaluate_cel(
    rule: str, value: Any, old: Any = None, raw: bool = False, schema: Mapping[str, Any] | None = None
) -> Any:
    """Evaluate one CEL expression with ``self`` (and ``oldSelf``) bound; a bool unless ``raw``."""
    return cel_runtime.evaluate(rule, value, old, schema=schema, raw=raw)

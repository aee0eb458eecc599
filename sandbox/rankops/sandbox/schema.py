"""Structural-schema handling of custom resources, as kube-apiserver does it for CRDs.

Pure functions, no I/O, no server: other code and tests call them directly.

``validate_custom_resource(crd, obj, old=None)`` returns the object pruned and defaulted
as the API server would store it, plus the list of :class:`FieldError` the server would
answer with (422 Invalid). The order follows the API server: unknown fields are pruned,
``default`` values applied, then the value validations of OpenAPI v3 (type, enum, pattern,
bounds, lengths, required, nullable, formats, ``x-kubernetes-int-or-string``,
``x-kubernetes-preserve-unknown-fields``) and the ``x-kubernetes-validations`` CEL rules
(:mod:`rankops.sandbox.cel`: cel-python with the Kubernetes libraries, ``self`` bound to the
node, ``oldSelf`` to the prior value for transition rules). ``validate_crd`` compiles every
rule and applies the server's estimated cost limits (per rule and per schema), refusing the
CRD with the server's messages.

CEL as a real server runs it: the lists library, the strings extension, regex ``find``/
``findAll``, ``url()``, ``quantity()``, cross-type numeric comparison, values typed by the
schema (``number`` is a double, ``date-time`` a timestamp, ``duration`` a duration), the
error texts of failed rules (the schema type as the value) and of erroring rules
("... evaluating rule: ..."). Unknown functions, undefined fields, member functions called
on a receiver of the wrong known type, rules of a known non-bool type, constant regexes
RE2 refuses and syntax errors refuse the CRD at creation, as on a real server.

Deliberate differences from a real API server (kept small and named):
- CEL type checking: no full static type checker; field selection, function names, the
  receiver kinds of member functions and the result kind are checked where the type is
  known. Other type errors a real server refuses at CRD creation (``'a' + 1``, a list of
  ints to ``join()``, arguments of the wrong type) show up here only when the rule runs,
  as a 422 "no such overload" on the object.
- CEL libraries not provided: ``format``, ``strings.quote``, ``reverse``, sets, ``ip``/
  ``cidr``, ``semver``, ``lists.range``/``sort``/``flatten``/``slice``, optionals
  (``?.``, ``orValue``), ``cel.bind``, the math extension, two-variable comprehensions,
  authorizer. A rule using them is refused at CRD creation ("undeclared reference") where a
  server of a recent version accepts it.
- CEL cost: the estimate follows cel-go's ``checker.Cost`` and the Kubernetes library
  estimator, with the schema's bounds and cardinalities, and reproduces the server's figures
  where we could check them (``all(x, x.contains(...))`` over bounded strings). It is an
  approximation where cel-python's parse tree lacks the checker's types: an expression of
  unknown type has an unknown (maximal) size, so a rule can cost more here than on a
  server. Only the maximum is tracked. The runtime budgets (per call and per validation)
  are not enforced: a rule runs to completion.
- Equality of opaque values (``quantity(a) == quantity(b)``) has an unbounded estimated
  cost, cel-go's default for types without a size (a server overrides this for IP/CIDR).
- A rule refused at CRD creation shows the rule's text as the value; the server prints the
  Go struct of the rule (``apiextensions.ValidationRule{Rule:...}``).
- Runtime error texts follow cel-go for the library functions; errors cel-python raises
  itself (integer overflow, division by zero, missing keys) keep cel-python's wording.
- Validation ratcheting (errors on unchanged fields of an update become warnings) is not
  implemented: every rule of every node is enforced on update.
- ``oldSelf`` is correlated through object properties and ``additionalProperties`` keys,
  and through ``x-kubernetes-list-type: map`` lists by their keys; not through other lists.
  A rule is a transition rule when its text names ``oldSelf``; ``optionalOldSelf`` is not
  supported.
- Formats checked: ``date-time``, ``date``, ``int32``, ``int64``, ``uri``, ``email``,
  ``hostname``, ``ipv4``, ``uuid``, ``byte``, ``duration``; others are accepted.
- Regular expressions (``pattern``, CEL ``matches``/``find``/``findAll``) use RE2 through
  google-re2, where the server uses Go's regexp (also RE2 syntax; corner cases may differ).
  A ``pattern`` RE2 refuses is not checked (the server refuses such a CRD).
"""

from __future__ import annotations

import base64
import copy
import datetime
import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

from rankops.sandbox.cel import runtime as cel_runtime
from rankops.sandbox.cel.budget import check_schema_rules
from rankops.sandbox.cel.regex import compile_pattern

__all__ = [
    "FieldError",
    "crd_version",
    "format_value",
    "validate_crd",
    "validate_custom_resource",
    "validate_object_name",
]

_TYPE_TEXT = {
    "FieldValueRequired": "Required value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueTooMany": "Too many",
    "FieldValueTooLong": "Too long",
    "FieldValueForbidden": "Forbidden",
    "FieldValueDuplicate": "Duplicate value",
}


def format_value(value: Any) -> str:
    """Render a value the way Go's field.Error does (strings quoted, containers named)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return '"null"'
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(str(value))


@dataclass(frozen=True)
class FieldError:
    """One field-level error, as ``k8s.io/apimachinery/pkg/util/validation/field.Error``.

    ``path`` is the field path (``spec.rollout.steps[2].weight``), ``message`` the human
    detail (``should be less than or equal to 100``), ``reason`` the Status cause reason
    (``FieldValueInvalid``...). ``str()`` gives the line kubectl prints.
    """

    path: str
    message: str
    reason: str = "FieldValueInvalid"
    value: Any = field(default=None, compare=False)
    show_value: bool = True

    @property
    def cause_message(self) -> str:
        """The message of a Status ``details.causes[]`` entry: the error without its path."""
        head = _TYPE_TEXT.get(self.reason, self.reason)
        if self.reason == "FieldValueRequired" or not self.show_value:
            return f"{head}: {self.message}" if self.message else head
        if self.reason == "FieldValueTooLong":
            return f"{head}: {self.message}"
        return (
            f"{head}: {format_value(self.value)}: {self.message}"
            if self.message
            else (f"{head}: {format_value(self.value)}")
        )

    def as_cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.cause_message, "field": self.path}

    def __str__(self) -> str:
        return f"{self.path}: {self.cause_message}" if self.path else self.cause_message


# --------------------------------------------------------------------------------------------
# CRD helpers


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


# --------------------------------------------------------------------------------------------
# The entry point


def validate_custom_resource(
    crd: Mapping[str, Any],
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    unknown_fields: list[str] | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Prune, default and validate a custom resource against its CRD.

    ``crd`` is the CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict; ``obj`` the
    custom resource; ``old`` its stored state on update (binds ``oldSelf`` in transition
    rules). Returns ``(object, errors)``: a new dict, pruned and defaulted, and the errors
    (empty when valid). ``obj`` is not modified. Pass a list as ``unknown_fields`` to get
    the paths of the fields that were pruned (what ``fieldValidation=Strict`` rejects).
    """
    result = copy.deepcopy(dict(obj))
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    api_version = result.get("apiVersion")
    version_name: str | None = None
    if isinstance(api_version, str) and "/" in api_version:
        obj_group, version_name = api_version.rsplit("/", 1)
        if obj_group != group:
            errors.append(FieldError("apiVersion", f"must be {group}/<version>", value=api_version))
    try:
        version = crd_version(crd, version_name)
    except KeyError:
        errors.append(
            FieldError(
                "apiVersion",
                "version not served by the CustomResourceDefinition",
                reason="FieldValueNotSupported",
                value=api_version,
            )
        )
        return result, errors
    kind = (spec.get("names") or {}).get("kind")
    if kind and result.get("kind") not in (None, kind):
        errors.append(FieldError("kind", f"must be {kind}", value=result.get("kind")))

    metadata = result.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        errors.append(FieldError("metadata", "must be of type object", value=metadata))
    elif metadata.get("name") or not metadata.get("generateName"):
        errors += validate_object_name(metadata.get("name"))

    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    if not isinstance(schema, Mapping):
        return result, errors  # a CRD without a schema preserves everything (not possible in v1)

    walker = _Walker(errors, unknown_fields)
    # The root object: apiVersion/kind/metadata are the server's business, never pruned here.
    root_schema = dict(schema)
    root_schema.setdefault("type", "object")
    result = walker.walk(result, root_schema, "", old, root=True)
    return result, errors


# --------------------------------------------------------------------------------------------
# The walker: prune, default, validate (one node at a time, children first)

_JSON_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
}


def _type_ok(value: Any, typ: str) -> bool:
    if typ == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    types = _JSON_TYPES.get(typ)
    return True if types is None else isinstance(value, types)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class _Walker:
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
            if not (isinstance(value, str) or _type_ok(value, "integer")):
                self.err(
                    path, f"{path} in body must be of type integer,string: {format_value(value)}", value=value
                )
                return value
        elif typ and not _type_ok(value, typ):
            actual = _json_type_name(value)
            self.err(path, f'{path} in body must be of type {typ}: "{actual}"', value=value)
            return value

        if isinstance(value, dict):
            value = self._walk_object(value, schema, path, old if isinstance(old, dict) else None, root)
        elif isinstance(value, list):
            value = self._walk_array(value, schema, path, old if isinstance(old, list) else None)

        self._check_value(value, schema, path)
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

    def _check_value(self, value: Any, schema: Mapping[str, Any], path: str) -> None:
        enum = schema.get("enum")
        if enum is not None and value not in enum:
            supported = ", ".join(format_value(e) for e in enum)
            self.err(path, f"supported values: {supported}", value=value, reason="FieldValueNotSupported")
        if isinstance(value, str):
            self._check_string(value, schema, path)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._check_number(value, schema, path)

    def _check_string(self, value: str, schema: Mapping[str, Any], path: str) -> None:
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            self.err(
                path,
                f"may not be more than {schema['maxLength']} bytes",
                value=value,
                reason="FieldValueTooLong",
            )
        if "minLength" in schema and len(value) < schema["minLength"]:
            self.err(path, f"{path} in body should be at least {schema['minLength']} chars long", value=value)
        pattern = schema.get("pattern")
        if pattern is not None:
            try:
                matched = compile_pattern(pattern).search(value) is not None  # RE2, as Go's regexp
            except re2.error:
                matched = True  # a pattern RE2 refuses: not checkable here, accepted
            if not matched:
                self.err(path, f"{path} in body should match '{pattern}'", value=value)
        fmt = schema.get("format")
        if fmt and not schema.get("x-kubernetes-int-or-string") and not _format_ok(fmt, value):
            self.err(path, f"{path} in body must be of type {fmt}: {format_value(value)}", value=value)

    def _check_number(self, value: float, schema: Mapping[str, Any], path: str) -> None:
        if "maximum" in schema:
            if schema.get("exclusiveMaximum") and value >= schema["maximum"]:
                self.err(path, f"{path} in body should be less than {schema['maximum']}", value=value)
            elif value > schema["maximum"]:
                self.err(
                    path, f"{path} in body should be less than or equal to {schema['maximum']}", value=value
                )
        if "minimum" in schema:
            if schema.get("exclusiveMinimum") and value <= schema["minimum"]:
                self.err(path, f"{path} in body should be greater than {schema['minimum']}", value=value)
            elif value < schema["minimum"]:
                self.err(
                    path,
                    f"{path} in body should be greater than or equal to {schema['minimum']}",
                    value=value,
                )
        multiple = schema.get("multipleOf")
        if multiple and (value / multiple) != int(value / multiple):
            self.err(path, f"{path} in body should be a multiple of {multiple}", value=value)
        fmt = schema.get("format")
        if fmt == "int32" and not -(2**31) <= value < 2**31:
            self.err(path, f"{path} in body must be of type int32: {format_value(value)}", value=value)

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
        walker = _Walker(errors)
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


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HOSTNAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", re.I)
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.I)
_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$")


def _format_ok(fmt: str, value: str) -> bool:
    try:
        if fmt == "date-time":
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif fmt == "date":
            datetime.date.fromisoformat(value)
        elif fmt == "uri":
            return bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", value))
        elif fmt == "email":
            return bool(_EMAIL.match(value))
        elif fmt == "hostname":
            return bool(_HOSTNAME.match(value)) and len(value) <= 253
        elif fmt == "ipv4":
            ipaddress.IPv4Address(value)
        elif fmt == "uuid":
            return bool(_UUID.match(value))
        elif fmt == "byte":
            base64.b64decode(value, validate=True)
        elif fmt == "duration":
            return bool(_DURATION.match(value))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# CEL


def evaluate_cel(
    rule: str, value: Any, old: Any = None, raw: bool = False, schema: Mapping[str, Any] | None = None
) -> Any:
    """Evaluate one CEL expression with ``self`` (and ``oldSelf``) bound; a bool unless ``raw``."""
    return cel_runtime.evaluate(rule, value, old, schema=schema, raw=raw)

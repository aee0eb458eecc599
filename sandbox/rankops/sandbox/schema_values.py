"""The value validations of OpenAPI v3 on one schema node, as kube-apiserver applies them:
JSON types, ``enum``, string lengths, ``pattern`` (RE2), ``format``, numeric bounds and
``multipleOf``. Pure: each check returns the :class:`FieldError` list the server would."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

import re2

from rankops.sandbox.cel.regex import compile_pattern
from rankops.sandbox.field_errors import FieldError, format_value

__all__ = ["json_type_name", "type_ok", "value_errors"]

_JSON_TYPES = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "boolean": (bool,),
}


def type_ok(value: Any, typ: str) -> bool:
    if typ == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if typ == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    types = _JSON_TYPES.get(typ)
    return True if types is None else isinstance(value, types)


def json_type_name(value: Any) -> str:
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


def value_errors(value: Any, schema: Mapping[str, Any], path: str) -> list[FieldError]:
    """``enum``, then the string or number constraints of ``schema`` on a (typed) value."""
    errors: list[FieldError] = []
    _check_value(errors, value, schema, path)
    return errors


def _err(
    errors: list[FieldError], path: str, message: str, value: Any = None, reason: str = "FieldValueInvalid"
) -> None:
    errors.append(FieldError(path, message, reason=reason, value=value))


def _check_value(errors: list[FieldError], value: Any, schema: Mapping[str, Any], path: str) -> None:
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        supported = ", ".join(format_value(e) for e in enum)
        _err(errors, path, f"supported values: {supported}", value=value, reason="FieldValueNotSupported")
    if isinstance(value, str):
        _check_string(errors, value, schema, path)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(errors, value, schema, path)


def _check_string(errors: list[FieldError], value: str, schema: Mapping[str, Any], path: str) -> None:
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        _err(
            errors,
            path,
            f"may not be more than {schema['maxLength']} bytes",
            value=value,
            reason="FieldValueTooLong",
        )
    if "minLength" in schema and len(value) < schema["minLength"]:
        _err(errors, path, f"{path} in body should be at least {schema['minLength']} chars long", value=value)
    pattern = schema.get("pattern")
    if pattern is not None:
        try:
            matched = compile_pattern(pattern).search(value) is not None  # RE2, as Go's regexp
        except re2.error:
            matched = True  # a pattern RE2 refuses: not checkable here, accepted
        if not matched:
            _err(errors, path, f"{path} in body should match '{pattern}'", value=value)
    fmt = schema.get("format")
    if fmt and not schema.get("x-kubernetes-int-or-string") and not _format_ok(fmt, value):
        _err(errors, path, f"{path} in body must be of type {fmt}: {format_value(value)}", value=value)


def _check_number(errors: list[FieldError], value: float, schema: Mapping[str, Any], path: str) -> None:
    if "maximum" in schema:
        if schema.get("exclusiveMaximum") and value >= schema["maximum"]:
            _err(errors, path, f"{path} in body should be less than {schema['maximum']}", value=value)
        elif value > schema["maximum"]:
            _err(
                errors,
                path,
                f"{path} in body should be less than or equal to {schema['maximum']}",
                value=value,
            )
    if "minimum" in schema:
        if schema.get("exclusiveMinimum") and value <= schema["minimum"]:
            _err(errors, path, f"{path} in body should be greater than {schema['minimum']}", value=value)
        elif value < schema["minimum"]:
            _err(
                errors,
                path,
                f"{path} in body should be greater than or equal to {schema['minimum']}",
                value=value,
            )
    multiple = schema.get("multipleOf")
    if multiple and (value / multiple) != int(value / multiple):
        _err(errors, path, f"{path} in body should be a multiple of {multiple}", value=value)
    fmt = schema.get("format")
    if fmt == "int32" and not -(2**31) <= value < 2**31:
        _err(errors, path, f"{path} in body must be of type int32: {format_value(value)}", value=value)


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

"""Field-level API errors as kube-apiserver renders them (``field.Error``): the path, the
detail, the Status cause reason, the value shown as Go shows it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FieldError", "format_value"]

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

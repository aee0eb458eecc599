"""What every spec parser shares: ``SpecError``, ``default`` (a field's one written default) and the
typed readers of plain-dict fields, each raising ``SpecError`` with the field's path."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from ..timeutil import parse_duration

__all__ = [
    "SpecError",
    "_bool",
    "_choice",
    "_duration",
    "_float",
    "_int",
    "_list",
    "_mapping",
    "_opt_float",
    "_opt_str",
    "_str",
    "_strings",
    "_template",
    "default",
]


class SpecError(ValueError):
    """A spec problem, with ``path`` naming the field and ``message`` saying what is wrong."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


def default(cls: type, name: str) -> Any:
    """The default of dataclass field ``name``: the one place a spec default is written."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            raise KeyError(f"{cls.__name__}.{name} has no default")
    raise KeyError(f"{cls.__name__} has no field {name}")


def _mapping(value: Any, path: str, *, required: bool = False) -> Mapping[str, Any]:
    if value is None:
        if required:
            raise SpecError(path, "Required value")
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(path, f"must be an object, not {type(value).__name__}")
    return value


def _str(obj: Mapping[str, Any], key: str, path: str, default: str | None = None) -> str:
    value = obj.get(key, default)
    if value is None or value == "":
        raise SpecError(f"{path}.{key}", "Required value")
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _opt_str(obj: Mapping[str, Any], key: str, path: str) -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"{path}.{key}", f"must be a string, not {type(value).__name__}")
    return value


def _choice(
    obj: Mapping[str, Any], key: str, path: str, choices: Sequence[str], default: str | None = None
) -> str:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if value not in choices:
        raise SpecError(f"{path}.{key}", f"must be one of {', '.join(choices)}, not {value!r}")
    return str(value)


def _int(
    obj: Mapping[str, Any],
    key: str,
    path: str,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"{path}.{key}", f"must be an integer, not {value!r}")
    if minimum is not None and value < minimum:
        raise SpecError(f"{path}.{key}", f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise SpecError(f"{path}.{key}", f"must be <= {maximum}, got {value}")
    return value


def _float(obj: Mapping[str, Any], key: str, path: str, default: float | None = None) -> float:
    value = obj.get(key, default)
    if value is None:
        raise SpecError(f"{path}.{key}", "Required value")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SpecError(f"{path}.{key}", f"must be a number, not {value!r}")
    return float(value)


def _opt_float(obj: Mapping[str, Any], key: str, path: str) -> float | None:
    return None if obj.get(key) is None else _float(obj, key, path)


def _bool(obj: Mapping[str, Any], key: str, path: str, default: bool) -> bool:
    value = obj.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"{path}.{key}", f"must be a boolean, not {value!r}")
    return value


def _duration(obj: Mapping[str, Any], key: str, path: str, default: float | None) -> float | None:
    """Seconds in the duration at ``key``; ``default`` (seconds) when it is absent."""
    value = obj.get(key)
    if value is None:
        return default
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise SpecError(f"{path}.{key}", str(exc)) from None


def _list(value: Any, path: str) -> Sequence[Any]:
    if value is None:
        return []
    if not isinstance(value, list | tuple):
        raise SpecError(path, f"must be a list, not {type(value).__name__}")
    return value


def _strings(value: Any, path: str) -> tuple[str, ...]:
    items = _list(value, path)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise SpecError(f"{path}[{i}]", f"must be a string, not {type(item).__name__}")
    return tuple(items)


def _template(obj: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = obj.get(key)
    return None if value is None else dict(_mapping(value, f"{path}.{key}"))

"""Cross-type numeric comparison, as the Kubernetes CEL environment enables it.

Kubernetes builds its CEL environment with ``CrossTypeNumericComparisons`` and heterogeneous
equality: ``1 < 2.0`` is ``true`` and ``1 == 1.0`` is ``true``. cel-python refuses mixed
int/uint/double operands ("no such overload"); these replace its relational operators.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError, base_functions

__all__ = ["FUNCTIONS", "cel_equal", "cel_less"]


def _is_number(value: Any) -> bool:
    return isinstance(value, celtypes.IntType | celtypes.UintType | celtypes.DoubleType)


def _mixed(a: Any, b: Any) -> bool:
    return _is_number(a) and _is_number(b) and type(a) is not type(b)


_ORDERED = (
    celtypes.IntType,
    celtypes.UintType,
    celtypes.DoubleType,
    celtypes.StringType,
    celtypes.BytesType,
    celtypes.BoolType,
    celtypes.TimestampType,
    celtypes.DurationType,
)


def cel_less(a: Any, b: Any) -> bool:
    """``a < b`` with CEL's rules (TypeError for operands CEL cannot order)."""
    if _mixed(a, b):
        return float(a) < float(b)
    if type(a) is not type(b) or not isinstance(a, _ORDERED):
        raise TypeError(f"no such overload: {type(a).__name__} < {type(b).__name__}")
    return bool(a < b)


def cel_equal(a: Any, b: Any) -> bool:
    """Heterogeneous equality: numbers compare by value, values of other differing types are unequal."""
    if _mixed(a, b):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(cel_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(cel_equal(a[k], b[k]) for k in a)
    if type(a) is not type(b) and not (_is_number(a) and _is_number(b)):
        return False
    return bool(a == b)


def _relation(name: str, numeric: Callable[[float, float], bool]) -> Callable[[Any, Any], Any]:
    fallback = base_functions[name]

    def relation(a: Any, b: Any) -> Any:
        if _mixed(a, b):
            return celtypes.BoolType(numeric(float(a), float(b)))
        return fallback(a, b)

    return relation


def _equality(negate: bool) -> Callable[[Any, Any], Any]:
    def equality(a: Any, b: Any) -> Any:
        for operand in (a, b):
            if isinstance(operand, CELEvalError):
                return operand
        return celtypes.BoolType(cel_equal(a, b) != negate)

    return equality


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "_<_": _relation("_<_", operator.lt),
    "_<=_": _relation("_<=_", operator.le),
    "_>_": _relation("_>_", operator.gt),
    "_>=_": _relation("_>=_", operator.ge),
    "_==_": _equality(False),
    "_!=_": _equality(True),
}

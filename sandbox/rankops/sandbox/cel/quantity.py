"""The Kubernetes CEL quantity library (``k8s.io/apiserver/pkg/cel/library/quantity.go``).

``quantity(s)`` parses like ``resource.ParseQuantity``: a decimal number with a binary SI
suffix (``Ki`` ... ``Ei``), a decimal SI suffix (``n u m k M G T P E``) or a decimal
exponent (``e3``, ``E-2``); the magnitude is rounded up to the nano, and a binary-SI one capped at the
largest int64, as Kubernetes does. Values are exact (``Fraction``). Methods: ``sign``,
``isInteger``, ``asInteger``, ``asApproximateFloat``, ``add``, ``sub``, ``compareTo``,
``isGreaterThan``, ``isLessThan``; ``isQuantity(s)``; ``==`` compares values.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError

__all__ = ["FUNCTIONS", "Quantity", "QuantityError", "parse_quantity"]

FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
_MAX_INT64 = 2**63 - 1
_SHAPE = re.compile(r"^([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*[-+]?[0-9]*)$")
_DECIMAL_SI = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SI = {"Ki": 10, "Mi": 20, "Ti": 40, "Gi": 30, "Pi": 50, "Ei": 60}
_NANO = 10**9


class QuantityError(ValueError):
    pass


class Quantity:
    """An exact quantity; ``str()`` keeps the text it was parsed from."""

    __slots__ = ("text", "value")

    def __init__(self, value: Fraction, text: str = "") -> None:
        self.value = value
        self.text = text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Quantity):
            raise TypeError("no such overload: Quantity == non-Quantity")
        return self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"Quantity({self.text or self.value!s})"


def _scale(suffix: str) -> Fraction:
    if suffix in _BINARY_SI:
        return Fraction(2 ** _BINARY_SI[suffix])
    if suffix in _DECIMAL_SI:
        return Fraction(10) ** _DECIMAL_SI[suffix]
    if len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        exponent = max(-64, min(64, int(suffix[1:])))  # beyond this the cap or the rounding decides
        return Fraction(10) ** exponent
    raise QuantityError("unable to parse quantity's suffix")


def parse_quantity(text: str) -> Quantity:
    """``resource.ParseQuantity``; raises QuantityError with Kubernetes' messages."""
    match = _SHAPE.match(text)
    if not text or not match:
        raise QuantityError(FORMAT_ERROR)
    sign, whole, fraction, suffix = match.groups()
    if not whole and not fraction:
        raise QuantityError("unable to parse numeric part of quantity")
    number = Fraction(int(whole or "0")) + (
        Fraction(int(fraction), 10 ** len(fraction)) if fraction else Fraction(0)
    )
    magnitude = number * _scale(suffix)
    if magnitude:
        magnitude = Fraction(math.ceil(magnitude * _NANO), _NANO)  # round up to the nano
    if suffix in _BINARY_SI:
        magnitude = min(magnitude, Fraction(_MAX_INT64))  # the server caps binary-SI values only
    return Quantity(-magnitude if sign == "-" else magnitude, text)


def _quantity(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError("no such overload: quantity")
    try:
        return parse_quantity(value)
    except QuantityError as exc:
        return CELEvalError(str(exc))


def _is_quantity(value: Any) -> Any:
    if not isinstance(value, str):
        raise TypeError("no such overload: isQuantity")
    try:
        parse_quantity(value)
    except QuantityError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _q(value: Any, name: str) -> Quantity:
    if not isinstance(value, Quantity):
        raise TypeError(f"no such overload: {name} on {type(value).__name__}")
    return value


def _operand(value: Any, name: str) -> Fraction:
    if isinstance(value, Quantity):
        return value.value
    if isinstance(value, celtypes.IntType):
        return Fraction(int(value))
    raise TypeError(f"no such overload: {name} with {type(value).__name__}")


def _is_integer(q: Quantity) -> bool:
    return q.value.denominator == 1 and -(2**63) <= q.value <= _MAX_INT64


def _as_integer(value: Any) -> Any:
    q = _q(value, "asInteger")
    if not _is_integer(q):
        return CELEvalError("cannot convert value to integer")
    return celtypes.IntType(int(q.value))


def _compare(a: Fraction, b: Fraction) -> int:
    return (a > b) - (a < b)


def _method(name: str, apply: Callable[[Quantity], Any]) -> Callable[[Any], Any]:
    def method(value: Any) -> Any:
        return apply(_q(value, name))

    method.__name__ = name
    return method


def _arithmetic(name: str, sign: int) -> Callable[[Any, Any], Any]:
    """add/sub: a Quantity or an int operand."""

    def method(value: Any, other: Any) -> Any:
        return Quantity(_q(value, name).value + sign * _operand(other, name))

    method.__name__ = name
    return method


def _comparison(name: str, result: Callable[[int], Any]) -> Callable[[Any, Any], Any]:
    """compareTo/isGreaterThan/isLessThan: Quantity operands only."""

    def method(value: Any, other: Any) -> Any:
        return result(_compare(_q(value, name).value, _q(other, name).value))

    method.__name__ = name
    return method


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "quantity": _quantity,
    "isQuantity": _is_quantity,
    "sign": _method("sign", lambda q: celtypes.IntType(_compare(q.value, Fraction(0)))),
    "isInteger": _method("isInteger", lambda q: celtypes.BoolType(_is_integer(q))),
    "asInteger": _as_integer,
    "asApproximateFloat": _method("asApproximateFloat", lambda q: celtypes.DoubleType(float(q.value))),
    "add": _arithmetic("add", 1),
    "sub": _arithmetic("sub", -1),
    "compareTo": _comparison("compareTo", celtypes.IntType),
    "isGreaterThan": _comparison("isGreaterThan", lambda order: celtypes.BoolType(order > 0)),
    "isLessThan": _comparison("isLessThan", lambda order: celtypes.BoolType(order < 0)),
}

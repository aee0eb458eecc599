"""The Kubernetes CEL lists library (``k8s.io/apiserver/pkg/cel/library/lists.go``).

``isSorted()``, ``sum()``, ``min()``, ``max()``, ``indexOf(x)``, ``lastIndexOf(x)`` on lists.
``indexOf``/``lastIndexOf`` on a string belong to the strings extension; :mod:`.strings`
dispatches there.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import reduce
from typing import Any

from celpy import celtypes
from celpy.evaluation import CELEvalError

from rankops.sandbox.cel.numbers import cel_equal, cel_less

__all__ = ["FUNCTIONS", "is_sorted", "list_index_of", "list_last_index_of"]


def _require_list(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"no such overload: {name} on {type(value).__name__}")
    return value


def is_sorted(value: Any) -> Any:
    items = _require_list(value, "isSorted")
    return celtypes.BoolType(all(not cel_less(b, a) for a, b in itertools.pairwise(items)))


def _sum(value: Any) -> Any:
    items = _require_list(value, "sum")
    if not items:
        return celtypes.IntType(0)  # an empty list of unknown element type sums to int 0
    total = reduce(lambda a, b: a + b, items)
    kind = type(items[0])
    return total if isinstance(total, kind) else kind(total)  # cel-python's double + double is a float


def _extreme(name: str, pick_left: Callable[[Any, Any], bool]) -> Callable[[Any], Any]:
    def extreme(value: Any) -> Any:
        items = _require_list(value, name)
        if not items:
            return CELEvalError(f"{name} called on empty list")
        best = items[0]
        for item in items[1:]:
            if not pick_left(best, item):
                best = item
        return best

    extreme.__name__ = name
    return extreme


def list_index_of(value: list[Any], needle: Any) -> Any:
    for idx, item in enumerate(value):
        if cel_equal(item, needle):
            return celtypes.IntType(idx)
    return celtypes.IntType(-1)


def list_last_index_of(value: list[Any], needle: Any) -> Any:
    for idx in range(len(value) - 1, -1, -1):
        if cel_equal(value[idx], needle):
            return celtypes.IntType(idx)
    return celtypes.IntType(-1)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "isSorted": is_sorted,
    "sum": _sum,
    # ties keep the first element, as the Go library does
    "min": _extreme("min", lambda best, item: not cel_less(item, best)),
    "max": _extreme("max", lambda best, item: not cel_less(best, item)),
}

"""Which receiver types the member functions accept, for the compile-time overload check.

A real API server type-checks a rule when the CRD is written: ``self.weight.isSorted()`` on
an integer is refused with "found no matching overload". This table gives the receiver
kinds of each member function (of standard CEL and the Kubernetes libraries); a call on a
receiver of a known, different kind is the same compile error. Receivers of unknown type
(``dyn``, int-or-string, what the estimator cannot type) are let through.
"""

from __future__ import annotations

from rankops.sandbox.cel.runtime import CELCompileError

__all__ = ["RECEIVERS", "check_receiver", "check_result"]

_STRING_ONLY = ("charAt", "lowerAscii", "upperAscii", "replace", "split", "substring", "trim")
_URL = ("getScheme", "getHost", "getHostname", "getPort", "getEscapedPath", "getQuery")
_QUANTITY = ("sign", "isInteger", "asInteger", "asApproximateFloat", "add", "sub", "compareTo",
             "isGreaterThan", "isLessThan")  # fmt: skip
_TIME = ("getHours", "getMilliseconds", "getMinutes", "getSeconds")
_DATE = ("getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getMonth")

RECEIVERS: dict[str, frozenset[str]] = {
    **dict.fromkeys(("isSorted", "sum", "min", "max", "join"), frozenset({"list"})),
    **dict.fromkeys(("indexOf", "lastIndexOf"), frozenset({"list", "string"})),
    **dict.fromkeys(_STRING_ONLY, frozenset({"string"})),
    **dict.fromkeys(
        ("matches", "find", "findAll", "contains", "startsWith", "endsWith"), frozenset({"string"})
    ),
    **dict.fromkeys(_URL, frozenset({"url"})),
    **dict.fromkeys(_QUANTITY, frozenset({"quantity"})),
    **dict.fromkeys(_TIME, frozenset({"timestamp", "duration"})),
    **dict.fromkeys(_DATE, frozenset({"timestamp"})),
    "size": frozenset({"string", "bytes", "list", "map"}),
}
_UNTYPED = frozenset({"dyn"})


def check_receiver(name: str, kind: str | None) -> None:
    """Raise the server's compile error when ``name`` cannot be called on a ``kind``."""
    allowed = RECEIVERS.get(name)
    if allowed is None or kind is None or kind in _UNTYPED or kind in allowed:
        return
    raise CELCompileError(
        f"compilation failed: ERROR: <input>: found no matching overload for '{name}'"
        f" applied to '{kind}.(...)'"
    )


def check_result(kind: str | None, expected: str, what: str) -> None:
    """A rule must be a bool, a messageExpression a string (when the type is known)."""
    if kind is None or kind in _UNTYPED or kind == expected:
        return
    raise CELCompileError(f"{what} must evaluate to a {expected}")  # the server's wording

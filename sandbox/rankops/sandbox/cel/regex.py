"""The Kubernetes CEL regex library (``k8s.io/apiserver/pkg/cel/library/regex.go``).

``matches(re)`` (standard CEL, RE2 partial match); ``find(re)`` returns the first match
or ``''``; ``findAll(re)`` / ``findAll(re, n)`` the
successive non-overlapping matches (all of them when ``n < 0``, none when ``n == 0``). RE2
syntax (``google-re2``, as cel-python's own ``matches`` uses); an empty match right after
a match is skipped, as Go's ``FindAllString`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import re2
from celpy import celtypes
from celpy.evaluation import CELEvalError

__all__ = ["FUNCTIONS", "compile_pattern", "pattern_error"]


_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the error is reported to the client, not to stderr


def compile_pattern(pattern: str) -> Any:
    """Compile with RE2; raises ``re2.error`` for a pattern RE2 refuses."""
    return re2.compile(pattern, _OPTIONS)


def pattern_error(exc: Exception) -> str:
    """RE2's reason, as text (google-re2 gives bytes)."""
    reason = exc.args[0] if exc.args else exc
    return reason.decode() if isinstance(reason, bytes) else str(reason)


def _args(value: Any, pattern: Any, name: str) -> tuple[str, Any]:
    if not isinstance(value, str) or not isinstance(pattern, str):
        raise TypeError(f"no such overload: {name}")
    return value, compile_pattern(pattern)


def matches(value: Any, pattern: Any) -> Any:
    try:
        text, regex = _args(value, pattern, "matches")
    except re2.error as exc:
        return CELEvalError(f"error parsing regexp: {pattern_error(exc)}")
    return celtypes.BoolType(regex.search(text) is not None)


def find(value: Any, pattern: Any) -> Any:
    try:
        text, regex = _args(value, pattern, "find")
    except re2.error as exc:
        return CELEvalError(f"error parsing regexp: {pattern_error(exc)}")
    match = regex.search(text)
    return celtypes.StringType(match.group(0) if match else "")


def find_all(value: Any, pattern: Any, limit: Any = None) -> Any:
    try:
        text, regex = _args(value, pattern, "findAll")
    except re2.error as exc:
        return CELEvalError(f"error parsing regexp: {pattern_error(exc)}")
    if limit is not None and not isinstance(limit, celtypes.IntType):
        raise TypeError("no such overload: findAll with a non-int limit")
    most = -1 if limit is None else int(limit)
    found: list[celtypes.StringType] = []
    previous_end = -1
    for match in regex.finditer(text):
        if most >= 0 and len(found) >= most:
            break
        if match.start() == match.end() == previous_end:
            continue
        found.append(celtypes.StringType(match.group(0)))
        previous_end = match.end()
    return celtypes.ListType(found)


FUNCTIONS: dict[str, Callable[..., Any]] = {"matches": matches, "find": find, "findAll": find_all}

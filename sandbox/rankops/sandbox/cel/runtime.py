"""Compile and evaluate CEL the way a Kubernetes API server does, on cel-python.

The environment is standard CEL (cel-python) plus the Kubernetes libraries: lists
(:mod:`.lists`), strings (:mod:`.strings`), regex (:mod:`.regex`), URLs (:mod:`.urls`),
quantities (:mod:`.quantity`) and cross-type numeric comparison (:mod:`.numbers`).
``.min()`` is the lists library's (cel-python treats it as a macro of its own) and
cel-python's non-standard ``reduce`` macro is not available, as on a real server.

Values are converted with the node's schema, as the server's type provider does: a
``number`` is a double even when written ``1``; ``format: date-time``/``date`` strings
are timestamps and ``format: duration`` strings durations; ``format: byte`` is bytes.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

import celpy
import lark
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, Evaluator

from rankops.sandbox.cel import lists, numbers, quantity, regex, strings, urls

__all__ = [
    "FUNCTIONS",
    "KNOWN_FUNCTIONS",
    "MACROS",
    "CELCompileError",
    "CELEvalError",
    "Program",
    "compile_rule",
    "evaluate",
    "to_cel",
]

FUNCTIONS: dict[str, Callable[..., Any]] = {
    **numbers.FUNCTIONS,
    **lists.FUNCTIONS,
    **strings.FUNCTIONS,  # indexOf/lastIndexOf dispatch lists vs strings on the target
    **regex.FUNCTIONS,
    **urls.FUNCTIONS,
    **quantity.FUNCTIONS,
}
MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
_STANDARD = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches", "type", "dyn",
        "bool", "bytes", "double", "duration", "int", "string", "timestamp", "uint",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getMonth",
        "getHours", "getMilliseconds", "getMinutes", "getSeconds",
    }
)  # fmt: skip
KNOWN_FUNCTIONS = frozenset(FUNCTIONS) | _STANDARD | MACROS


class CELCompileError(ValueError):
    """A rule the server would refuse when the CRD is created (message as the server words it)."""


class _KubernetesEvaluator(Evaluator):
    """cel-python's evaluator with ``min`` as a function and no ``reduce`` macro."""

    def member_dot_arg(self, tree: lark.Tree) -> Any:
        if tree.children[1].value not in ("min", "reduce"):  # type: ignore[union-attr]
            return super().member_dot_arg(tree)
        values: list[Any] = self.visit_children(tree)
        return self.method_eval(*values)


class _Runner(celpy.InterpretedRunner):
    def evaluate(self, context: Any) -> Any:
        return _KubernetesEvaluator(ast=self.ast, activation=self.new_activation()).evaluate(context)


class Program:
    """A compiled rule: its parse tree (for cost estimation) and its runner."""

    def __init__(self, text: str, tree: lark.Tree, runner: celpy.Runner) -> None:
        self.text = text
        self.tree = tree
        self.runner = runner


_ENV = celpy.Environment(runner_class=_Runner)
_PROGRAMS: dict[str, Program] = {}


def _called_names(tree: lark.Tree) -> list[lark.Token]:
    names: list[lark.Token] = []
    for node in tree.iter_subtrees():
        if node.data in ("ident_arg", "member_dot_arg", "dot_ident_arg"):
            token = node.children[1] if node.data == "member_dot_arg" else node.children[0]
            if isinstance(token, lark.Token):
                names.append(token)
    return names


def compile_rule(text: str) -> Program:
    """Parse ``text`` and check its function names; raises CELCompileError as a server would."""
    program = _PROGRAMS.get(text)
    if program is not None:
        return program
    try:
        tree = _ENV.compile(text)
    except CELParseError as exc:
        raise CELCompileError(f"compilation failed: ERROR: <input>: Syntax error: {exc}") from exc
    for token in _called_names(tree):
        if token.value not in KNOWN_FUNCTIONS:
            raise CELCompileError(
                f"compilation failed: ERROR: <input>:{token.line}:{token.column}: "
                f"undeclared reference to '{token.value}' (in container '')"
            )
    for node in tree.iter_subtrees():
        _check_regex_literal(node)
    program = Program(text, tree, _ENV.program(tree, functions=FUNCTIONS))
    _PROGRAMS[text] = program
    return program


def _check_regex_literal(node: lark.Tree) -> None:
    """A constant pattern of matches/find/findAll that RE2 refuses fails at compile time."""
    if node.data != "member_dot_arg" or len(node.children) != 3:
        return
    name = node.children[1]
    if not isinstance(name, lark.Token) or name.value not in ("matches", "find", "findAll"):
        return
    first = node.children[2].children[0] if isinstance(node.children[2], lark.Tree) else None
    literal = _literal_string(first)
    if literal is None:
        return
    try:
        regex.compile_pattern(literal)
    except Exception as exc:
        raise CELCompileError(
            f"compilation failed: ERROR: <input>:{name.line}:{name.column}: "
            f"error parsing regexp: {regex.pattern_error(exc)}"
        ) from exc


def _literal_string(node: Any) -> str | None:
    """The value of an expression that is only a string literal, else None."""
    while isinstance(node, lark.Tree) and len(node.children) == 1 and node.data != "literal":
        node = node.children[0]
    if isinstance(node, lark.Tree) and node.data == "literal":
        token = node.children[0]
        if isinstance(token, lark.Token) and token.type in ("STRING_LIT", "MLSTRING_LIT"):
            return str(_ENV.program(_ENV.compile(str(token.value))).evaluate({}))
    return None


def to_cel(value: Any, schema: Mapping[str, Any] | None) -> Any:
    """A JSON value as the server's CEL sees it through its schema."""
    if value is None or not isinstance(schema, Mapping) or schema.get("x-kubernetes-int-or-string"):
        return json_to_cel(value)
    typ = schema.get("type")
    if isinstance(value, dict):
        props: Mapping[str, Any] = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return celtypes.MapType(
            {
                celtypes.StringType(k): to_cel(v, props.get(k, extra if isinstance(extra, Mapping) else None))
                for k, v in value.items()
            }
        )
    if isinstance(value, list):
        items = schema.get("items")
        return celtypes.ListType([to_cel(v, items if isinstance(items, Mapping) else None) for v in value])
    if typ == "number" and isinstance(value, int | float) and not isinstance(value, bool):
        return celtypes.DoubleType(float(value))
    if typ == "string" and isinstance(value, str):
        return _formatted_string(value, schema.get("format"))
    return json_to_cel(value)


def _formatted_string(value: str, fmt: Any) -> Any:
    try:
        if fmt in ("date-time", "date"):
            return celtypes.TimestampType(value if fmt == "date-time" else f"{value}T00:00:00Z")
        if fmt == "duration":
            return celtypes.DurationType(value)
        if fmt == "byte":
            return celtypes.BytesType(base64.b64decode(value))
    except (ValueError, TypeError):
        pass  # the format check reports the value; CEL sees the string
    return celtypes.StringType(value)


def evaluate(
    rule: str,
    value: Any,
    old: Any = None,
    *,
    schema: Mapping[str, Any] | None = None,
    raw: bool = False,
) -> Any:
    """Evaluate one expression with ``self`` (and ``oldSelf``) bound; a bool unless ``raw``.

    Raises the evaluation error (CELEvalError) or TypeError for a non-bool result.
    """
    program = compile_rule(rule)
    activation: dict[str, Any] = {"self": to_cel(value, schema)}
    if old is not None:
        activation["oldSelf"] = to_cel(old, schema)
    result = program.runner.evaluate(activation)
    if isinstance(result, Exception):
        raise result
    if raw:
        return str(result) if isinstance(result, celtypes.StringType) else result
    if isinstance(result, celtypes.BoolType):
        return bool(result)
    raise TypeError(f"rule evaluated to {type(result).__name__}, not bool")

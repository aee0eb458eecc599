"""Static cost of a CEL rule, as the Kubernetes API server estimates it when a CRD is written.

A port of cel-go's ``checker.Cost`` with the Kubernetes library estimator
(``k8s.io/apiserver/pkg/cel/library/cost.go``), over cel-python's parse tree, with sizes
from the schema (:mod:`.decltypes`). The worst case (maximum) is what the server compares
with its limits, so only the maximum is tracked. Macros are costed as the comprehensions
cel-go expands them into. Where the type of an expression is not known here (cel-python
has no type checker), a size is unknown, which costs the most, as in cel-go.

Also a type check of field selection: selecting a property the schema does not declare is
the compile error a real server gives ("undefined field").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import lark

from rankops.sandbox.cel.decltypes import SCALARS, DeclType
from rankops.sandbox.cel.runtime import CELCompileError, compile_rule, evaluate
from rankops.sandbox.cel.signatures import check_receiver, check_result

__all__ = ["UNBOUNDED", "rule_cost"]

UNBOUNDED = 2**64 - 1
_TRAVERSAL = 0.1  # common.StringTraversalCostFactor
_REGEX = 0.25  # common.RegexStringLengthCostFactor
_LIST_CREATE, _MAP_CREATE, _STRUCT_CREATE = 10, 30, 40


def _sat(value: float) -> int:
    return UNBOUNDED if value >= UNBOUNDED else int(value)


def _factor(size: int, factor: float) -> int:
    return _sat(math.ceil(size * factor))


@dataclass(frozen=True)
class _Est:
    """One subexpression: its cost, its type (when known), and its size bound."""

    cost: int
    type: DeclType | None = None
    from_schema: bool = False  # sized by the schema, as cel-go's path-based EstimateSize
    size: int | None = None  # a computed maximum size (literals, call results)
    elem_size: int | None = None  # for computed lists: the maximum size of an element

    @property
    def kind(self) -> str | None:
        return self.type.kind if self.type is not None else None

    def max_size(self) -> int:
        if self.size is not None:
            return self.size
        if self.type is not None and self.from_schema:
            return self.type.max_elements
        if self.kind in SCALARS:
            return 1
        return UNBOUNDED

    def element(self) -> _Est:
        """The element of a list (or key of a map) this expression iterates over."""
        if self.kind == "map":
            return _Est(0, DeclType("string"), from_schema=self.from_schema)
        elem = self.type.elem if self.type is not None else None
        return _Est(0, elem, from_schema=self.from_schema, size=self.elem_size)


def _add(*costs: int) -> int:
    return min(UNBOUNDED, sum(costs))


def _mul(a: int, b: int) -> int:
    return min(UNBOUNDED, a * b)


def _t(kind: str, elem: DeclType | None = None) -> DeclType:
    return DeclType(kind, elem=elem)


# Result types of functions (for the sizes of what is computed from them).
_RESULT_KINDS = {
    **dict.fromkeys(
        ["contains", "startsWith", "endsWith", "matches", "isSorted", "isURL", "isQuantity", "isInteger",
         "isGreaterThan", "isLessThan", "has"], "bool"),
    **dict.fromkeys(["size", "indexOf", "lastIndexOf", "sign", "asInteger", "compareTo", "int"], "int"),
    **dict.fromkeys(
        ["charAt", "lowerAscii", "upperAscii", "replace", "substring", "trim", "join", "find", "string",
         "getScheme", "getHost", "getHostname", "getPort", "getEscapedPath"], "string"),
    "asApproximateFloat": "double", "double": "double", "uint": "uint", "bool": "bool",
    "duration": "duration", "timestamp": "timestamp", "quantity": "quantity", "add": "quantity",
    "sub": "quantity", "url": "url", "getQuery": "map",
}  # fmt: skip


class _Estimator:
    def __init__(self, self_type: DeclType | None) -> None:
        root = _Est(0, self_type, from_schema=True)
        self.scopes: dict[str, list[_Est]] = {"self": [root], "oldSelf": [root]}

    def visit(self, tree: Any) -> _Est:
        handler: Callable[[lark.Tree], _Est] = getattr(self, "_" + tree.data)
        return handler(tree)

    def _args(self, tree: lark.Tree | None) -> list[_Est]:
        return [self.visit(child) for child in tree.children] if tree is not None else []

    # -- operators -----------------------------------------------------------------------

    def _expr(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        cond, yes, no = (self.visit(c) for c in tree.children)
        size = max(yes.max_size(), no.max_size())
        return _Est(_add(cond.cost, max(yes.cost, no.cost)), yes.type or no.type, size=size)

    def _logical(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        left, right = (self.visit(c) for c in tree.children)
        return _Est(_add(left.cost, right.cost), _t("bool"))

    _conditionalor = _conditionaland = _logical

    def _relation(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        op_tree, rhs_tree = tree.children
        left, right = self.visit(op_tree.children[0]), self.visit(rhs_tree)
        args = _add(left.cost, right.cost)
        if op_tree.data == "relation_in":
            own = right.max_size() if right.kind == "list" or right.kind is None else 1
        elif op_tree.data in ("relation_eq", "relation_ne") or (
            left.kind in ("string", "bytes") and right.kind in ("string", "bytes")
        ):
            own = _factor(min(left.max_size(), right.max_size()), _TRAVERSAL)
        else:
            own = 1
        return _Est(_add(own, args), _t("bool"))

    def _addition(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        op_tree, rhs_tree = tree.children
        left, right = self.visit(op_tree.children[0]), self.visit(rhs_tree)
        args = _add(left.cost, right.cost)
        if op_tree.data == "addition_add" and left.kind in ("string", "bytes", "list"):
            size = _add(left.max_size(), right.max_size())
            own = 1 if left.kind == "list" else _factor(size, _TRAVERSAL)
            elem = max(left.element().max_size(), right.element().max_size()) if left.kind == "list" else None
            return _Est(_add(own, args), left.type, size=size, elem_size=elem)
        return _Est(_add(1, args), left.type if left.kind in SCALARS else None)

    def _multiplication(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        op_tree, rhs_tree = tree.children
        left, right = self.visit(op_tree.children[0]), self.visit(rhs_tree)
        return _Est(_add(1, left.cost, right.cost), left.type if left.kind in SCALARS else None)

    def _unary(self, tree: lark.Tree) -> _Est:
        if len(tree.children) == 1:
            return self.visit(tree.children[0])
        operand = self.visit(tree.children[1])
        return _Est(
            _add(1, operand.cost), _t("bool") if tree.children[0].data == "unary_not" else operand.type
        )

    def _single(self, tree: lark.Tree) -> _Est:
        return self.visit(tree.children[0])

    _member = _primary = _paren_expr = _single

    # -- selection and indexing ------------------------------------------------------------

    def _select(self, operand: _Est, name: str) -> _Est:
        typ = operand.type
        sub: DeclType | None = None
        if typ is not None and typ.kind == "object" and typ.fields is not None:
            if name not in typ.fields:
                raise CELCompileError(f"compilation failed: ERROR: <input>: undefined field '{name}'")
            sub = typ.fields[name]
        elif typ is not None and typ.kind == "map":
            sub = typ.elem
        own = 1 if operand.kind in ("object", "map", None) else 0
        return _Est(_add(operand.cost, own), sub, from_schema=operand.from_schema)

    def _member_dot(self, tree: lark.Tree) -> _Est:
        return self._select(self.visit(tree.children[0]), str(tree.children[1]))

    def _member_index(self, tree: lark.Tree) -> _Est:
        target, index = self.visit(tree.children[0]), self.visit(tree.children[1])
        elem = (
            target.element() if target.kind != "map" else _Est(0, target.type.elem if target.type else None)
        )
        return replace(elem, cost=_add(1, target.cost, index.cost), from_schema=target.from_schema)

    def _member_object(self, tree: lark.Tree) -> _Est:
        values = [self.visit(c) for c in tree.children[1:] if isinstance(c, lark.Tree)]
        return _Est(_add(_STRUCT_CREATE, self.visit(tree.children[0]).cost, *(v.cost for v in values)))

    # -- names, literals, constructors -------------------------------------------------------

    def _ident(self, tree: lark.Tree) -> _Est:
        name = str(tree.children[0])
        if not self.scopes.get(name):
            raise CELCompileError(f"compilation failed: ERROR: <input>: undeclared reference to '{name}'")
        return replace(self.scopes[name][-1], cost=1)

    _dot_ident = _ident

    def _literal(self, tree: lark.Tree) -> _Est:
        token: Any = tree.children[0]
        kind = {"INT_LIT": "int", "UINT_LIT": "uint", "FLOAT_LIT": "double", "BOOL_LIT": "bool",
                "NULL_LIT": "null", "BYTES_LIT": "bytes"}.get(token.type, "string")  # fmt: skip
        size = 1
        if kind in ("string", "bytes"):
            size = len(evaluate(str(token), None, raw=True))
        return _Est(0, _t(kind), size=size)

    def _list_lit(self, tree: lark.Tree) -> _Est:
        items = self._args(tree.children[0] if tree.children else None)
        elem = items[0].type if items else None
        elem_size = max((i.max_size() for i in items), default=0)
        return _Est(
            _add(_LIST_CREATE, *(i.cost for i in items)),
            _t("list", elem),
            size=len(items),
            elem_size=elem_size,
        )

    def _map_lit(self, tree: lark.Tree) -> _Est:
        parts = self._args(tree.children[0] if tree.children else None)
        value = parts[1].type if len(parts) > 1 else None
        return _Est(_add(_MAP_CREATE, *(p.cost for p in parts)), _t("map", value), size=len(parts) // 2)

    # -- calls -------------------------------------------------------------------------------

    def _ident_arg(self, tree: lark.Tree) -> _Est:
        name = str(tree.children[0])
        arg_trees = (
            tree.children[1].children if len(tree.children) > 1 and tree.children[1] is not None else []
        )
        if name == "has":
            selected = _find_select(arg_trees[0])
            if selected is None:
                raise CELCompileError("compilation failed: ERROR: <input>: invalid argument to has() macro")
            operand = self.visit(selected.children[0])
            self._select(operand, str(selected.children[1]))  # the field must exist
            return _Est(_add(1, operand.cost), _t("bool"))
        args = [self.visit(a) for a in arg_trees]
        if name == "dyn" and args:
            return replace(args[0], cost=_add(1, args[0].cost))
        if name == "url" and args:
            own = _factor(args[0].max_size(), _TRAVERSAL)
        elif name == "matches" and len(args) == 2:
            own = _mul(_factor(_add(args[0].max_size(), 1), _TRAVERSAL), _factor(args[1].max_size(), _REGEX))
        else:
            own = 1  # quantity(), isQuantity(), isURL(), size(), conversions: the default
        kind = _RESULT_KINDS.get(name)
        return _Est(_add(own, *(a.cost for a in args)), _t(kind) if kind else None)

    _dot_ident_arg = _ident_arg

    def _member_dot_arg(self, tree: lark.Tree) -> _Est:
        name = str(tree.children[1])
        arg_trees = (
            tree.children[2].children if len(tree.children) > 2 and tree.children[2] is not None else []
        )
        if name in ("all", "exists", "exists_one", "map", "filter") and arg_trees:
            return self._comprehension(name, self.visit(tree.children[0]), arg_trees)
        target = self.visit(tree.children[0])
        check_receiver(name, target.kind)
        args = [self.visit(a) for a in arg_trees]
        own, result = _call_cost(name, target, args, arg_trees)
        return replace(result, cost=_add(own, target.cost, *(a.cost for a in args)))

    def _comprehension(self, macro: str, target: _Est, arg_trees: list[Any]) -> _Est:
        var = _bare_ident(arg_trees[0])
        if var is None:
            raise CELCompileError(
                f"compilation failed: ERROR: <input>: {macro}() variable name must be a simple identifier"
            )
        self.scopes.setdefault(var, []).append(target.element())
        try:
            bodies = [self.visit(t) for t in arg_trees[1:]]
        finally:
            self.scopes[var].pop()
        count = target.max_size()
        body = bodies[0].cost if bodies else 0
        if macro in ("all", "exists"):
            per_item, fixed, result = (3 if macro == "all" else 4) + body, 1, _t("bool")
            return _Est(_add(target.cost, fixed, _mul(count, per_item)), result)
        if macro == "exists_one":
            return _Est(_add(target.cost, 2, _mul(count, body + 2)), _t("bool"))
        if macro == "filter":
            per_item, elem = body + 13, target.element()
        elif len(bodies) == 2:  # map(x, predicate, transform)
            per_item, elem = _add(bodies[0].cost, 12, bodies[1].cost), bodies[1]
        else:
            per_item, elem = _add(12, body), bodies[0]
        return _Est(
            _add(target.cost, _LIST_CREATE + 1, _mul(count, per_item)),
            _t("list", elem.type),
            size=count,
            elem_size=elem.max_size(),
        )


def _bare_ident(tree: Any) -> str | None:
    while isinstance(tree, lark.Tree) and len(tree.children) == 1 and tree.data != "ident":
        tree = tree.children[0]
    if isinstance(tree, lark.Tree) and tree.data == "ident":
        return str(tree.children[0])
    return None


def _find_select(tree: Any) -> lark.Tree | None:
    while isinstance(tree, lark.Tree) and tree.data != "member_dot" and len(tree.children) == 1:
        tree = tree.children[0]
    return tree if isinstance(tree, lark.Tree) and tree.data == "member_dot" else None


def _list_element_size(target: _Est) -> int:
    """cel-go's listElementNode: the schema bound when the list comes from the schema, else unknown."""
    elem = target.element()
    return elem.type.max_elements if elem.type is not None and target.from_schema else UNBOUNDED


def _call_cost(name: str, target: _Est, args: list[_Est], arg_trees: list[Any]) -> tuple[int, _Est]:
    """The function's own cost (without its operands) and the shape of its result."""
    size = target.max_size()
    kind = _RESULT_KINDS.get(name)
    result = _Est(0, _t(kind) if kind else None)
    first = args[0].max_size() if args else 0
    if name == "contains" and args:
        return _mul(_factor(size, _TRAVERSAL), _factor(first, _TRAVERSAL)), result
    if name in ("startsWith", "endsWith") and args:
        return _factor(first, _TRAVERSAL), result
    if name in ("matches", "find", "findAll") and args:
        own = _mul(_factor(_add(size, 1), _TRAVERSAL), _factor(first, _REGEX))
        if name == "findAll":
            return own, _Est(0, _t("list", _t("string")), size=size)
        return own, replace(result, size=size) if name == "find" else result
    if name in ("isSorted", "sum", "max", "min", "indexOf", "lastIndexOf"):
        if target.kind == "list":
            per_item = 1
            elem = target.element()
            if elem.kind in ("string", "bytes"):
                per_item = _add(1, _factor(_list_element_size(target), _TRAVERSAL))
            return _mul(size, per_item), (elem if name in ("sum", "max", "min") else result)
        return _factor(size, _TRAVERSAL), result
    if name in ("lowerAscii", "upperAscii", "substring", "trim"):
        return _factor(size, _TRAVERSAL), replace(result, size=size)
    if name == "replace" and len(args) >= 2:
        old_min = args[0].size if args[0].size is not None else 0
        new_max = args[1].max_size()
        if old_min == 0:
            out = _add(_mul(_add(size, 1), new_max), size)
        elif new_max <= old_min:
            out = size
        else:
            out = _mul(math.ceil(size / old_min), new_max)
        return _factor(size, 2 * _TRAVERSAL), replace(result, size=out)
    if name == "split":
        limit = _literal_int(arg_trees[1]) if len(arg_trees) > 1 else None
        out = limit if limit is not None and limit >= 0 else size
        return _factor(size, 2 * _TRAVERSAL), _Est(0, _t("list", _t("string")), size=out)
    if name == "join":
        total = _mul(size, _list_element_size(target))
        if args:
            total = _add(total, _mul(first, max(size, 1) - 1))
        return _factor(total, _TRAVERSAL), replace(result, size=total)
    return 1, result  # size(), charAt(), the quantity and URL methods, everything else


def _literal_int(tree: Any) -> int | None:
    while isinstance(tree, lark.Tree) and len(tree.children) == 1 and tree.data != "literal":
        tree = tree.children[0]
    token: Any = tree.children[0] if isinstance(tree, lark.Tree) and tree.data == "literal" else None
    if isinstance(token, lark.Token) and token.type == "INT_LIT":
        return int(str(token), 0)
    return None


def rule_cost(rule: str, self_type: DeclType | None, result_kind: str | None = None) -> int:
    """The estimated worst-case cost of one evaluation of ``rule`` (CELCompileError if it cannot
    compile); with ``result_kind``, a rule whose known type is another is a compile error."""
    estimate = _Estimator(self_type).visit(compile_rule(rule).tree)
    if result_kind is not None:
        check_result(
            estimate.kind, result_kind, "cel expression" if result_kind == "bool" else "messageExpression"
        )
    return estimate.cost

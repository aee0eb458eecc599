"""The cost limits a Kubernetes API server applies to a CRD's CEL rules when the CRD is written.

Each rule's estimated cost (:mod:`.cost`) times the number of times it can run in one
object (the product of ``maxItems``/``maxProperties`` of the lists and maps above it, or,
under an unbounded one, as many as a 3 MiB request could hold) must stay under 10,000,000
(``StaticEstimatedCostLimit``); the sum over the whole schema under 100,000,000
(``StaticEstimatedCRDCostLimit``). Messages are the server's (``getCostErrorMessage``).
``messageExpression`` costs count too. The per-evaluation runtime budget is not enforced.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rankops.sandbox.cel.cost import rule_cost
from rankops.sandbox.cel.decltypes import decl_type, max_cardinality
from rankops.sandbox.cel.runtime import CELCompileError

__all__ = [
    "RULE_COST_LIMIT",
    "SCHEMA_COST_LIMIT",
    "RuleProblem",
    "check_schema_rules",
    "cost_error_message",
    "schema_nodes",
]

RULE_COST_LIMIT = 10_000_000
SCHEMA_COST_LIMIT = 100_000_000
_MOST_EXPENSIVE = 4
_UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class RuleProblem:
    """``path`` (``...x-kubernetes-validations[0].rule``), ``message``, and ``forbidden``
    (True: a Forbidden cost error; False: an Invalid compile error about ``rule``)."""

    path: str
    message: str
    forbidden: bool
    rule: Any = None


def cost_error_message(what: str, cost: int, limit: int) -> str:
    factor = cost / limit
    if factor > 100:
        text = "more than 100x"
    elif factor < 1.5:
        text = f"{factor:f}x"
    else:
        text = f"{factor:.1f}x"
    return (
        f"{what} exceeds budget by factor of {text} (try simplifying the rule, or adding maxItems, "
        "maxProperties, and maxLength where arrays, maps, and strings are declared)"
    )


def schema_nodes(
    schema: Mapping[str, Any], path: str, cardinality: int | None, root: bool
) -> Iterator[tuple[Mapping[str, Any], str, int | None, bool]]:
    """Every node under ``schema``: (node, its path, how often it can occur or None when an
    unbounded list or map is above it, whether it is a resource root)."""
    yield schema, path, cardinality, root
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, Mapping):
            yield from schema_nodes(
                sub, f"{path}.properties[{key}]", cardinality, bool(sub.get("x-kubernetes-embedded-resource"))
            )
    for key, bound_key in (("items", "maxItems"), ("additionalProperties", "maxProperties")):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            bound = schema.get(bound_key)
            child = None if cardinality is None or bound is None else cardinality * max(0, int(bound))
            yield from schema_nodes(
                sub, f"{path}.{key}", child, bool(sub.get("x-kubernetes-embedded-resource"))
            )


def check_schema_rules(schema: Mapping[str, Any], path: str) -> list[RuleProblem]:
    """Compile and cost every ``x-kubernetes-validations`` rule under ``schema`` (at ``path``)."""
    problems: list[RuleProblem] = []
    observed: list[tuple[int, str]] = []
    for node, node_path, cardinality, root in schema_nodes(schema, path, 1, True):
        rules = node.get("x-kubernetes-validations") or []
        if not rules:
            continue
        self_type = decl_type(node, is_root=root)
        times = (
            cardinality
            if cardinality is not None
            else max_cardinality(self_type.min_size if self_type else 1)
        )
        for idx, rule in enumerate(rules):
            if not isinstance(rule, Mapping):
                continue
            for field_name, what in (
                ("rule", "estimated rule cost"),
                ("messageExpression", "estimated messageExpression cost"),
            ):
                text = rule.get(field_name)
                if not isinstance(text, str) or not text.strip():
                    continue
                at = f"{node_path}.x-kubernetes-validations[{idx}].{field_name}"
                try:
                    kind = "bool" if field_name == "rule" else "string"
                    cost = min(_UINT64_MAX, rule_cost(text, self_type, kind) * times)
                except CELCompileError as exc:
                    problems.append(RuleProblem(at, str(exc), forbidden=False, rule=text))
                    continue
                if cost > RULE_COST_LIMIT:
                    problems.append(
                        RuleProblem(at, cost_error_message(what, cost, RULE_COST_LIMIT), forbidden=True)
                    )
                observed.append((cost, at))
    total = min(_UINT64_MAX, sum(cost for cost, _ in observed))
    if total > SCHEMA_COST_LIMIT:
        for _, at in sorted(observed, key=lambda pair: -pair[0])[:_MOST_EXPENSIVE]:
            problems.append(
                RuleProblem(
                    at,
                    "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3"
                    " schema",
                    True,
                )
            )
        what = "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema"
        problems.append(RuleProblem(path, cost_error_message(what, total, SCHEMA_COST_LIMIT), forbidden=True))
    return problems

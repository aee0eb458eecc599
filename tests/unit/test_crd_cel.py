"""The CRDs' CEL rules as a real API server takes them: idiomatic library calls, within the
cost budget, and the defaults the rules and the maintenance plan rely on."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.sandbox.cel.budget import RULE_COST_LIMIT, schema_nodes
from rankops.sandbox.cel.cost import rule_cost
from rankops.sandbox.cel.decltypes import decl_type
from rankops.sandbox.schema import validate_crd, validate_custom_resource

ROOT = Path(__file__).resolve().parents[2]
CRDS = {path.stem: yaml.safe_load(path.read_text()) for path in sorted((ROOT / "crds").glob("*.yaml"))}


def _model(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": "m"},
        "spec": {
            "model": {"version": "1.0.0", "uri": "file:///m"},
            "serving": {"image": "ranker:1"},
            "rollout": {"steps": steps},
        },
    }


@pytest.mark.parametrize("name", sorted(CRDS))
def test_every_rule_is_within_the_servers_cost_budget(name: str) -> None:
    assert validate_crd(CRDS[name]) == []
    schema = CRDS[name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for node, path, cardinality, root in schema_nodes(schema, "", 1, True):
        for rule in node.get("x-kubernetes-validations") or []:
            assert cardinality is not None, (
                f"{path}: a list or map above the rule has no maxItems/maxProperties"
            )
            cost = rule_cost(rule["rule"], decl_type(node, root)) * cardinality
            assert 0 < cost <= RULE_COST_LIMIT / 1000, (path, rule["rule"], cost)


def test_step_weights_rule_is_the_lists_library_not_unrolled() -> None:
    rollout = CRDS["rankingmodels"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["rollout"]
    rules = [r["rule"] for r in rollout["x-kubernetes-validations"]]
    assert "!has(self.steps) || self.steps.map(s, s.weight).isSorted()" in rules
    assert all(len(rule) < 200 for rule in rules)


@settings(deadline=None)  # the first example compiles the rules; the machine is shared
@given(st.lists(st.integers(min_value=1, max_value=99), min_size=0, max_size=19))
def test_step_weights_must_not_decrease_at_any_of_the_twenty_positions(weights: list[int]) -> None:
    steps = [{"weight": w} for w in [*weights, 100]]
    _, errors = validate_custom_resource(CRDS["rankingmodels"], _model(steps))
    decreasing = any(b < a for a, b in itertools.pairwise(weights))
    messages = [e.message for e in errors if e.path == "spec.rollout.steps"]
    assert ("step weights must not decrease" in messages) == decreasing, (weights, messages)


def test_backup_retention_keeps_twelve_monthly_by_default() -> None:
    window = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "w"},
        "spec": {
            "schedule": "0 2 * * *",
            "duration": "2h",
            "tasks": [{"name": "backup", "type": "Backup", "backup": {"destination": "file:///b"}}],
        },
    }
    obj, errors = validate_custom_resource(CRDS["maintenancewindows"], window)
    assert errors == []
    assert obj["spec"]["tasks"][0]["backup"]["retention"] == {"daily": 7, "weekly": 4, "monthly": 12}

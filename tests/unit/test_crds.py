"""The CRDs: structural, with the names, columns and defaults we promise; the examples validate;
invalid manifests are rejected with a message naming the field.

Validation goes through the API-server emulator's pure function
(``rankops.sandbox.schema.validate_custom_resource``), the same code the integration tests
serve, so these tests pin the CRDs' behaviour as kube-apiserver would apply it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rankops.operator.core.spec import (
    SpecError,
    Step,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)
from rankops.sandbox.schema import validate_crd, validate_custom_resource

ROOT = Path(__file__).resolve().parents[2]
CRD_FILES = {
    "RankingModel": ROOT / "crds" / "rankingmodels.yaml",
    "QualitySLO": ROOT / "crds" / "qualityslos.yaml",
    "MaintenanceWindow": ROOT / "crds" / "maintenancewindows.yaml",
}
EXAMPLES = sorted(
    path
    for path in (ROOT / "examples").glob("*.yaml")
    if str(yaml.safe_load(path.read_text()).get("apiVersion", "")).startswith("rankops.dev/")
)


def load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return {kind: load(path) for kind, path in CRD_FILES.items()}


def errors_of(crd: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    _, errors = validate_custom_resource(crd, obj)
    return [str(e) for e in errors]


# --------------------------------------------------------------------------- the CRDs themselves


@pytest.mark.parametrize("kind", sorted(CRD_FILES))
def test_crd_is_valid_and_structural(crds: dict[str, dict[str, Any]], kind: str) -> None:
    crd = crds[kind]
    assert validate_crd(crd) == []
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["spec"]["group"] == "rankops.dev"
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["names"]["categories"] == ["rankops"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    assert "status" in version["schema"]["openAPIV3Schema"]["properties"]


@pytest.mark.parametrize(
    ("kind", "short", "columns"),
    [
        ("RankingModel", "rm", ["Phase", "Stable", "Canary", "Weight", "Progress", "Age"]),
        ("QualitySLO", "slo", ["State", "Objectives", "Models", "Age"]),
        ("MaintenanceWindow", "mw", ["Schedule", "Next", "Active", "Tasks", "Age"]),
    ],
)
def test_short_names_and_printer_columns(
    crds: dict[str, dict[str, Any]], kind: str, short: str, columns: list[str]
) -> None:
    crd = crds[kind]
    assert crd["spec"]["names"]["shortNames"] == [short]
    printed = [
        c["name"] for c in crd["spec"]["versions"][0]["additionalPrinterColumns"] if not c.get("priority")
    ]
    assert printed == columns


def test_every_kind_has_an_example() -> None:
    kinds = {load(path)["kind"] for path in EXAMPLES}
    assert kinds >= set(CRD_FILES)


# --------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_validates(crds: dict[str, dict[str, Any]], path: Path) -> None:
    obj = load(path)
    assert obj["apiVersion"] == "rankops.dev/v1alpha1"
    assert errors_of(crds[obj["kind"]], obj) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_parses_in_the_core(crds: dict[str, dict[str, Any]], path: Path) -> None:
    obj = load(path)
    stored, _ = validate_custom_resource(crds[obj["kind"]], obj)
    if obj["kind"] == "RankingModel":
        # Defaults applied by the API server and by the parser agree.
        assert parse_ranking_model_spec(stored["spec"]) == parse_ranking_model_spec(obj["spec"])
    elif obj["kind"] == "QualitySLO":
        assert parse_quality_slo_spec(stored["spec"]) == parse_quality_slo_spec(obj["spec"])


def test_minimal_model_gets_the_documented_defaults(crds: dict[str, dict[str, Any]]) -> None:
    stored, errors = validate_custom_resource(
        crds["RankingModel"], load(ROOT / "examples" / "rankingmodel-minimal.yaml")
    )
    assert errors == []
    spec = stored["spec"]
    assert spec["serving"]["replicas"] == 2
    assert spec["serving"]["port"] == 8080
    # No steps default in the schema (an experiment excludes steps); the parser's is one step at 100.
    assert "steps" not in spec["rollout"]
    assert parse_ranking_model_spec(spec).rollout.steps == (Step(weight=100),)
    assert spec["rollout"]["trafficRouting"] == {"replicaRatio": {}}
    assert spec["rollout"]["progressDeadline"] == "10m"
    assert spec["rollout"]["autoRollback"] is True


def test_analysis_defaults(crds: dict[str, dict[str, Any]]) -> None:
    obj = load(ROOT / "examples" / "rankingmodel-minimal.yaml")
    obj["spec"]["rollout"] = {
        "steps": [{"weight": 50}, {"weight": 100}],
        "analysis": {"sloRef": {"name": "q"}},
    }
    stored, errors = validate_custom_resource(crds["RankingModel"], obj)
    assert errors == []
    assert stored["spec"]["rollout"]["analysis"] == {
        "sloRef": {"name": "q"},
        "interval": "30s",
        "failureLimit": 2,
        "inconclusiveLimit": 3,
    }


def test_slo_comparison_defaults(crds: dict[str, dict[str, Any]]) -> None:
    obj = {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "QualitySLO",
        "metadata": {"name": "q"},
        "spec": {"objectives": [{"name": "ndcg", "metric": "ndcg_at_3"}]},
    }
    stored, errors = validate_custom_resource(crds["QualitySLO"], obj)
    assert errors == []
    objective = stored["spec"]["objectives"][0]
    assert objective["direction"] == "higherIsBetter"
    assert objective["comparison"] == {"maxDegradation": 0.02, "alpha": 0.05, "minSamples": 50}
    parsed = parse_quality_slo_spec(stored["spec"]).objectives[0]
    assert (parsed.target, parsed.breach) == (0.70, 0.65)


def test_unknown_fields_are_pruned(crds: dict[str, dict[str, Any]]) -> None:
    obj = load(ROOT / "examples" / "rankingmodel-minimal.yaml")
    obj["spec"]["serving"]["colour"] = "blue"
    stored, errors = validate_custom_resource(crds["RankingModel"], obj)
    assert errors == []
    assert "colour" not in stored["spec"]["serving"]


def test_trainer_template_is_preserved(crds: dict[str, dict[str, Any]]) -> None:
    obj = load(ROOT / "examples" / "rankingmodel-full.yaml")
    stored, errors = validate_custom_resource(crds["RankingModel"], obj)
    assert errors == []
    assert stored["spec"]["retrain"]["trainer"]["template"] == obj["spec"]["retrain"]["trainer"]["template"]


# --------------------------------------------------------------------------- invalid manifests


def _rm(mutate: Any) -> dict[str, Any]:
    obj = load(ROOT / "examples" / "rankingmodel-full.yaml")
    mutate(obj["spec"])
    return obj


def _set(path: str, value: Any) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _delete(path: str) -> Any:
    def mutate(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = spec
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        del node[last]

    return mutate


INVALID_MODELS = [
    (
        "weight 150",
        _set("rollout.steps.0.weight", 150),
        "spec.rollout.steps[0].weight",
        "less than or equal to 100",
    ),
    (
        "weight 0",
        _set("rollout.steps.0.weight", 0),
        "spec.rollout.steps[0].weight",
        "greater than or equal to 1",
    ),
    (
        "steps end below 100",
        _set("rollout.steps.3.weight", 90),
        "spec.rollout.steps",
        "must end at weight 100",
    ),
    ("weights decrease", _set("rollout.steps.1.weight", 5), "spec.rollout.steps", "must not decrease"),
    ("no steps", _set("rollout.steps", []), "spec.rollout.steps", "should have at least 1 items"),
    ("bad semver", _set("model.version", "v1.1"), "spec.model.version", "should match"),
    ("semver leading zero", _set("model.version", "1.01.0"), "spec.model.version", "should match"),
    ("bad pause", _set("rollout.steps.0.pause", "2 minutes"), "spec.rollout.steps[0].pause", "should match"),
    (
        "bad interval",
        _set("rollout.analysis.interval", "30"),
        "spec.rollout.analysis.interval",
        "should match",
    ),
    ("bad deadline", _set("rollout.progressDeadline", "1d"), "spec.rollout.progressDeadline", "should match"),
    ("missing image", _delete("serving.image"), "spec.serving.image", "Required value"),
    ("missing model uri", _delete("model.uri"), "spec.model.uri", "Required value"),
    ("missing sloRef", _delete("rollout.analysis.sloRef"), "spec.rollout.analysis.sloRef", "Required value"),
    ("replicas 0", _set("serving.replicas", 0), "spec.serving.replicas", "greater than or equal to 1"),
    ("weight not integer", _set("rollout.steps.0.weight", "ten"), "spec.rollout.steps[0].weight", "integer"),
    (
        "gateway without route",
        _set("rollout.trafficRouting", {"gatewayAPI": {"gateway": "g"}}),
        "spec.rollout.trafficRouting.gatewayAPI.httpRoute",
        "Required value",
    ),
    (
        "two routers",
        _set("rollout.trafficRouting", {"replicaRatio": {}, "gatewayAPI": {"httpRoute": "r"}}),
        "spec.rollout.trafficRouting",
        "exactly one of replicaRatio or gatewayAPI",
    ),
    (
        "failureLimit 0",
        _set("rollout.analysis.failureLimit", 0),
        "spec.rollout.analysis.failureLimit",
        "greater",
    ),
    (
        "reserved env",
        _set("serving.env", [{"name": "RANKOPS_VERSION", "value": "x"}]),
        "spec.serving.env[0]",
        "reserved",
    ),
    (
        "unknown promotion mode",
        _set("retrain.promotionGate.mode", "Yolo"),
        "spec.retrain.promotionGate.mode",
        "Unsupported value",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutate", "field", "text"), INVALID_MODELS, ids=[c[0] for c in INVALID_MODELS]
)
def test_invalid_ranking_model_is_rejected(
    crds: dict[str, dict[str, Any]], name: str, mutate: Any, field: str, text: str
) -> None:
    errors = errors_of(crds["RankingModel"], _rm(mutate))
    assert errors, f"{name}: accepted"
    assert any(e.startswith(f"{field}:") and text in e for e in errors), errors


def test_analysis_step_without_analysis_block(crds: dict[str, dict[str, Any]]) -> None:
    def mutate(spec: dict[str, Any]) -> None:
        del spec["rollout"]["analysis"]
        spec["rollout"]["steps"][0]["analysis"] = True

    errors = errors_of(crds["RankingModel"], _rm(mutate))
    assert any(e.startswith("spec.rollout.steps:") and "need rollout.analysis" in e for e in errors), errors


def _slo(mutate: Any) -> dict[str, Any]:
    obj = load(ROOT / "examples" / "qualityslo.yaml")
    mutate(obj["spec"])
    return obj


INVALID_SLOS = [
    (
        "breach above target",
        _set("objectives.0.breach", 0.8),
        "spec.objectives[0].breach",
        "breach must be below target",
    ),
    (
        "breach equals target",
        _set("objectives.0.breach", 0.7),
        "spec.objectives[0].breach",
        "breach must be below target",
    ),
    (
        "lowerIsBetter breach below target",
        _set("objectives.2.breach", 0.0001),
        "spec.objectives[2].breach",
        "above it when direction is lowerIsBetter",
    ),
    (
        "breach above the default target",
        _set("objectives.0", {"name": "ndcg", "metric": "ndcg_at_3", "breach": 0.75}),
        "spec.objectives[0].breach",
        "default target to 0.70",
    ),
    (
        "target below the default breach",
        _set("objectives.0", {"name": "ndcg", "metric": "ndcg_at_3", "target": 0.6}),
        "spec.objectives[0].breach",
        "default target to 0.70",
    ),
    ("unknown metric", _set("objectives.0.metric", "mrr"), "spec.objectives[0].metric", "Unsupported value"),
    (
        "unknown direction",
        _set("objectives.0.direction", "up"),
        "spec.objectives[0].direction",
        "Unsupported value",
    ),
    (
        "alpha 0",
        _set("objectives.0.comparison.alpha", 0),
        "spec.objectives[0].comparison.alpha",
        "greater than 0",
    ),
    (
        "alpha 0.5",
        _set("objectives.0.comparison.alpha", 0.5),
        "spec.objectives[0].comparison.alpha",
        "less than 0.5",
    ),
    (
        "negative margin",
        _set("objectives.0.comparison.maxDegradation", -0.1),
        "spec.objectives[0].comparison.maxDegradation",
        "greater than or equal to 0",
    ),
    ("no objectives", _set("objectives", []), "spec.objectives", "should have at least 1 items"),
    ("missing metric", _delete("objectives.0.metric"), "spec.objectives[0].metric", "Required value"),
    (
        "custom without query",
        _set("objectives.1", {"name": "c", "metric": "custom", "target": 1.0, "breach": 0.5}),
        "spec.objectives[1].query",
        "needs a query",
    ),
    (
        "latency without thresholds",
        _set("objectives.3", {"name": "latency", "metric": "latency_p95", "direction": "lowerIsBetter"}),
        "spec.objectives[3]",
        "target and breach are required",
    ),
    (
        "tier with both bounds",
        _set("objectives.0.severityTiers.0", {"name": "P0", "below": 0.5, "above": 0.9}),
        "spec.objectives[0].severityTiers[0]",
        "exactly one of below or above",
    ),
    (
        "bad tier name",
        _set("objectives.0.severityTiers.0.name", "critical"),
        "spec.objectives[0].severityTiers[0].name",
        "should match",
    ),
    ("bad window", _set("objectives.0.window", "ten minutes"), "spec.objectives[0].window", "should match"),
]


@pytest.mark.parametrize(("name", "mutate", "field", "text"), INVALID_SLOS, ids=[c[0] for c in INVALID_SLOS])
def test_invalid_quality_slo_is_rejected(
    crds: dict[str, dict[str, Any]], name: str, mutate: Any, field: str, text: str
) -> None:
    errors = errors_of(crds["QualitySLO"], _slo(mutate))
    assert errors, f"{name}: accepted"
    assert any(e.startswith(f"{field}:") and text in e for e in errors), errors


def _mw(mutate: Any) -> dict[str, Any]:
    obj = load(ROOT / "examples" / "maintenancewindow.yaml")
    mutate(obj["spec"])
    return obj


INVALID_WINDOWS = [
    ("bad cron", _set("schedule", "every night"), "spec.schedule", "not a valid cron expression"),
    ("minute 61", _set("schedule", "61 * * * *"), "spec.schedule", "minute 0-59"),
    ("hour 24", _set("schedule", "0 24 * * *"), "spec.schedule", "not a valid cron expression"),
    ("malformed time zone", _set("timeZone", "../etc/passwd"), "spec.timeZone", "should match"),
    ("bad duration", _set("duration", "2 hours"), "spec.duration", "should match"),
    ("missing schedule", _delete("schedule"), "spec.schedule", "Required value"),
    ("unknown policy", _set("rolloutPolicy", "Never"), "spec.rolloutPolicy", "Unsupported value"),
    (
        "unknown concurrency",
        _set("concurrencyPolicy", "Queue"),
        "spec.concurrencyPolicy",
        "Unsupported value",
    ),
    ("unknown task", _set("tasks.1.type", "Reindex"), "spec.tasks[1].type", "Unsupported value"),
    (
        "backup without destination",
        _delete("tasks.0.backup"),
        "spec.tasks[0].backup",
        "needs backup.destination",
    ),
    (
        "negative retention",
        _set("tasks.0.backup.retention.daily", -1),
        "spec.tasks[0].backup.retention.daily",
        "greater than or equal to 0",
    ),
    (
        "restore test without source",
        _delete("tasks.1.restoreTest"),
        "spec.tasks[1].restoreTest",
        "needs restoreTest.source",
    ),
    (
        "evaluate without data",
        _delete("tasks.3.evaluate.data"),
        "spec.tasks[3].evaluate",
        "needs evaluate.data",
    ),
    (
        "p-value of zero",
        _set("tasks.2.driftCheck.pValue", 0),
        "spec.tasks[2].driftCheck.pValue",
        "greater than",
    ),
    (
        "negative starting deadline",
        _set("startingDeadlineSeconds", -5),
        "spec.startingDeadlineSeconds",
        "greater than or equal to 0",
    ),
    (
        "In without values",
        _set("selector", {"matchExpressions": [{"key": "team", "operator": "In"}]}),
        "spec.selector.matchExpressions[0]",
        "need values",
    ),
]


@pytest.mark.parametrize(
    ("name", "mutate", "field", "text"), INVALID_WINDOWS, ids=[c[0] for c in INVALID_WINDOWS]
)
def test_invalid_maintenance_window_is_rejected(
    crds: dict[str, dict[str, Any]], name: str, mutate: Any, field: str, text: str
) -> None:
    errors = errors_of(crds["MaintenanceWindow"], _mw(mutate))
    assert errors, f"{name}: accepted"
    assert any(e.startswith(f"{field}:") and text in e for e in errors), errors


def test_cron_macros_and_five_fields_accepted(crds: dict[str, dict[str, Any]]) -> None:
    for schedule in ("@daily", "0 2 * * *", "*/15 1-5 * * 1-5", "0 0 1 jan,jul SUN", "5,35 */2 1-15/2 * 0-6"):
        assert errors_of(crds["MaintenanceWindow"], _mw(_set("schedule", schedule))) == [], schedule


def test_status_enums_are_enforced(crds: dict[str, dict[str, Any]]) -> None:
    obj = load(ROOT / "examples" / "rankingmodel-minimal.yaml")
    obj["status"] = {"phase": "Exploded", "history": [{"version": "1.0.0", "outcome": "Promoted"}] * 11}
    errors = errors_of(crds["RankingModel"], obj)
    assert any(e.startswith("status.phase:") for e in errors), errors
    assert any("status.history" in e and "Too many" in e for e in errors), errors


def test_parser_rejects_what_the_crd_rejects() -> None:
    """The core's parser names the same fields for the cross-field rules (objects that skipped validation)."""
    spec = load(ROOT / "examples" / "rankingmodel-full.yaml")["spec"]
    cases = [
        (_set("rollout.steps.3.weight", 90), "spec.rollout.steps"),
        (_set("rollout.steps.1.weight", 5), "spec.rollout.steps[1].weight"),
        (_set("model.version", "v1"), "spec.model.version"),
        (_set("rollout.steps.0.pause", "2 minutes"), "spec.rollout.steps[0].pause"),
    ]
    for mutate, field in cases:
        broken = copy.deepcopy(spec)
        mutate(broken)
        with pytest.raises(SpecError) as info:
            parse_ranking_model_spec(broken)
        assert info.value.path == field

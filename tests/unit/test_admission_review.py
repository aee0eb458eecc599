"""Admission reviews (core.admission): what is refused, what is only warned, and the messages."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from rankops.operator.core.admission import (
    review_maintenance_window,
    review_quality_slo,
    review_ranking_model,
    slo_reference,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def example(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((EXAMPLES / name).read_text()))


def test_the_examples_are_admitted_without_warnings() -> None:
    slo = example("qualityslo.yaml")
    assert review_quality_slo(slo["spec"]).allowed
    window = review_maintenance_window(example("maintenancewindow.yaml")["spec"], NOW)
    assert window.allowed and not window.warnings, window
    for name in ("rankingmodel-full.yaml", "rankingmodel-minimal.yaml", "rankingmodel-gateway.yaml"):
        spec = example(name)["spec"]
        review = review_ranking_model(spec, "default", slo if slo_reference(spec) else None)
        assert review.allowed and not review.warnings, (name, review)


@pytest.mark.parametrize(
    ("time_zone", "schedule", "expected"),
    [
        ("Europe/Pariss", "0 2 * * *", "spec.timeZone: unknown time zone 'Europe/Pariss'"),
        ("UTC", "0 25 * * *", "spec.schedule: not a cron schedule: '0 25 * * *'"),
        ("UTC", "0 0 31 2 *", "spec.schedule: cron expression '0 0 31 2 *' never matches"),
    ],
)
def test_a_window_with_a_bad_zone_or_schedule_is_refused(
    time_zone: str, schedule: str, expected: str
) -> None:
    spec = {**example("maintenancewindow.yaml")["spec"], "timeZone": time_zone, "schedule": schedule}
    review = review_maintenance_window(spec, NOW)
    assert not review.allowed
    assert review.message.startswith(expected), review.message


def test_overlapping_windows_are_a_warning() -> None:
    spec = example("maintenancewindow.yaml")["spec"]
    spec.update(schedule="0 */6 * * *", duration="8h", timeZone="UTC")
    review = review_maintenance_window(spec, NOW)
    assert review.allowed
    assert review.warnings == (
        "spec.duration: 28800s is longer than the 21600s between two windows of '0 */6 * * *': "
        "windows overlap, so the window never closes between them",
    )


def test_unknown_storage_protocols_are_refused_everywhere() -> None:
    window = copy.deepcopy(example("maintenancewindow.yaml")["spec"])
    window["tasks"][0]["backup"]["destination"] = "s4://backups/search"
    review = review_maintenance_window(window, NOW)
    assert review.problems == (
        "spec.tasks[0].backup.destination: unknown storage protocol 's4' in 's4://backups/search' "
        "(fsspec URIs such as file:///path, s3://bucket/key, gs://bucket/key)",
    )
    model = copy.deepcopy(example("rankingmodel-minimal.yaml")["spec"])
    model["model"]["uri"] = "fiel:///models/v1"
    review = review_ranking_model(model, "default", None)
    assert review.problems[0].startswith("spec.model.uri: unknown storage protocol 'fiel'")
    model["model"]["uri"] = "/models/v1"  # a plain path is a local file
    assert review_ranking_model(model, "default", None).allowed


def test_spec_errors_of_the_operators_parsers_are_refused() -> None:
    spec = copy.deepcopy(example("rankingmodel-full.yaml")["spec"])
    spec["rollout"]["steps"] = [{"weight": 50}, {"weight": 20}, {"weight": 100}]
    review = review_ranking_model(spec, "default", None)
    assert not review.allowed and review.message.startswith("spec.rollout.steps"), review.message


def test_a_missing_or_invalid_slo_is_a_warning_not_a_refusal() -> None:
    spec = example("rankingmodel-full.yaml")["spec"]
    name = slo_reference(spec)
    assert name
    review = review_ranking_model(spec, "default", None)
    assert review.allowed
    assert review.warnings == (
        f"spec.rollout.analysis.sloRef: QualitySLO default/{name} does not exist (yet): analysis waits "
        "for it (SLONotFound) and the canary does not advance",
    )
    bad = {
        "spec": {"objectives": [{"name": "q", "metric": "custom", "query": "sum(", "target": 1, "breach": 0}]}
    }
    review = review_ranking_model(spec, "default", bad)
    assert review.allowed
    assert "is invalid (spec.objectives[0].query: not valid PromQL" in review.warnings[0]


def objective(query: str) -> dict[str, Any]:
    return {
        "objectives": [{"name": "custom", "metric": "custom", "query": query, "target": 0.7, "breach": 0.6}]
    }


@pytest.mark.parametrize(
    "query",
    [
        'avg(my_metric{model="$model",track="$track"})',
        'sum(rate(x{namespace="${namespace}",version="$version"}[$window])) / 2',
        'avg_over_time(x{model="$model"}[$window])',
    ],
)
def test_good_queries_are_admitted(query: str) -> None:
    assert review_quality_slo(objective(query)).allowed


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sum(rate(x[5m])", "spec.objectives[0].query: not valid PromQL (unclosed left parenthesis)"),
        (
            'avg(x{model="$modle"})',
            "spec.objectives[0].query: unknown placeholder $modle "
            "(known: $model, $track, $version, $namespace, $window)",
        ),
        ('x{model="$model"}[$window]', "spec.objectives[0].query: returns a range vector"),
        ('"text"', "spec.objectives[0].query: returns a string"),
    ],
)
def test_bad_queries_are_refused_with_the_reason(query: str, expected: str) -> None:
    review = review_quality_slo(objective(query))
    assert not review.allowed
    assert review.message.startswith(expected), review.message

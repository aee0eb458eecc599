"""rankops.sandbox.tables: JSONPath subset, ages, and Table building."""

from __future__ import annotations

import datetime

from rankops.sandbox.tables import build_table, human_age, jsonpath

OBJ = {
    "metadata": {"name": "m", "creationTimestamp": "2026-01-01T00:00:00Z", "annotations": {"a.b/c": "x"}},
    "spec": {"steps": [{"weight": 10}, {"weight": 100}]},
    "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Degraded", "status": "False"}]},
}


def test_jsonpath() -> None:
    assert jsonpath(OBJ, ".metadata.name") == ["m"]
    assert jsonpath(OBJ, "{.spec.steps[1].weight}") == [100]
    assert jsonpath(OBJ, ".spec.steps[*].weight") == [10, 100]
    assert jsonpath(OBJ, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert jsonpath(OBJ, ".metadata.annotations['a.b/c']") == ["x"]
    assert jsonpath(OBJ, ".spec.missing") == []


def test_human_age() -> None:
    now = datetime.datetime(2026, 1, 2, 3, 0, 0, tzinfo=datetime.UTC)
    assert human_age("2026-01-02T02:59:55Z", now) == "5s"
    assert human_age("2026-01-02T02:55:00Z", now) == "5m"
    assert human_age("2026-01-02T01:00:00Z", now) == "120m"
    assert human_age("2026-01-01T00:00:00Z", now) == "27h"
    assert human_age("2025-12-01T00:00:00Z", now) == "32d"
    assert human_age(None, now) == "<unknown>"


def test_build_table() -> None:
    columns = [
        {"name": "Steps", "type": "string", "jsonPath": ".spec.steps[*].weight"},
        {
            "name": "Ready",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
            "priority": 1,
        },
    ]
    table = build_table([OBJ], columns, "7")
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Steps", "Ready", "Age"]
    assert table["rows"][0]["cells"][:3] == ["m", "10,100", "True"]
    assert table["metadata"]["resourceVersion"] == "7"
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"

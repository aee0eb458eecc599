"""Conditions, durations and timestamps, SLO states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.conditions import get_condition, set_condition
from rankops.operator.core.slo import ObjectiveState, objective_state
from rankops.operator.core.spec import Objective, SeverityTier
from rankops.operator.core.timeutil import format_duration, format_time, parse_duration, parse_time

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --------------------------------------------------------------------------- conditions


def test_set_condition_appends_and_replaces() -> None:
    conds = set_condition([], "Available", "True", "StableAvailable", "ok", T0, 3)
    assert conds == [
        {
            "type": "Available",
            "status": "True",
            "reason": "StableAvailable",
            "message": "ok",
            "lastTransitionTime": "2026-03-01T12:00:00Z",
            "observedGeneration": 3,
        }
    ]
    later = T0 + timedelta(minutes=5)
    same = set_condition(conds, "Available", "True", "StillFine", "still ok", later, 4)
    assert same[0]["lastTransitionTime"] == "2026-03-01T12:00:00Z"
    assert same[0]["reason"] == "StillFine" and same[0]["observedGeneration"] == 4
    flipped = set_condition(same, "Available", "False", "StableNotReady", "down", later)
    assert flipped[0]["lastTransitionTime"] == "2026-03-01T12:05:00Z"
    assert "observedGeneration" not in flipped[0]
    assert conds[0]["reason"] == "StableAvailable"  # inputs are not mutated
    assert get_condition(flipped, "Available") == flipped[0] and get_condition(flipped, "Nope") is None


def test_condition_order_is_kept() -> None:
    conds = set_condition([], "A", "True", "R", "", T0)
    conds = set_condition(conds, "B", "True", "R", "", T0)
    conds = set_condition(conds, "A", "False", "R", "", T0)
    assert [c["type"] for c in conds] == ["A", "B"]


@pytest.mark.parametrize(("status", "reason"), [("Yes", "Fine"), ("True", "not camel"), ("True", "")])
def test_condition_validation(status: str, reason: str) -> None:
    with pytest.raises(ValueError):
        set_condition([], "A", status, reason, "", T0)  # type: ignore[arg-type]


@given(st.lists(st.tuples(st.sampled_from(["True", "False", "Unknown"]), st.integers(0, 3600)), max_size=20))
def test_transition_time_changes_only_on_flips(changes: list[tuple[str, int]]) -> None:
    conds: list[dict[str, object]] = []
    now = T0
    last_status = None
    last_time = None
    for status, step in changes:
        now += timedelta(seconds=step)
        conds = set_condition(conds, "Ready", status, "Because", "", now)  # type: ignore[arg-type]
        c = conds[0]
        if status == last_status:
            assert c["lastTransitionTime"] == last_time
        else:
            assert c["lastTransitionTime"] == format_time(now)
        last_status, last_time = status, c["lastTransitionTime"]


# --------------------------------------------------------------------------- durations and times


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("1m30s", 90),
        ("10m", 600),
        ("1h", 3600),
        ("500ms", 0.5),
        ("1h2m3s4ms", 3723.004),
        (45, 45),
    ],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "30", "1d", "-5s", "1.5m", "m", True, -1])
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)  # type: ignore[arg-type]


@given(st.integers(0, 10**9))
def test_duration_round_trip(millis: int) -> None:
    assert parse_duration(format_duration(millis / 1000)) == pytest.approx(millis / 1000)


def test_times() -> None:
    berlin = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 3, 1, 13, 0, 5, 999, tzinfo=berlin)) == "2026-03-01T12:00:05Z"
    assert parse_time("2026-03-01T12:00:05Z") == datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
    assert parse_time("2026-03-01T12:00:05.25+01:00") == datetime(2026, 3, 1, 11, 0, 5, 250000, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


# --------------------------------------------------------------------------- SLO states

RUNBOOK = Objective(
    name="ndcg",
    metric="ndcg_at_3",
    target=0.70,
    breach=0.65,
    severity_tiers=(
        SeverityTier("P0", below=0.50),
        SeverityTier("P1", below=0.60),
        SeverityTier("P2", below=0.70),
    ),
)


@pytest.mark.parametrize(
    ("value", "state"),
    [
        (0.75, ObjectiveState("Met")),
        (0.70, ObjectiveState("Met")),
        (0.68, ObjectiveState("AtRisk", "P2")),
        (0.62, ObjectiveState("Breached", "P2")),
        (0.55, ObjectiveState("Breached", "P1")),
        (0.40, ObjectiveState("Breached", "P0")),
        (None, ObjectiveState("NoData")),
        (float("nan"), ObjectiveState("NoData")),
    ],
)
def test_runbook_states(value: float | None, state: ObjectiveState) -> None:
    assert objective_state(RUNBOOK, value) == state


def test_lower_is_better_states() -> None:
    latency = Objective(
        name="l",
        metric="latency_p95",
        target=0.2,
        breach=0.5,
        direction="lowerIsBetter",
        severity_tiers=(SeverityTier("P1", above=1.0), SeverityTier("P2", above=0.5)),
    )
    assert objective_state(latency, 0.1) == ObjectiveState("Met")
    assert objective_state(latency, 0.3) == ObjectiveState("AtRisk")
    assert objective_state(latency, 0.7) == ObjectiveState("Breached", "P2")
    assert objective_state(latency, 1.5) == ObjectiveState("Breached", "P1")

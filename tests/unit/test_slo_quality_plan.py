"""The quality plan of one RankingModel: rollback after promotion as the planner expects it,
the ladder outside the window, nothing during a rollout or without data, Events on changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.operator.core.conditions import get_condition
from rankops.operator.core.slo.evaluate import ModelEvaluation, ObjectiveResult
from rankops.operator.core.slo.policy import PostPromotion, RemediationPolicy
from rankops.operator.core.slo.quality import ModelView, plan_quality
from rankops.sandbox.patching import json_merge_patch

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RemediationPolicy(settle_s=30, cooldown_s=600, max_attempts=1)
PP = PostPromotion(window_s=3600)


def ev(version: str, value: float | None, state: str, severity: str | None = None) -> ModelEvaluation:
    return ModelEvaluation("search", version, (ObjectiveResult("ndcg", value, 100.0, state, severity),))  # type: ignore[arg-type]


def apply(status: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The patch as the API server merges it (RFC 7386)."""
    merged: dict[str, Any] = json_merge_patch(status, patch)
    return merged


def test_breach_after_promotion_rolls_back_like_a_failed_canary() -> None:
    status: dict[str, Any] = {
        "phase": "Healthy",
        "stableVersion": "1.0.0",
        "stableUri": "file:///m/1",
        "canaryRevision": 1,
    }
    model = ModelView(generation=1, spec_version="1.0.0", status=status, post_promotion=PP)
    first = plan_quality(model, ev("1.0.0", 0.8, "Met"), "q", POLICY, T0)
    assert first.action is None and not first.rolled_back
    assert [e.reason for e in first.events] == ["QualityMet"]
    status = apply(status, first.status_patch)
    assert status["quality"]["stable"] == {"version": "1.0.0", "uri": "file:///m/1", "healthy": True}
    cond = get_condition(status["conditions"], "QualityMet")
    assert cond is not None and (cond["status"], cond["observedGeneration"]) == ("True", 1)

    # the planner promotes 1.1.0 (spec changed, generation 2)
    promoted_at = T0 + timedelta(minutes=10)
    status = {
        **status,
        "stableVersion": "1.1.0",
        "stableUri": "file:///m/2",
        "canaryRevision": 2,
        "history": [
            {
                "revision": 2,
                "version": "1.1.0",
                "outcome": "Promoted",
                "reason": "AnalysisPassed",
                "at": "2026-03-01T12:10:00Z",
            }
        ],
    }
    model = ModelView(generation=2, spec_version="1.1.0", status=status, post_promotion=PP)
    later = promoted_at + timedelta(minutes=5)
    plan = plan_quality(model, ev("1.1.0", 0.41, "Breached", "P0"), "q", POLICY, later)
    assert plan.rolled_back and plan.action is None
    p = plan.status_patch
    assert (p["phase"], p["stableVersion"], p["stableUri"], p["abortedVersion"]) == (
        "RolledBack",
        "1.0.0",
        "file:///m/1",
        "1.1.0",
    )
    assert p["history"][-1] == {
        "revision": 2,
        "version": "1.1.0",
        "outcome": "RolledBack",
        "reason": "PostPromotionBreach",
        "at": "2026-03-01T12:15:00Z",
        "uri": "file:///m/2",  # the artifact rolled back from
    }
    rollback = plan.quality["rollback"]
    assert (
        rollback["version"] == "1.0.0" and rollback["fromVersion"] == "1.1.0" and rollback["generation"] == 2
    )
    assert "ndcg Breached at 0.41 (P0)" in p["message"] and "5m after promoting 1.1.0" in p["message"]
    assert plan.quality["promotion"]["time"] == "2026-03-01T12:10:00Z"  # from history, not first sight
    assert [e.reason for e in plan.events] == ["QualityBreached", "RolledBack"]
    assert [n[0] for n in plan.notifications] == ["Breach", "Rollback"]
    cond = get_condition(p["conditions"], "QualityMet")
    assert cond is not None and (cond["status"], cond["reason"]) == ("False", "PostPromotionBreach")

    # next evaluation: the planner kept RolledBack, stable serves 1.0.0 again; no more actions
    status = apply(status, p)
    model = ModelView(generation=2, spec_version="1.1.0", status=status, post_promotion=PP)
    again = plan_quality(model, ev("1.0.0", 0.8, "Met"), "q", POLICY, later + timedelta(minutes=1))
    assert again.action is None and not again.rolled_back and "phase" not in again.status_patch
    assert again.quality["rollback"] == rollback and "rollback" not in again.status_patch["quality"]
    # the spec moves on (1.2.0): the rollback is over
    model = ModelView(
        generation=3, spec_version="1.2.0", status={**status, "phase": "Healthy"}, post_promotion=PP
    )
    over = plan_quality(model, ev("1.0.0", 0.8, "Met"), "q", POLICY, later)
    assert "rollback" not in over.quality
    assert over.status_patch["quality"]["rollback"] is None  # a merge patch deletes it on the server
    assert "rollback" not in apply(status, over.status_patch)["quality"]


def test_breach_outside_the_window_climbs_the_ladder() -> None:
    status: dict[str, Any] = {"phase": "Healthy", "stableVersion": "1.0.0", "stableUri": "u1"}
    model = ModelView(1, "1.0.0", status, post_promotion=PP, retrain_allowed=True)
    plan = plan_quality(model, ev("1.0.0", 0.55, "Breached", "P1"), "q", POLICY, T0)
    assert plan.action == "InvalidateCaches" and not plan.rolled_back
    assert "phase" not in plan.status_patch  # the ladder never touches the rollout's fields
    outcome = plan.with_outcome("2/2 pods invalidated")
    assert outcome["quality"]["remediation"]["steps"][-1]["outcome"] == "2/2 pods invalidated"
    status = apply(apply(status, plan.status_patch), outcome)
    model = ModelView(1, "1.0.0", status, post_promotion=PP, retrain_allowed=True)
    plan = plan_quality(model, ev("1.0.0", 0.55, "Breached", "P1"), "q", POLICY, T0 + timedelta(seconds=31))
    assert plan.action == "RollingRestart" and plan.quality["restartedAt"] == "2026-03-01T12:00:31Z"
    status = apply(status, plan.status_patch)
    model = ModelView(1, "1.0.0", status, post_promotion=PP, retrain_allowed=True)
    plan = plan_quality(model, ev("1.0.0", 0.55, "Breached", "P1"), "q", POLICY, T0 + timedelta(seconds=62))
    assert plan.action == "RequestRetrain" and plan.quality["retrainRequest"]["version"] == "1.0.0"
    status = apply(status, plan.status_patch)
    model = ModelView(1, "1.0.0", status, post_promotion=PP, retrain_allowed=True)
    quiet = plan_quality(model, ev("1.0.0", 0.55, "Breached", "P1"), "q", POLICY, T0 + timedelta(seconds=70))
    assert quiet.action is None and [e.reason for e in quiet.events] == ["AttemptsExhausted"]
    model = ModelView(1, "1.0.0", apply(status, quiet.status_patch), post_promotion=PP, retrain_allowed=True)
    again = plan_quality(model, ev("1.0.0", 0.55, "Breached", "P1"), "q", POLICY, T0 + timedelta(seconds=80))
    assert again.action is None and again.events == ()  # nothing new: no Event


def test_nothing_acts_during_a_rollout_or_without_data() -> None:
    rolling = ModelView(
        1, "1.1.0", {"phase": "Progressing", "stableVersion": "1.0.0", "canaryVersion": "1.1.0"}, PP
    )
    plan = plan_quality(rolling, ev("1.0.0", 0.4, "Breached", "P0"), "q", POLICY, T0)
    assert plan.action is None and not plan.rolled_back and "remediation" not in plan.quality
    quiet = ModelView(1, "1.0.0", {"phase": "Healthy", "stableVersion": "1.0.0"}, PP)
    plan = plan_quality(quiet, ev("1.0.0", None, "NoData"), "q", POLICY, T0)
    assert plan.action is None and plan.quality["state"] == "NoData"
    cond = get_condition(plan.status_patch["conditions"], "QualityMet")
    assert cond is not None and cond["status"] == "Unknown"


def test_no_rollback_to_a_revision_that_was_not_healthy() -> None:
    status: dict[str, Any] = {"phase": "Healthy", "stableVersion": "1.0.0", "stableUri": "u1"}
    first = plan_quality(
        ModelView(1, "1.0.0", status, PP), ev("1.0.0", 0.4, "Breached", "P2"), "q", POLICY, T0
    )
    status = {**apply(status, first.status_patch), "stableVersion": "1.1.0", "stableUri": "u2"}
    plan = plan_quality(
        ModelView(2, "1.1.0", status, PP), ev("1.1.0", 0.4, "Breached", "P1"), "q", POLICY, T0
    )
    assert not plan.rolled_back and plan.action == "InvalidateCaches"

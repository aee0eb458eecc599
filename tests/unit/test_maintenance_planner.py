"""MaintenanceWindow planner, spec parsing and change freeze (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rankops.operator.core.maintenance.freeze import rollout_freeze
from rankops.operator.core.maintenance.jobs import ModelTarget, job_name
from rankops.operator.core.maintenance.planner import (
    ObservedJob,
    WindowMeta,
    plan_invalid_window,
    plan_window,
)
from rankops.operator.core.maintenance.spec import parse_window_spec
from rankops.operator.core.spec import SpecError

META = WindowMeta("nightly", "prod", "uid-1", generation=3)
MODELS = [
    ModelTarget("ranker", "u1", "img", "1.0.0", "file:///m/1.0.0", drift_endpoints=("http://10.0.0.1:8080",)),
    ModelTarget("other", "u2", "img", "2.0.0", "file:///m/2.0.0"),
]
START = datetime(2026, 6, 1, 2, tzinfo=UTC)


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "schedule": "0 2 * * *",
        "timeZone": "UTC",
        "duration": "2h",
        "tasks": [
            {"name": "backup", "type": "Backup", "backup": {"destination": "file:///b"}},
            {"name": "drift", "type": "DriftCheck"},
        ],
    }
    return {**base, **overrides}


def observed(plan_jobs: list[dict[str, Any]], state: str = "Running", **kw: Any) -> list[ObservedJob]:
    out = []
    for job in plan_jobs:
        labels, ann = job["metadata"]["labels"], job["metadata"]["annotations"]
        out.append(
            ObservedJob(
                job["metadata"]["name"],
                labels["rankops.dev/task"],
                labels["rankops.dev/model"],
                datetime.fromisoformat(ann["rankops.dev/window-start"].replace("Z", "+00:00")),
                datetime.fromisoformat(ann["rankops.dev/window-end"].replace("Z", "+00:00")),
                state,
                **kw,
            )
        )
    return out


def at_start(**overrides: Any) -> tuple[Any, Any]:
    s = parse_window_spec(spec(**overrides))
    status = {"lastScheduleTime": "2026-05-31T02:00:00Z"}
    return s, plan_window(s, status, MODELS, [], START + timedelta(seconds=3), meta=META)


def test_window_start_creates_one_job_per_task_and_model_once() -> None:
    s, plan = at_start()
    names = sorted(j["metadata"]["name"] for j in plan.create)
    # DriftCheck needs a ready pod: "other" has none, so three Jobs and one Skipped run.
    assert len(names) == 3
    assert job_name("nightly", "backup", "ranker", START) in names
    assert plan.status_patch["lastScheduleTime"] == "2026-06-01T02:00:00Z"
    assert plan.status_patch["active"] is True
    runs = {(r["task"], r["model"]): r["result"] for r in plan.status_patch["lastRuns"]}
    assert runs == {
        ("backup", "ranker"): "Running",
        ("backup", "other"): "Running",
        ("drift", "ranker"): "Running",
        ("drift", "other"): "Skipped",
    }
    assert [e.reason for e in plan.events].count("JobCreated") == 3
    # The same reconcile again (status written, Jobs observed): nothing new.
    jobs = observed(plan.create)
    again = plan_window(s, plan.status_patch, MODELS, jobs, START + timedelta(seconds=10), meta=META)
    assert again.create == [] and not any(e.reason == "JobCreated" for e in again.events)
    # A second replica that did not see the status write yet computes the same names.
    racing = plan_window(s, {"lastScheduleTime": "2026-05-31T02:00:00Z"}, MODELS, jobs, START, meta=META)
    assert racing.create == []


def test_completion_and_failures_are_tracked_with_events_once() -> None:
    s, plan = at_start()
    done = START + timedelta(minutes=5)
    jobs = observed(
        [j for j in plan.create if "backup" in j["metadata"]["name"]], "Succeeded", completion_time=done
    )
    drift = observed(
        [j for j in plan.create if "drift" in j["metadata"]["name"]],
        "Failed",
        failure="CheckFailed",
        message="drift in oov_fraction",
    )
    after = plan_window(s, plan.status_patch, MODELS, jobs + drift, done, meta=META)
    runs = {(r["task"], r["model"]): r for r in after.status_patch["lastRuns"]}
    assert runs[("backup", "ranker")]["result"] == "Succeeded"
    assert runs[("backup", "ranker")]["completionTime"] == "2026-06-01T02:05:00Z"
    assert runs[("drift", "ranker")]["reason"] == "DriftDetected"
    reasons = sorted(e.reason for e in after.events)
    assert reasons == ["DriftDetected", "TaskSucceeded", "TaskSucceeded"]
    drift_event = next(e for e in after.events if e.reason == "DriftDetected")
    assert drift_event.type == "Warning" and drift_event.model == "ranker"
    cond = {c["type"]: c for c in after.status_patch["conditions"]}
    assert cond["TasksSucceeded"]["status"] == "False" and cond["TasksSucceeded"]["reason"] == "DriftDetected"
    again = plan_window(s, after.status_patch, MODELS, jobs + drift, done + timedelta(minutes=1), meta=META)
    assert not any(e.reason in ("TaskSucceeded", "DriftDetected") for e in again.events)


def test_a_drift_check_without_enough_data_is_inconclusive_not_drift() -> None:
    s, plan = at_start()
    done = START + timedelta(minutes=5)
    drift = observed(
        [j for j in plan.create if "drift" in j["metadata"]["name"]],
        "Failed",
        failure="NoVerdict",
        message="no verdict: 168 live queries, fewer than --min-samples 200",
    )
    after = plan_window(s, plan.status_patch, MODELS, drift, done, meta=META)
    runs = {(r["task"], r["model"]): r for r in after.status_patch["lastRuns"]}
    assert runs[("drift", "ranker")]["result"] == "Failed"
    assert runs[("drift", "ranker")]["reason"] == "DriftInconclusive"
    assert not any(e.reason == "DriftDetected" for e in after.events)


@pytest.mark.parametrize("policy", ["Forbid", "Allow", "Replace"])
def test_concurrency_policy_when_the_previous_job_still_runs(policy: str) -> None:
    s, plan = at_start(concurrencyPolicy=policy, duration="30h")  # windows overlap
    jobs = observed(plan.create)
    next_start = START + timedelta(days=1)
    nxt = plan_window(s, plan.status_patch, MODELS, jobs, next_start + timedelta(seconds=1), meta=META)
    runs = {(r["task"], r["model"]): r for r in nxt.status_patch["lastRuns"]}
    if policy == "Forbid":
        assert nxt.create == [] and nxt.delete == []
        assert runs[("backup", "ranker")]["result"] == "Skipped"
        assert "concurrencyPolicy Forbid" in runs[("backup", "ranker")]["message"]
    elif policy == "Allow":
        assert len(nxt.create) == 3 and nxt.delete == []
    else:
        assert len(nxt.create) == 3 and sorted(nxt.delete) == sorted(j.name for j in jobs)
        assert any(e.reason == "JobReplaced" for e in nxt.events)


def test_a_task_that_outlives_the_window_is_reported_once() -> None:
    s, plan = at_start()
    jobs = observed(plan.create)
    late = START + timedelta(hours=2, minutes=1)
    over = plan_window(s, plan.status_patch, MODELS, jobs, late, meta=META)
    assert [e.reason for e in over.events].count("TaskOverran") == 3
    cond = {c["type"]: c for c in over.status_patch["conditions"]}
    assert cond["TaskOverran"]["status"] == "True" and over.status_patch["active"] is False
    again = plan_window(s, over.status_patch, MODELS, jobs, late + timedelta(minutes=1), meta=META)
    assert not any(e.reason == "TaskOverran" for e in again.events)


def test_missed_windows_past_the_starting_deadline() -> None:
    s = parse_window_spec(spec(startingDeadlineSeconds=300))
    status = {"lastScheduleTime": "2026-05-29T02:00:00Z"}
    plan = plan_window(s, status, MODELS, [], START + timedelta(minutes=20), meta=META)
    assert plan.create == []
    assert plan.status_patch["missedWindows"] == 3
    assert plan.status_patch["lastScheduleTime"] == "2026-06-01T02:00:00Z"
    assert any(e.reason == "WindowMissed" and e.type == "Warning" for e in plan.events)
    # Within the deadline the open window runs and only the older starts are missed.
    in_time = plan_window(s, status, MODELS, [], START + timedelta(minutes=4), meta=META)
    assert len(in_time.create) == 3 and in_time.status_patch["missedWindows"] == 2


def test_suspend_starts_nothing_and_does_not_count_missed() -> None:
    s = parse_window_spec(spec(suspend=True))
    plan = plan_window(s, {"lastScheduleTime": "2026-05-30T02:00:00Z"}, MODELS, [], START, meta=META)
    assert plan.create == [] and plan.status_patch["active"] is False
    assert plan.status_patch["missedWindows"] == 0
    assert plan.status_patch["lastScheduleTime"] == "2026-06-01T02:00:00Z"


def test_requeue_at_the_next_window_edge() -> None:
    s = parse_window_spec(spec())
    idle = plan_window(
        s, {"lastScheduleTime": "2026-06-01T02:00:00Z"}, MODELS, [], START + timedelta(hours=5), meta=META
    )
    assert idle.requeue_after == pytest.approx(timedelta(hours=19).total_seconds())
    assert idle.status_patch["nextWindow"] == "2026-06-02T02:00:00Z"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schedule": "61 * * * *"}, "spec.schedule"),
        ({"timeZone": "Europe/Atlantis"}, "spec.timeZone"),
        ({"duration": "forever"}, "spec.duration"),
        ({"tasks": [{"name": "b", "type": "Backup"}]}, "spec.tasks[0].backup"),
        ({"tasks": [{"name": "e", "type": "Evaluate"}]}, "spec.tasks[0].evaluate.data"),
        ({"tasks": [{"name": "r", "type": "RestoreTest"}]}, "spec.tasks[0].restoreTest"),
        ({"tasks": [{"name": "x", "type": "Vacuum"}]}, "spec.tasks[0].type"),
        ({"schedule": "0 0 31 2 *"}, "spec.schedule"),
        ({"startingDeadlineSeconds": -1}, "spec.startingDeadlineSeconds"),
    ],
)
def test_invalid_specs_name_the_field(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        parse_window_spec(spec(**overrides))
    assert err.value.path == field
    plan = plan_invalid_window({}, err.value, START, generation=2)
    (cond,) = plan.status_patch["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == ("Ready", "False", "InvalidSpec")
    assert field in cond["message"] and plan.events[0].reason == "InvalidSpec"
    assert plan_invalid_window(plan.status_patch, err.value, START).events == []


def test_change_freeze_outside_only_in_window_windows() -> None:
    gated = parse_window_spec(spec(rolloutPolicy="OnlyInWindow", selector={"matchLabels": {"tier": "prod"}}))
    freeze = rollout_freeze([("nightly", gated)], {"tier": "prod"}, START + timedelta(hours=3))
    assert (
        not freeze.allowed and freeze.reason == "OutsideWindow" and "2026-06-02T02:00:00Z" in freeze.message
    )
    assert rollout_freeze([("nightly", gated)], {"tier": "prod"}, START + timedelta(minutes=1)).allowed
    assert (
        rollout_freeze([("nightly", gated)], {"tier": "dev"}, START + timedelta(hours=3)).reason == "NoFreeze"
    )
    always = parse_window_spec(spec())
    assert rollout_freeze([("w", always)], {}, START + timedelta(hours=3)).allowed
    suspended = parse_window_spec(spec(rolloutPolicy="OnlyInWindow", suspend=True))
    assert rollout_freeze([("w", suspended)], {}, START + timedelta(hours=3)).allowed


def test_observe_job_reads_state_and_the_exit_code_rule() -> None:
    from rankops.operator.core.maintenance.jobs import JobContext, TaskSpec, build_job
    from rankops.operator.core.maintenance.observed import observe_job

    ctx = JobContext("nightly", "prod", "uid-1", START, START + timedelta(hours=2))
    job = build_job(TaskSpec("drift", "DriftCheck"), MODELS[0], ctx)
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert [r["onExitCodes"]["values"] for r in rules] == [[1], [2], [3]]
    running = observe_job(job)
    assert running is not None and running.state == "Running" and running.window_start == START
    failed = {
        **job,
        "status": {
            "conditions": [
                {
                    "type": "Failed",
                    "status": "True",
                    "reason": "PodFailurePolicy",
                    "message": "Container drift for pod prod/x failed with exit code 1 "
                    "matching FailJob rule at index 0",
                }
            ]
        },
    }
    got = observe_job(failed)
    assert got is not None and got.state == "Failed" and got.failure == "CheckFailed"
    bad = {
        **failed,
        "status": {"conditions": [{**failed["status"]["conditions"][0], "message": "... rule at index 1"}]},
    }
    assert (observe_job(bad) or running).failure == "BadInput"
    too_few = {
        **failed,
        "status": {"conditions": [{**failed["status"]["conditions"][0], "message": "... rule at index 2"}]},
    }
    assert (observe_job(too_few) or running).failure == "NoVerdict"
    done = {
        **job,
        "status": {
            "conditions": [{"type": "Complete", "status": "True"}],
            "completionTime": "2026-06-01T02:03:00Z",
        },
    }
    got = observe_job(done)
    assert (
        got is not None and got.state == "Succeeded" and got.completion_time == START + timedelta(minutes=3)
    )
    assert observe_job({"metadata": {"name": "foreign"}}) is None

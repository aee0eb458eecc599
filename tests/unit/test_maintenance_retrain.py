"""A MaintenanceWindow's Retrain task through both pure planners (the window's and the retrain one).

The window records a request, the retrain planner fires it as its ``MaintenanceWindow`` trigger
(the same Job builder, one-at-a-time rule, gate and candidate as every trigger) and the
window's ``lastRuns`` follow ``status.retrain``. The shells' part (reading the objects) is
played here by building the dicts they read.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from rankops.operator.core.maintenance.jobs import ModelTarget
from rankops.operator.core.maintenance.model_health import model_condition
from rankops.operator.core.maintenance.planner import WindowMeta, WindowPlan, plan_window
from rankops.operator.core.maintenance.spec import parse_window_spec
from rankops.operator.core.retrain import (
    Firing,
    JobOutcome,
    RetrainObserved,
    RetrainPlan,
    RetrainState,
    RetrainTarget,
    RolloutView,
    TriggerInputs,
    plan_retrain,
    request_progress,
    requests_from_windows,
    retrain_job_name,
)
from rankops.operator.core.retrain.state import MAX_WINDOW_FIRINGS
from rankops.operator.core.spec import RankingModelSpec, parse_ranking_model_spec
from rankops.operator.core.timeutil import format_time

META = WindowMeta("nightly", "prod", "uid-w", generation=1)
START = datetime(2026, 6, 1, 2, tzinfo=UTC)  # the window: 02:00-04:00 UTC
OPEN = START + timedelta(seconds=3)
TARGET = RetrainTarget("ranker", "prod", "uid-1", "1.0.0", "file:///models/1.0.0")
TASK = {"name": "retrain", "type": "Retrain", "timeout": "90m", "retrain": {"data": "file:///data/june"}}


def window_spec(**task: Any) -> dict[str, Any]:
    return {"schedule": "0 2 * * *", "timeZone": "UTC", "duration": "2h", "tasks": [{**TASK, **task}]}


def model_spec(*, trainer: bool = True, **triggers: Any) -> RankingModelSpec:
    retrain: dict[str, Any] = {"triggers": triggers}
    if trainer:
        retrain["trainer"] = {
            "data": "file:///data/base",
            "outputUri": "file:///models/candidates",
            "feedbackLog": "file:///feedback",
        }
    return parse_ranking_model_spec(
        {
            "model": {"version": "1.0.0", "uri": "file:///models/1.0.0"},
            "serving": {"image": "rankops/serving:1"},
            "retrain": retrain,
        }
    )


def target(state: RetrainState | None, status: dict[str, Any], name: str = "ranker") -> ModelTarget:
    """The ModelTarget the window's controller builds: what status.retrain says of its requests."""
    progress = ()
    if state is not None:
        starts = {r["windowStart"] for r in status.get("lastRuns") or [] if r["model"] == name}
        found = (request_progress(state, META.name, datetime.fromisoformat(s)) for s in sorted(starts))
        progress = tuple(p for p in found if p is not None)
    return ModelTarget(name, "u", "img", "1.0.0", "file:///m", has_retrain=state is not None,
                       retrain_progress=progress)  # fmt: skip


def window(status: dict[str, Any], state: RetrainState | None, now: datetime, **task: Any) -> WindowPlan:
    """One reconcile of the window; its ``status_patch`` merged over ``status``, as the shell writes it."""
    plan = plan_window(parse_window_spec(window_spec(**task)), status, [target(state, status)], [], now,
                       meta=META)  # fmt: skip
    plan.status_patch = {**status, **plan.status_patch}
    return plan


def window_object(status: dict[str, Any], name: str = "nightly", **task: Any) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": window_spec(**task), "status": status}


def retrain(
    spec: RankingModelSpec, state: RetrainState, windows: list[dict[str, Any]], now: datetime, **kw: Any
) -> RetrainPlan:
    observed = RetrainObserved(
        target=TARGET,
        image="rankops/serving:1",
        rollout=RolloutView(stable_version="1.0.0", phase="Healthy"),
        triggers=TriggerInputs("1.0.0", maintenance=requests_from_windows(windows, "ranker")),
        **kw,
    )
    return plan_retrain(spec, state, observed, now)


def manifest(version: str, passed: bool) -> dict[str, Any]:
    verdict = "passed" if passed else "failed"
    gate = {"verdict": verdict, "reasons": ["NDCG@3 +0.04"], "parent_ndcg@3": 0.7, "candidate_ndcg@3": 0.74,
            "p_value": 0.002, "queries": 120}  # fmt: skip
    return {"version": version, "retrain": {"parent": {"version": "1.0.0"}, "gate": gate, "status": verdict}}


def opened() -> dict[str, Any]:
    return window(
        {"lastScheduleTime": format_time(START - timedelta(days=1))}, RetrainState(), OPEN
    ).status_patch


def only_run(status: dict[str, Any]) -> dict[str, Any]:
    (run,) = status["lastRuns"]
    return dict(run)


def test_a_window_that_opens_requests_a_retrain_and_creates_no_job() -> None:
    s = parse_window_spec(window_spec())
    models = [target(RetrainState(), {}), target(None, {}, name="plain")]  # "plain" has no spec.retrain
    plan = plan_window(s, {"lastScheduleTime": "2026-05-31T02:00:00Z"}, models, [], OPEN, meta=META)
    assert plan.create == [] and plan.retrain_requested == ["ranker"]
    runs = {r["model"]: r for r in plan.status_patch["lastRuns"]}
    assert (runs["ranker"]["result"], runs["ranker"]["windowStart"], runs["ranker"]["jobName"]) == (
        "Requested", "2026-06-01T02:00:00Z", "")  # fmt: skip
    assert runs["plain"]["result"] == "Skipped" and "no spec.retrain" in runs["plain"]["message"]
    reasons = {(e.reason, e.model) for e in plan.events}
    assert ("RetrainRequested", "ranker") in reasons and ("TaskSkipped", "plain") in reasons
    assert plan.requeue_after is not None and plan.requeue_after <= 30.0  # it looks again while requested
    conditions = {c["type"]: c["reason"] for c in plan.status_patch["conditions"]}
    assert conditions["TasksSucceeded"] == "NoRunsYet"


def test_the_request_fires_once_through_the_retrain_machinery_with_the_tasks_overrides() -> None:
    status = opened()
    spec = model_spec()  # no spec.retrain.triggers: the window's task is the configuration
    plan = retrain(spec, RetrainState(), [window_object(status)], OPEN)
    assert plan.job is not None
    name = retrain_job_name("ranker", 1)
    assert plan.job["metadata"]["name"] == name and plan.state.runs == 1
    args = plan.job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--data") + 1] == "file:///data/june"  # the task's data, not the trainer's
    assert plan.job["spec"]["activeDeadlineSeconds"] == 5400  # the task's timeout
    assert plan.job["metadata"]["annotations"]["rankops.dev/triggers"] == "MaintenanceWindow"
    (firing,) = plan.status["triggers"]
    assert (firing["type"], firing["key"], firing["job"]) == (
        "MaintenanceWindow", "nightly@2026-06-01T02:00:00Z", name)  # fmt: skip
    assert [e.reason for e in plan.events] == ["RetrainTriggered", "RetrainStarted"]
    # The window follows: Running with the Job's name.
    running = window(status, plan.state, OPEN + timedelta(minutes=1))
    run = only_run(running.status_patch)
    assert (run["result"], run["jobName"]) == ("Running", name) and "startTime" in run
    # More passes while it runs, and after it ended: the same request never fires again.
    again = retrain(spec, plan.state, [window_object(status)], OPEN, job=JobOutcome("Running"))
    assert again.job is None and again.events == ()
    version = plan.state.run.candidate_version  # type: ignore[union-attr]
    done = retrain(spec, plan.state, [window_object(status)], OPEN + timedelta(minutes=30),
                   job=JobOutcome("Succeeded"), manifest=manifest(version, passed=True))  # fmt: skip
    assert done.job is None and [e.reason for e in done.events] == ["CandidateReady"]
    assert (
        done.status["candidate"]["version"] == version and done.status["candidate"]["action"] == "CommitToGit"
    )
    assert retrain(spec, done.state, [window_object(status)], OPEN + timedelta(hours=1)).job is None
    followed = window(running.status_patch, done.state, OPEN + timedelta(minutes=31))
    run = only_run(followed.status_patch)
    assert (run["result"], run["reason"], run["jobName"]) == ("Succeeded", "CandidateReady", name)
    assert version in run["message"]
    assert [e.reason for e in followed.events] == ["TaskSucceeded"] and followed.events[0].model is None
    assert model_condition(followed.status_patch["lastRuns"], "ranker") == (
        "True", "ChoresSucceeded", "last runs succeeded: retrain")  # fmt: skip
    # Nothing changes afterwards, and no second Event.
    later = window(followed.status_patch, done.state, OPEN + timedelta(minutes=40))
    assert only_run(later.status_patch) == run and later.events == []


def test_a_rejected_candidate_fails_the_task_with_the_retrain_controllers_reason() -> None:
    status = opened()
    spec = model_spec()
    started = retrain(spec, RetrainState(), [window_object(status)], OPEN)
    version = started.state.run.candidate_version  # type: ignore[union-attr]
    gate_failed = JobOutcome("Failed", failure="CheckFailed", message="rule at index 0")
    done = retrain(spec, started.state, [], OPEN, job=gate_failed, manifest=manifest(version, passed=False))
    plan = window(status, done.state, OPEN + timedelta(minutes=30))
    run = only_run(plan.status_patch)
    assert (run["result"], run["reason"]) == ("Failed", "CandidateRejected")
    conditions = {c["type"]: (c["status"], c["reason"]) for c in plan.status_patch["conditions"]}
    assert conditions["TasksSucceeded"] == ("False", "CandidateRejected")
    assert model_condition(plan.status_patch["lastRuns"], "ranker")[:2] == ("False", "CandidateRejected")  # type: ignore[index]


def test_a_request_that_waits_for_another_retrain_fires_when_it_ends_even_after_the_window() -> None:
    status = opened()
    spec = model_spec(schedule="0 1 * * *")
    scheduled = RetrainState(schedule_anchor=START - timedelta(days=1))
    # The schedule fired at 01:00 and its Job still runs when the window opens at 02:00.
    busy = retrain(spec, scheduled, [], START - timedelta(hours=1) + timedelta(seconds=1))
    assert busy.job is not None and busy.state.run.triggers == ("Schedule",)  # type: ignore[union-attr]
    held = retrain(spec, busy.state, [window_object(status)], OPEN, job=JobOutcome("Running"))
    assert held.job is None and held.events == ()
    after_close = START + timedelta(hours=2, minutes=5)
    plan = window(status, held.state, after_close)
    run = only_run(plan.status_patch)
    assert run["result"] == "Requested" and run["jobName"] == ""
    assert "window closed at 2026-06-01T04:00:00Z" in run["message"]
    assert f"waiting: retrain Job {busy.job['metadata']['name']} (Schedule)" in run["message"]
    # The scheduled retrain ends (its gate failed); the window's request fires now.
    version = busy.state.run.candidate_version  # type: ignore[union-attr]
    gate_failed = JobOutcome("Failed", failure="CheckFailed")
    ended = retrain(spec, held.state, [window_object(plan.status_patch)], after_close,
                    job=gate_failed, manifest=manifest(version, False))  # fmt: skip
    assert ended.job is not None and ended.job["metadata"]["name"] == retrain_job_name("ranker", 2)
    assert ended.state.run.triggers == ("MaintenanceWindow",)  # type: ignore[union-attr]
    # The window shows it running, past its end (overran), then its own outcome.
    late = window(plan.status_patch, ended.state, after_close + timedelta(seconds=5))
    run = only_run(late.status_patch)
    assert (run["result"], run["jobName"], run.get("overran")) == (
        "Running",
        retrain_job_name("ranker", 2),
        True,
    )
    assert [e.reason for e in late.events] == ["TaskOverran"]


def test_a_model_whose_trainer_cannot_run_records_the_firing_and_the_window_says_why() -> None:
    status = opened()
    spec = model_spec(trainer=False)
    plan = retrain(spec, RetrainState(), [window_object(status)], OPEN)
    assert plan.job is None and [e.reason for e in plan.events] == ["RetrainNotConfigured"]
    assert "not run" in plan.status["triggers"][0]["message"]
    assert retrain(spec, plan.state, [window_object(status)], OPEN).events == ()  # fired once
    followed = window(status, plan.state, OPEN + timedelta(seconds=5))
    run = only_run(followed.status_patch)
    assert (run["result"], run["reason"]) == ("Failed", "RetrainNotConfigured")
    assert "needs outputUri, feedbackLog" in run["message"]  # data: the task gives it
    assert [e.reason for e in followed.events] == ["RetrainNotConfigured"]
    again = window(followed.status_patch, plan.state, OPEN + timedelta(seconds=9))
    assert again.events == [] and only_run(again.status_patch) == run


def test_two_windows_share_one_job_and_each_start_of_a_window_fires_once() -> None:
    spec = model_spec()
    status = opened()
    other = {**status, "lastRuns": [{**status["lastRuns"][0], "windowStart": "2026-06-01T01:30:00Z"}]}
    windows = [window_object(status), window_object(other, name="weekly")]
    plan = retrain(spec, RetrainState(), windows, OPEN)
    assert plan.job is not None and plan.state.runs == 1
    assert [(f["type"], f["key"]) for f in plan.status["triggers"]] == [
        ("MaintenanceWindow", "nightly@2026-06-01T02:00:00Z"),
        ("MaintenanceWindow", "weekly@2026-06-01T01:30:00Z"),
    ]
    assert plan.job["metadata"]["annotations"]["rankops.dev/triggers"] == "MaintenanceWindow"
    assert RetrainState.from_status({"retrain": plan.status}).fired == plan.state.fired  # as stored
    done = dataclasses.replace(plan.state, run=dataclasses.replace(plan.state.run, state="Succeeded"))  # type: ignore[arg-type]
    assert retrain(spec, done, windows, OPEN + timedelta(hours=1)).job is None
    # The next night's start of "nightly" fires again; "weekly" (unchanged) does not.
    tomorrow = {**status, "lastRuns": [{**status["lastRuns"][0], "windowStart": "2026-06-02T02:00:00Z"}]}
    nxt = retrain(spec, done, [window_object(tomorrow), windows[1]], OPEN + timedelta(days=1))
    assert nxt.job is not None
    assert [f.key for f in nxt.state.fired if f.job == nxt.job["metadata"]["name"]] == [
        "nightly@2026-06-02T02:00:00Z"
    ]


def test_the_firings_of_many_windows_stay_within_the_crds_bound() -> None:
    state = RetrainState()
    for i in range(MAX_WINDOW_FIRINGS + 5):
        start = START + timedelta(minutes=i)
        state = state.with_firings((Firing("MaintenanceWindow", f"w{i}@{format_time(start)}", "m"),))
    state = state.with_firings((Firing("Drift", "job-1", "drift"),))
    windows = [f.window for f in state.fired if f.type == "MaintenanceWindow"]
    assert (
        len(windows) == MAX_WINDOW_FIRINGS and "w0" not in windows and f"w{MAX_WINDOW_FIRINGS + 4}" in windows
    )
    assert state.last_key("Drift") == "job-1" and len(state.fired) == MAX_WINDOW_FIRINGS + 1


def test_a_window_whose_spec_no_longer_parses_asks_for_nothing() -> None:
    status = opened()
    broken = window_object(status)
    broken["spec"]["timeZone"] = "Mars/Olympus"
    assert requests_from_windows([broken], "ranker") == ()
    assert len(requests_from_windows([window_object(status)], "ranker")) == 1
    assert requests_from_windows([window_object(status)], "other") == ()

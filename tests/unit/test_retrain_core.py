"""The pure continuous-learning core: triggers, the retrain Job, promotion of a candidate."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.operator.core.diff import merge_patch_between
from rankops.operator.core.retrain import (
    DriftVerdict,
    JobOutcome,
    NewData,
    QualityRequest,
    RetrainObserved,
    RetrainState,
    RetrainTarget,
    RolloutView,
    TriggerInputs,
    candidate_version,
    drift_from_windows,
    effective_spec,
    fire,
    plan_retrain,
    quality_request_from_status,
    retrain_job_name,
    served_condition,
)
from rankops.operator.core.spec import RankingModelSpec, parse_ranking_model_spec
from rankops.operator.core.timeutil import format_time

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
TARGET = RetrainTarget("ranker", "default", "uid-1", "1.0.0", "file:///models/1.0.0")


def spec(mode: str = "Manual", **triggers: Any) -> RankingModelSpec:
    return parse_ranking_model_spec(
        {
            "model": {"version": "1.0.0", "uri": "file:///models/1.0.0"},
            "serving": {"image": "rankops/serving:1"},
            "retrain": {
                "triggers": triggers,
                "trainer": {
                    "data": "file:///data/base",
                    "outputUri": "file:///models/candidates",
                    "feedbackLog": "file:///feedback",
                    "template": {
                        "metadata": {"labels": {"team": "search"}},
                        "spec": {
                            "activeDeadlineSeconds": 3600,
                            "template": {
                                "spec": {
                                    "containers": [
                                        {"name": "trainer", "resources": {"limits": {"cpu": "2"}}}
                                    ],
                                    "nodeSelector": {"pool": "cpu"},
                                }
                            },
                        },
                    },
                },
                "promotionGate": {"mode": mode, "minImprovement": 0.01},
            },
        }
    )


def observed(
    rollout: RolloutView | None = None, job: JobOutcome | None = None, manifest: Any = None, **inputs: Any
) -> RetrainObserved:
    return RetrainObserved(
        target=TARGET,
        image="rankops/serving:1",
        rollout=rollout or RolloutView(stable_version="1.0.0", phase="Healthy"),
        triggers=TriggerInputs(parent_version="1.0.0", **inputs),
        job=job,
        manifest=manifest,
    )


def manifest(version: str, passed: bool = True) -> dict[str, Any]:
    return {
        "version": version,
        "retrain": {
            "parent": {"version": "1.0.0"},
            "feedback_window": {"used": 420},
            "gate": {
                "verdict": "passed" if passed else "failed",
                "reasons": ["NDCG@3 improved by +0.0400 > margin 0.01 with p = 0.002 < alpha 0.05"],
                "parent_ndcg@3": 0.70,
                "candidate_ndcg@3": 0.74,
                "p_value": 0.002,
                "queries": 120,
            },
            "status": "passed" if passed else "failed",
        },
    }


# ---------------------------------------------------------------------------------- triggers


def test_schedule_anchors_on_first_sight_then_fires_once_per_cron_time_in_its_time_zone() -> None:
    triggers = spec(schedule="0 9 * * *", timeZone="Europe/Berlin").retrain.triggers  # type: ignore[union-attr]
    first = fire(triggers, RetrainState(), TriggerInputs("1.0.0"), T0)
    assert first.firings == () and first.schedule_anchor == T0  # no firing for times before it existed
    assert first.next_scheduled == datetime(2026, 1, 16, 8, 0, tzinfo=UTC)  # 09:00 CET
    state = RetrainState(schedule_anchor=T0)
    # The operator was down for three days: the latest missed time fires, once.
    later = T0 + timedelta(days=3)
    check = fire(triggers, state, TriggerInputs("1.0.0"), later)
    assert [(f.type, f.key) for f in check.firings] == [("Schedule", "2026-01-18T08:00:00Z")]
    again = fire(
        triggers,
        dataclasses.replace(state, schedule_anchor=check.schedule_anchor),
        TriggerInputs("1.0.0"),
        later,
    )
    assert again.firings == ()
    # Summer time: 09:00 CEST is 07:00 UTC.
    july = RetrainState(schedule_anchor=datetime(2026, 7, 1, tzinfo=UTC))
    summer = fire(triggers, july, TriggerInputs("1.0.0"), datetime(2026, 7, 1, 7, 0, 1, tzinfo=UTC))
    assert [f.key for f in summer.firings] == ["2026-07-01T07:00:00Z"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=6 * 3600), min_size=1, max_size=12))
def test_schedule_never_fires_a_cron_time_twice_nor_one_in_the_future(steps: list[int]) -> None:
    triggers = spec(schedule="*/20 * * * *").retrain.triggers  # type: ignore[union-attr]
    state, now, keys = RetrainState(), T0, []
    for step in steps:
        now += timedelta(seconds=step)
        check = fire(triggers, state, TriggerInputs("1.0.0"), now)
        state = dataclasses.replace(state.with_firings(check.firings), schedule_anchor=check.schedule_anchor)
        keys += [f.key for f in check.firings]
        assert all(f.key <= format_time(now) for f in check.firings)
        assert check.next_scheduled is not None and check.next_scheduled > now
    assert keys == sorted(set(keys))


def test_drift_and_quality_requests_fire_once_each_and_only_when_configured() -> None:
    drift = DriftVerdict("chores-drift-ranker-ab12", "chores", "psi 0.41 on query_length")
    request = QualityRequest("2026-01-15T11:00:00Z", "1.0.0", "ndcg 0.52 < breach 0.65")
    inputs = TriggerInputs("1.0.0", drift=drift, quality_request=request)
    on = spec(drift={}, relativeQualityDrop={}).retrain.triggers  # type: ignore[union-attr]
    check = fire(on, RetrainState(), inputs, T0)
    assert [(f.type, f.key) for f in check.firings] == [
        ("Drift", "chores-drift-ranker-ab12"),
        ("QualityDrop", "2026-01-15T11:00:00Z"),
    ]
    assert "psi 0.41" in check.firings[0].message
    assert fire(on, RetrainState().with_firings(check.firings), inputs, T0).firings == ()
    off = spec(schedule="@daily").retrain.triggers  # type: ignore[union-attr]
    assert fire(off, RetrainState(schedule_anchor=T0), inputs, T0).firings == ()
    # A request about another version than the one served is stale.
    stale = TriggerInputs("1.1.0", quality_request=request)
    assert fire(on, RetrainState(), stale, T0).firings == ()


@settings(max_examples=100, deadline=None)
@given(
    st.integers(min_value=0, max_value=5000),
    st.integers(min_value=1, max_value=2000),
    st.sampled_from([0.05, 0.2, 0.5, 1.0]),
)
def test_new_data_fires_exactly_when_the_fraction_is_reached(
    records: int, base: int, fraction: float
) -> None:
    triggers = spec(newData={"fraction": fraction}).retrain.triggers  # type: ignore[union-attr]
    check = fire(triggers, RetrainState(), TriggerInputs("1.0.0", new_data=NewData(records, base)), T0)
    assert bool(check.firings) == (records / base >= fraction - 1e-9)
    if check.firings:
        fired = RetrainState().with_firings(check.firings)
        same = fire(triggers, fired, TriggerInputs("1.0.0", new_data=NewData(records, base)), T0)
        assert same.firings == ()  # the same multiple of the fraction never fires twice
        more = NewData(records + base, base)  # one more whole base set of feedback: a higher multiple
        assert fire(triggers, fired, TriggerInputs("1.0.0", new_data=more), T0).firings


def test_drift_and_quality_inputs_are_read_from_the_status_their_controllers_write() -> None:
    runs = [
        {"task": "drift", "type": "DriftCheck", "model": "ranker", "jobName": "w-drift-1", "result": "Failed",
         "reason": "DriftDetected", "completionTime": "2026-01-14T03:05:00Z", "message": "psi 0.3"},
        {"task": "drift", "type": "DriftCheck", "model": "other", "jobName": "w-drift-2", "result": "Failed",
         "reason": "DriftDetected", "completionTime": "2026-01-15T03:05:00Z"},
        {"task": "backup", "type": "Backup", "model": "ranker", "jobName": "w-backup-1", "result": "Failed",
         "reason": "BackupFailed", "completionTime": "2026-01-15T03:05:00Z"},
    ]  # fmt: skip
    later = {"metadata": {"name": "nightly"}, "status": {"lastRuns": [
        {"task": "drift", "type": "DriftCheck", "model": "ranker", "jobName": "n-drift-9", "result": "Failed",
         "reason": "DriftDetected", "completionTime": "2026-01-15T01:00:00Z"}]}}  # fmt: skip
    windows = [{"metadata": {"name": "weekly"}, "status": {"lastRuns": runs}}, later]
    assert drift_from_windows(windows, "ranker") == DriftVerdict("n-drift-9", "nightly", "")
    assert drift_from_windows(windows[:1], "ranker") == DriftVerdict("w-drift-1", "weekly", "psi 0.3")
    assert drift_from_windows(windows, "absent") is None
    status = {
        "quality": {"retrainRequest": {"time": "2026-01-15T11:00:00Z", "version": "1.0.0", "reason": "r"}}
    }
    assert quality_request_from_status(status) == QualityRequest("2026-01-15T11:00:00Z", "1.0.0", "r")
    assert quality_request_from_status({"quality": {}}) is None


def test_default_new_data_fraction_is_the_plans_twenty_percent() -> None:
    triggers = spec(newData={}).retrain.triggers  # type: ignore[union-attr]
    assert triggers.new_data is not None and triggers.new_data.fraction == 0.2
    assert not fire(triggers, RetrainState(), TriggerInputs("1.0.0", new_data=NewData(199, 1000)), T0).firings
    assert fire(triggers, RetrainState(), TriggerInputs("1.0.0", new_data=NewData(200, 1000)), T0).firings


# ---------------------------------------------------------------------------------- the Job


def test_a_firing_asks_for_one_deterministic_job_and_none_while_it_runs() -> None:
    s = spec(drift={})
    drift = DriftVerdict("chores-drift-ranker-ab12", "chores")
    plan = plan_retrain(s, RetrainState(), observed(drift=drift), T0)
    assert plan.job is not None
    name = retrain_job_name("ranker", 1)
    assert plan.job["metadata"]["name"] == name == plan.state.run.job  # type: ignore[union-attr]
    assert plan.state.runs == 1 and plan.state.running
    assert [e.reason for e in plan.events] == ["RetrainTriggered", "RetrainStarted"]
    assert plan.status["triggers"][0]["job"] == name
    assert plan.status["history"][-1]["outcome"] == "Started"
    pod = plan.job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    version = candidate_version("1.0.0", 1)
    assert version == "1.0.1-retrain.1"
    assert container["command"] == ["rankops"]
    assert container["args"] == [
        "retrain", "--model", "file:///models/1.0.0", "--data", "file:///data/base",
        "--feedback-log", "file:///feedback", "--out", f"file:///models/candidates/{version}",
        "--version", version, "--margin", "0.01",
    ]  # fmt: skip
    # The template's container, pod and Job fields are kept; the pod stays "restricted".
    assert container["name"] == "trainer" and container["resources"] == {"limits": {"cpu": "2"}}
    assert container["image"] == "rankops/serving:1"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["nodeSelector"] == {"pool": "cpu"} and pod["securityContext"]["runAsNonRoot"] is True
    assert plan.job["spec"]["activeDeadlineSeconds"] == 3600 and plan.job["spec"]["backoffLimit"] == 0
    assert plan.job["metadata"]["labels"]["team"] == "search"
    assert plan.job["metadata"]["ownerReferences"][0]["kind"] == "RankingModel"
    # The same firing again while the Job runs: nothing new, not even a second record.
    running = plan_retrain(s, plan.state, observed(drift=DriftVerdict("next-drift", "chores"),
                                                   job=JobOutcome("Running")), T0)  # fmt: skip
    assert running.job is None and running.events == () and running.state.runs == 1


def test_an_unfinished_job_not_in_status_holds_back_a_second_one() -> None:
    drift = DriftVerdict("d1", "w")
    lost = dataclasses.replace(observed(drift=drift), active_jobs=(retrain_job_name("ranker", 1),))
    plan = plan_retrain(spec(drift={}), RetrainState(), lost, T0)
    assert plan.job is None and plan.events == () and "triggers" not in plan.status  # the firing waits
    assert plan_retrain(spec(drift={}), plan.state, observed(drift=drift), T0).job is not None


def test_a_spec_that_cannot_run_a_retrain_records_the_firing_with_the_reason() -> None:
    raw = {
        "model": {"version": "1.0.0", "uri": "file:///m"},
        "serving": {"image": "img"},
        "retrain": {"triggers": {"drift": {}}},
    }
    plan = plan_retrain(
        parse_ranking_model_spec(raw), RetrainState(), observed(drift=DriftVerdict("d1", "w")), T0
    )
    assert plan.job is None and plan.state.runs == 0
    assert [e.reason for e in plan.events] == ["RetrainNotConfigured"]
    assert "data, outputUri, feedbackLog" in plan.events[0].message
    assert "not run" in plan.status["triggers"][0]["message"]


# ---------------------------------------------------------------------------------- promotion


def _started(mode: str) -> tuple[RankingModelSpec, RetrainState]:
    s = spec(mode, drift={})
    return s, plan_retrain(s, RetrainState(), observed(drift=DriftVerdict("d1", "w")), T0).state


def test_manual_mode_names_the_candidate_to_commit_to_git() -> None:
    s, state = _started("Manual")
    version = state.run.candidate_version  # type: ignore[union-attr]
    done = JobOutcome("Succeeded", completion_time=T0 + timedelta(minutes=5))
    plan = plan_retrain(s, state, observed(job=done, manifest=manifest(version)), T0 + timedelta(minutes=6))
    candidate = plan.status["candidate"]
    assert candidate["version"] == version and candidate["gate"] == "Passed"
    assert candidate["uri"] == f"file:///models/candidates/{version}"
    assert candidate["action"] == "CommitToGit" and candidate["figures"]["candidate_ndcg@3"] == 0.74
    assert candidate["feedbackRecords"] == 420
    (event,) = plan.events
    assert event.reason == "CandidateReady"
    assert version in event.message and candidate["uri"] in event.message and "Git" in event.message
    assert plan.status["run"]["state"] == "Succeeded" and plan.status["history"][-1]["outcome"] == "Passed"
    assert "promotion" not in plan.status and effective_spec(s, plan.state) == s
    assert plan.status["servedBy"] == "spec"


def test_a_failed_gate_is_recorded_with_its_reasons_and_proposes_nothing() -> None:
    s, state = _started("Automatic")
    version = state.run.candidate_version  # type: ignore[union-attr]
    failed = JobOutcome("Failed", failure="CheckFailed", message="rule at index 0")
    plan = plan_retrain(s, state, observed(job=failed, manifest=manifest(version, passed=False)), T0)
    assert plan.status["candidate"]["gate"] == "Failed" and plan.status["candidate"]["action"] == "None"
    assert [e.reason for e in plan.events] == ["CandidateRejected"]
    assert "promotion" not in plan.status and plan.status["history"][-1]["outcome"] == "GateFailed"


def test_a_job_without_a_manifest_is_a_failed_run() -> None:
    s, state = _started("Manual")
    bad = JobOutcome("Failed", failure="BadInput", message="rule at index 1: exit 2")
    plan = plan_retrain(s, state, observed(job=bad), T0)
    assert plan.status["run"]["state"] == "Failed" and "exit 2" in plan.status["run"]["message"]
    assert [e.reason for e in plan.events] == ["RetrainFailed"] and "candidate" not in plan.status


def test_automatic_mode_canaries_the_candidate_without_editing_the_spec_until_git_changes_it() -> None:
    s, state = _started("Automatic")
    version = state.run.candidate_version  # type: ignore[union-attr]
    uri = state.run.candidate_uri  # type: ignore[union-attr]
    plan = plan_retrain(s, state, observed(job=JobOutcome("Succeeded"), manifest=manifest(version)), T0)
    assert plan.wake_rollout and [e.reason for e in plan.events] == ["CandidateCanary"]
    assert (
        plan.status["promotion"]["state"] == "Canary" and plan.status["promotion"]["specVersion"] == "1.0.0"
    )
    assert effective_spec(s, plan.state).model.version == version  # what the rollout plans from
    assert s.model.version == "1.0.0"  # the declared spec is untouched
    cond = served_condition([], s, plan.state, "1.0.0", T0, 3)
    assert cond is not None and cond[0]["status"] == "True" and cond[0]["reason"] == "CandidateInCanary"
    # The canary promoted it: served by the candidate, the condition says so.
    promoted = RolloutView(stable_version=version, phase="Healthy")
    serving = plan_retrain(s, plan.state, observed(rollout=promoted), T0 + timedelta(minutes=10))
    assert serving.status["promotion"]["state"] == "Serving" and serving.status["servedBy"] == "candidate"
    assert serving.status["specVersion"] == "1.0.0" and serving.status["servedVersion"] == version
    assert [e.reason for e in serving.events] == ["CandidateServing"]
    cond = served_condition([], s, serving.state, version, T0, 3)
    assert cond is not None and (cond[0]["status"], cond[0]["reason"]) == (
        "False",
        "ServingRetrainedCandidate",
    )
    assert effective_spec(s, serving.state).model.uri == uri
    # Git commits the candidate itself: the promotion ends, nothing rolls out.
    committed = dataclasses.replace(s, model=dataclasses.replace(s.model, version=version, uri=uri))
    done = plan_retrain(committed, serving.state, observed(rollout=promoted), T0 + timedelta(hours=1))
    assert done.status["promotion"]["state"] == "Superseded" and done.status["servedBy"] == "spec"
    assert [e.reason for e in done.events] == ["CandidateCommitted"]
    assert effective_spec(committed, done.state).model == committed.model
    # Git changes spec.model: the spec wins.
    git = dataclasses.replace(
        s, model=dataclasses.replace(s.model, version="1.2.0", uri="file:///models/1.2.0")
    )
    superseded = plan_retrain(git, serving.state, observed(rollout=promoted), T0 + timedelta(hours=1))
    assert superseded.status["promotion"]["state"] == "Superseded" and superseded.wake_rollout
    assert effective_spec(git, superseded.state) == git
    cond = served_condition(cond, git, superseded.state, version, T0, 4)
    assert cond is not None and (cond[0]["status"], cond[0]["reason"]) == ("True", "SpecVersion")


def test_committing_manual_mode_ends_an_automatic_promotion() -> None:
    s, state = _started("Automatic")
    version = state.run.candidate_version  # type: ignore[union-attr]
    plan = plan_retrain(s, state, observed(job=JobOutcome("Succeeded"), manifest=manifest(version)), T0)
    manual = spec("Manual", drift={})
    after = plan_retrain(manual, plan.state, observed(rollout=RolloutView(stable_version=version)), T0)
    assert after.status["promotion"]["state"] == "Superseded" and after.wake_rollout
    assert effective_spec(manual, after.state) == manual


def test_a_candidate_the_canary_rolled_back_ends_the_promotion() -> None:
    s, state = _started("Automatic")
    version = state.run.candidate_version  # type: ignore[union-attr]
    plan = plan_retrain(s, state, observed(job=JobOutcome("Succeeded"), manifest=manifest(version)), T0)
    back = RolloutView(stable_version="1.0.0", phase="RolledBack", aborted_version=version)
    after = plan_retrain(s, plan.state, observed(rollout=back), T0)
    assert after.status["promotion"]["state"] == "RolledBack" and after.wake_rollout
    assert [e.reason for e in after.events] == ["CandidateRolledBack"]
    assert effective_spec(s, after.state) == s


def test_status_round_trips_and_the_patch_names_only_what_changed() -> None:
    s, state = _started("Automatic")
    version = state.run.candidate_version  # type: ignore[union-attr]
    plan = plan_retrain(s, state, observed(job=JobOutcome("Succeeded"), manifest=manifest(version)), T0)
    assert RetrainState.from_status({"retrain": plan.status}).to_status() == plan.status
    assert merge_patch_between(plan.status, plan.status) == {}
    patch = merge_patch_between(state.to_status(), plan.status)
    assert patch["run"] == {
        "state": "Succeeded",
        "completionTime": format_time(T0),
        "message": patch["run"]["message"],
    }
    assert "schedule" not in patch and "runs" not in patch


@pytest.mark.parametrize(
    ("parent", "serial", "want"), [("1.4.0", 3, "1.4.1-retrain.3"), ("2.0.1-retrain.2", 5, "2.0.2-retrain.5")]
)
def test_candidate_versions_are_next_patch_prereleases(parent: str, serial: int, want: str) -> None:
    assert candidate_version(parent, serial) == want


def test_the_golden_floor_reaches_the_retrain_command_as_the_cli_reads_it() -> None:
    from rankops.cli.main import build_parser
    from rankops.operator.core.retrain.jobs import retrain_args

    s = spec(drift={})
    assert s.retrain is not None
    floored = dataclasses.replace(
        s.retrain, promotion_gate=dataclasses.replace(s.retrain.promotion_gate, min_golden_ndcg_at_3=0.7)
    )
    args = retrain_args(dataclasses.replace(s, retrain=floored), TARGET, "1.0.1-retrain.1")
    assert args[-2:] == ["--min-golden-ndcg", "0.7"]
    parsed = build_parser().parse_args(args[1:])
    assert parsed.min_golden_ndcg == 0.7 and parsed.margin == 0.01
    assert "--min-golden-ndcg" not in retrain_args(s, TARGET, "1.0.1-retrain.1")  # no floor: no flag

"""The real operator (kopf) against the sandbox API server and a real Prometheus.

Each scenario uses its own model name (the exporters are relabelled to it), an analysis
interval of 1 s and a 10 s judging window. Deselect with ``-m "not prometheus"``.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.conftest import (
    NAMESPACE,
    deploy_healthy,
    event_reasons,
    get_model,
    object_history,
    quality_slo,
    start_rollout,
    status_of,
    wait_events,
    wait_healthy_at,
    wait_rolled_back,
    wait_status,
)
from tests.integration.harness import wait_for

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]


def test_good_canary_is_promoted_through_all_steps(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    operator()
    deploy_healthy(api, model_name)
    start_rollout(api, model_name, "1.1.0")
    status = wait_healthy_at(api, model_name, "1.1.0", 45, "promotion of 1.1.0")
    assert status["canaryWeight"] == 0
    weights = [(obj.get("status") or {}).get("canaryWeight") for _, obj in _history(api, model_name)]
    assert [w for i, w in enumerate(weights) if w is not None and (i == 0 or w != weights[i - 1])] == [
        0,
        25,
        50,
        100,
        0,
    ], weights
    reasons = [e["reason"] for e in wait_events(api, model_name, "Promoted")]
    assert reasons.count("Promoted") == 1
    assert reasons.count("StepAdvanced") == 2
    assert "RolloutStarted" in reasons and "AnalysisPassed" in reasons
    assert [h["outcome"] for h in status["history"]][-1] == "Promoted"
    stable = api.get_object("deployments", f"{model_name}-stable", NAMESPACE)
    assert stable["metadata"]["labels"]["rankops.dev/version"] == "1.1.0"


def _assert_rolled_back(api: Any, name: str, status: dict[str, Any], version: str = "1.1.0") -> None:
    assert status["phase"] == "RolledBack"
    assert status["canaryWeight"] == 0
    assert status["stableVersion"] == "1.0.0"
    assert "canaryVersion" not in status
    model = get_model(api, name)
    assert model["spec"]["model"]["version"] == version, "a rollback must never edit the spec"
    assert model["metadata"]["generation"] == 2
    canary = api.get_object("deployments", f"{name}-canary", NAMESPACE)
    assert canary["spec"]["replicas"] == 0
    wait_events(api, name, "RolledBack")


def _rolled_back_canary(
    api: Any, stack: Any, operator: Any, name: str, stable_mean: float, canary_mean: float
) -> dict[str, Any]:
    """Roll out 1.1.0 with these NDCG means and return the status once it is rolled back."""
    api.create(quality_slo())
    stack.use(name, "1.0.0", "1.1.0", stable_mean=stable_mean, canary_mean=canary_mean)
    operator()
    deploy_healthy(api, name)
    start_rollout(api, name, "1.1.0")
    status = wait_rolled_back(api, name)
    _assert_rolled_back(api, name, status)
    return status


def test_canary_below_breach_floor_is_rolled_back(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    status = _rolled_back_canary(api, stack, operator, model_name, stable_mean=0.8, canary_mean=0.5)
    assert status["lastAnalysis"]["reason"] == "BreachedFloor"
    assert status["history"][-1]["outcome"] == "RolledBack"
    assert "Promoted" not in event_reasons(api, model_name)


def test_canary_worse_than_stable_above_floor_is_rolled_back(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    # Both above the absolute floor (0.65) and the target (0.70): only the comparison can catch it.
    status = _rolled_back_canary(api, stack, operator, model_name, stable_mean=0.86, canary_mean=0.76)
    assert status["lastAnalysis"]["reason"] == "WorseThanStable"
    objective = status["lastAnalysis"]["objectives"][0]
    assert objective["canaryMean"] > 0.65 and objective["difference"] < -0.02


def test_prometheus_unreachable_pauses_without_promotion(api: Any, operator: Any, model_name: str) -> None:
    from tests.integration.harness import free_port

    api.create(quality_slo())
    operator(prometheus_url=f"http://127.0.0.1:{free_port()}")  # nothing listens there
    deploy_healthy(api, model_name)
    start_rollout(api, model_name, "1.1.0")
    status = wait_status(api, model_name, lambda s: s.get("phase") == "Paused", 20, "pause")
    assert status["pauseReason"] == "MetricsUnavailable"
    assert "cannot connect to Prometheus" in status["lastAnalysis"]["message"]
    progressing = next(c for c in status["conditions"] if c["type"] == "Progressing")
    assert progressing["status"] == "False" and progressing["reason"] == "MetricsUnavailable"
    time.sleep(4)  # several more analysis intervals: still paused, never promoted, weight unchanged
    status = status_of(api, model_name)
    assert status["phase"] == "Paused" and status["stableVersion"] == "1.0.0"
    assert status["canaryWeight"] == 25 and status["currentStep"] == 0
    assert status["stepFailures"] == 0 and status["stepInconclusive"] == 0, "unavailability counts nothing"
    reasons = [e["reason"] for e in wait_events(api, model_name, "MetricsUnavailable")]
    assert "Promoted" not in reasons and reasons.count("MetricsUnavailable") == 1


def test_operator_killed_mid_rollout_resumes_without_repeating_steps(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    steps = [
        {"weight": 25, "pause": "1s"},
        {"weight": 50, "pause": "2s"},
        {"weight": 75, "pause": "2s"},
        {"weight": 100},
    ]
    first = operator(process=True)
    deploy_healthy(api, model_name, steps=steps, timeout=30)
    start_rollout(api, model_name, "1.1.0")
    before = wait_status(api, model_name, lambda s: (s.get("currentStep") or 0) >= 1, 30, "step 2")
    # Events go out asynchronously (kopf's posting queue): let step 2's be posted before the kill.
    wait_for(
        lambda: any(e["reason"] == "StepAdvanced" for e in _events(api, model_name)), 5, 0.05, "StepAdvanced"
    )
    first.stop(kill=True)  # SIGKILL: no cleanup, no finalizer removal
    time.sleep(1.5)
    after_kill = status_of(api, model_name)
    assert after_kill["canaryVersion"] == "1.1.0" and after_kill["currentStep"] >= before["currentStep"]
    operator(process=True)
    status = wait_healthy_at(api, model_name, "1.1.0", 45, "promotion")
    assert status["canaryWeight"] == 0
    events = wait_events(api, model_name, "Promoted")
    step_messages = [e["message"] for e in events if e["reason"] == "StepAdvanced"]
    assert len(step_messages) == len(set(step_messages)), f"a step was entered twice: {step_messages}"
    announced = {n for n in range(2, len(steps) + 1) if any(f"(step {n})" in m for m in step_messages)}
    # Every step the second operator entered is announced once. Events are best effort: one that
    # the first operator queued just before the SIGKILL may be lost with its posting queue, so a
    # step it entered after step 2 (whose Event the test waited for) may go unannounced.
    entered_after_restart = set(range(after_kill["currentStep"] + 2, len(steps) + 1))
    assert {2} | entered_after_restart <= announced, (after_kill["currentStep"], step_messages)
    assert [e["reason"] for e in events].count("Promoted") == 1
    assert [e["reason"] for e in events].count("RolloutStarted") == 1
    promoted = [h for h in status["history"] if h["outcome"] == "Promoted"]
    assert len(promoted) == 1 and promoted[0]["version"] == "1.1.0"


def _history(api: Any, name: str) -> list[tuple[str, dict[str, Any]]]:
    """Every stored version of the RankingModel (the emulator's watch log), oldest first."""
    return object_history(api, f"/apis/rankops.dev/v1alpha1/namespaces/{NAMESPACE}/rankingmodels", name)


def _events(api: Any, name: str) -> list[dict[str, Any]]:
    from tests.integration.conftest import events_of

    return events_of(api, name)


def test_spec_change_during_rollout_restarts_analysis_for_new_version(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    api.create(quality_slo())
    steps = [{"weight": 25, "pause": "2s"}, {"weight": 50, "pause": "2s"}, {"weight": 100}]
    operator()
    deploy_healthy(api, model_name, steps=steps)
    start_rollout(api, model_name, "1.1.0")
    wait_status(api, model_name, lambda s: (s.get("currentStep") or 0) >= 1, 30, "step 2 of 1.1.0")
    stack.canary.set(version="1.2.0")  # the new canary pods export under their own version
    start_rollout(api, model_name, "1.2.0")
    wait_status(api, model_name, lambda s: s.get("canaryVersion") == "1.2.0", 10, "restart")
    # The first status naming 1.2.0 (from the emulator's watch log: polling could see a later one).
    restarted = next(
        obj["status"]
        for _, obj in _history(api, model_name)
        if (obj.get("status") or {}).get("canaryVersion") == "1.2.0"
    )
    assert restarted["currentStep"] == 0 and restarted["canaryRevision"] == 2
    assert restarted["stepLooks"] == 0 and not restarted.get("stepPassed")
    status = wait_healthy_at(api, model_name, "1.2.0", 45, "promotion of 1.2.0")
    outcomes = [(h["version"], h["outcome"]) for h in status["history"]]
    assert ("1.1.0", "Superseded") in outcomes and outcomes[-1] == ("1.2.0", "Promoted")
    wait_events(api, model_name, "RolloutRestarted", "Promoted")
    assert status["lastAnalysis"]["objectives"][0]["canaryN"] > 0


def test_abort_and_retry_by_annotation(api: Any, stack: Any, operator: Any, model_name: str) -> None:
    import subprocess
    import sys

    api.create(quality_slo())
    steps = [{"weight": 25, "pause": "30s"}, {"weight": 100}]
    operator(resync=60)  # only the annotation handler can act within the waits below
    deploy_healthy(api, model_name, steps=steps)
    start_rollout(api, model_name, "1.1.0")
    wait_status(api, model_name, lambda s: s.get("stepPassed"), 30, "analysis of step 1 passed")

    def cli(action: str) -> None:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "rankops.cli",
                "rollout",
                action,
                model_name,
                "-n",
                NAMESPACE,
                "--apiserver",
                api.url,
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )

    cli("abort")
    status = wait_rolled_back(api, model_name, 10, "abort")
    assert status["history"][-1]["outcome"] == "Aborted" and status["canaryWeight"] == 0
    cli("retry")
    wait_status(api, model_name, lambda s: s.get("canaryVersion") == "1.1.0", 10, "retry")
    cli("promote")  # skip the 30 s pause
    status = wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.1.0", 10, "manual promotion")
    assert status["history"][-1]["reason"] == "ManualPromotion"
    assert get_model(api, model_name)["spec"]["model"]["version"] == "1.1.0"


def test_missing_quality_slo_is_reported_and_the_rollout_resumes_once_it_exists(
    api: Any, stack: Any, operator: Any, model_name: str
) -> None:
    operator()  # no QualitySLO "ndcg" yet
    deploy_healthy(api, model_name)
    start_rollout(api, model_name, "1.1.0")
    status = wait_status(api, model_name, lambda s: s.get("phase") == "Paused", 20, "pause without SLO")
    assert status["lastAnalysis"]["reason"] == "SLONotFound"
    conditions = {c["type"]: c for c in status["conditions"]}
    analysis = conditions["AnalysisSucceeded"]
    assert (analysis["status"], analysis["reason"]) == ("Unknown", "SLONotFound")
    assert f"QualitySLO {NAMESPACE}/ndcg not found" in analysis["message"]
    assert (conditions["Progressing"]["status"], conditions["Progressing"]["reason"]) == (
        "False",
        "SLONotFound",
    )
    assert conditions["Degraded"]["status"] == "False"
    assert status["pauseReason"] == "SLONotFound"
    assert status["canaryWeight"] == 25 and status["stepFailures"] == 0, "a missing SLO counts nothing"
    assert status["stepLooks"] == 0 and status.get("totalLooks", 0) == 0
    wait_for(
        lambda: any(
            e["type"] == "Warning"
            and e["reason"] == "SLONotFound"
            and f"QualitySLO {NAMESPACE}/ndcg not found" in e.get("message", "")
            for e in _events(api, model_name)
        ),
        10,
        0.05,
        "a Warning Event SLONotFound naming the missing QualitySLO",
    )
    assert "MetricsUnavailable" not in [e["reason"] for e in _events(api, model_name)]
    api.create(quality_slo())
    status = wait_healthy_at(api, model_name, "1.1.0", 45, "promotion once the QualitySLO exists")
    assert status["history"][-1]["outcome"] == "Promoted"
    wait_events(api, model_name, "Resumed", "Promoted")

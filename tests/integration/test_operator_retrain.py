"""Continuous learning with the real operator (kopf) against the sandbox API server.

A RankingModel with a ``newData`` trigger whose feedback log already holds more than 20 % of
the base training queries since its parent was created: the trigger fires, one retrain Job
appears. The test plays the Job (the emulator runs no pods): it writes the candidate's
manifest where ``rankops retrain --out`` would, as that command does, and marks the Job
Complete. Manual mode: the candidate is named in status and an Event for a Git commit.
Automatic mode (with a real Prometheus scraping NDCG@3 exporters labelled with the candidate's
version): the operator canaries the candidate without editing the spec, the analysis promotes
it, status shows the served version differs from ``spec.model``, and a Git change of
``spec.model`` wins over it. Training itself is covered by tests/integration/test_retrain.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rankops.operator.core.retrain import LABEL_RETRAIN, retrain_job_name
from rankops.serving.feedback import feedback_line
from rankops.serving.feedback_log import FeedbackLog
from tests.integration.conftest import NAMESPACE, quality_slo, status_of, wait_status
from tests.integration.harness import crd_manifests, free_port, wait_for
from tests.integration.request_log import record_operator_requests

pytestmark = [pytest.mark.timeout(90)]


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    from rankops.sandbox.apiserver import SandboxAPIServer

    with SandboxAPIServer.in_thread(
        crds=crd_manifests(), simulate_workloads=True, workload_delay=0.1
    ) as server:
        yield server
        record_operator_requests(server, request.node.nodeid)  # opt-in: RANKOPS_REQUEST_LOG (chart RBAC)


def _stores(tmp: Path, feedback: int) -> dict[str, str]:
    """A parent artifact created an hour ago, a base dataset of 10 train queries, a feedback log."""
    parent = tmp / "models" / "1.0.0"
    parent.mkdir(parents=True)
    created = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds").replace("+00:00", "Z")
    (parent / "manifest.json").write_text(json.dumps({"version": "1.0.0", "created": created}))
    (tmp / "data" / "qrels").mkdir(parents=True)
    rows = "".join(f"q{i}\td{i}\t1\n" for i in range(10))
    (tmp / "data" / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)

    async def write() -> None:
        log = FeedbackLog(str(tmp / "feedback"), flush_s=10, batch_records=100, max_unflushed=100)
        for i in range(feedback):
            log.feedback(
                feedback_line(
                    request_id=f"r{i}",
                    at=time.time() - 60,
                    served_at=time.time() - 61,
                    identity={"model": "m", "version": "1.0.0", "track": "stable"},
                    query=f"query {i}",
                    domain="general",
                    shown=b"[]",
                    kind="judgments",
                    given={},
                    grades={"d1": 2},
                    ndcg=1.0,
                    top1_relevant=True,
                )
            )
        await log.flush()

    asyncio.run(write())
    return {"parent": f"file://{parent}", "data": str(tmp / "data"), "log": f"file://{tmp / 'feedback'}"}


def model(name: str, stores: dict[str, str], tmp: Path, mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"version": "1.0.0", "uri": stores["parent"]},
            "serving": {"image": "rankops/serving:test", "replicas": 1},
            # A long pause holds the candidate's canary at its first step for the assertions.
            "rollout": {"steps": [{"weight": 50, "pause": "1h"}, {"weight": 100}]},
            "retrain": {
                "triggers": {"newData": {}},
                "trainer": {
                    "data": stores["data"],
                    "outputUri": f"file://{tmp}/candidates",
                    "feedbackLog": stores["log"],
                },
                "promotionGate": {"mode": mode},
            },
        },
    }


def _retrain_jobs(api: Any) -> list[dict[str, Any]]:
    return [
        j for j in api.list_objects("jobs", NAMESPACE) if LABEL_RETRAIN in (j["metadata"].get("labels") or {})
    ]


def _run_the_job(api: Any, job: dict[str, Any], *, passed: bool) -> tuple[str, str]:
    """What ``rankops retrain`` leaves behind: the candidate's manifest at --out, the Job Complete."""
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    out, version = args[args.index("--out") + 1], args[args.index("--version") + 1]
    path = Path(out.removeprefix("file://"))
    path.mkdir(parents=True)
    verdict = "passed" if passed else "failed"
    gate = {"verdict": verdict, "reasons": ["NDCG@3 improved by +0.0400"], "parent_ndcg@3": 0.7,
            "candidate_ndcg@3": 0.74, "p_value": 0.003, "queries": 40}  # fmt: skip
    manifest = {
        "version": version,
        "retrain": {
            "parent": {"version": "1.0.0"},
            "feedback_window": {"used": 3},
            "gate": gate,
            "status": verdict,
        },
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    job = api.get_object("jobs", job["metadata"]["name"], NAMESPACE)
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    job["status"] = {
        "startTime": now,
        "completionTime": now,
        "succeeded": 1,
        "conditions": [{"type": "Complete", "status": "True", "lastTransitionTime": now}],
    }
    api.apply_object(job, status=True)
    return version, out


def _events(api: Any, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in api.list_objects("events", NAMESPACE)
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def _triggered_once(api: Any, name: str) -> dict[str, Any]:
    (job,) = wait_for(lambda: _retrain_jobs(api), 30, 0.1, "the retrain Job")
    assert job["metadata"]["name"] == retrain_job_name(name, 1)
    status = wait_status(api, name, lambda s: (s.get("retrain") or {}).get("run"), 10, "the run in status")
    (firing,) = status["retrain"]["triggers"]
    assert firing["type"] == "NewData" and firing["job"] == job["metadata"]["name"]
    assert "3 feedback records" in firing["message"] and "10 base training queries" in firing["message"]
    return dict(job)


def test_new_data_triggers_one_retrain_and_a_manual_candidate_is_named_for_git(
    api: Any, operator: Any, model_name: str, tmp_path: Path
) -> None:
    operator(prometheus_url=f"http://127.0.0.1:{free_port()}", resync=0.3)
    stores = _stores(tmp_path, feedback=3)  # 30 % of 10 base queries: over the default 20 %
    api.create(model(model_name, stores, tmp_path, "Manual"))
    wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.0.0", 30, "first deploy")
    job = _triggered_once(api, model_name)
    time.sleep(1.0)  # several reconciles while the Job runs: still one Job
    assert len(_retrain_jobs(api)) == 1
    version, uri = _run_the_job(api, job, passed=True)

    def candidate(s: dict[str, Any]) -> Any:
        return (s.get("retrain") or {}).get("candidate")

    status = wait_status(api, model_name, candidate, 30, "the candidate in status")
    got = status["retrain"]["candidate"]
    assert (got["version"], got["uri"], got["gate"], got["action"]) == (version, uri, "Passed", "CommitToGit")
    assert got["figures"]["candidate_ndcg@3"] == 0.74
    assert status["retrain"]["run"]["state"] == "Succeeded"
    assert [h["outcome"] for h in status["retrain"]["history"]] == ["Started", "Passed"]
    ready = wait_for(
        lambda: [e for e in _events(api, model_name) if e["reason"] == "CandidateReady"],
        10,
        0.1,
        "CandidateReady",
    )
    assert version in ready[0]["message"] and uri in ready[0]["message"]
    time.sleep(1.0)  # nothing is rolled out and no second retrain starts: the same data fired already
    after = status_of(api, model_name)
    assert after["stableVersion"] == "1.0.0" and not after.get("canaryVersion")
    assert len(_retrain_jobs(api)) == 1 and after["retrain"]["servedBy"] == "spec"


@pytest.mark.prometheus
def test_automatic_promotion_canaries_the_candidate_through_the_analysis_and_a_git_change_wins(
    api: Any, stack: Any, operator: Any, model_name: str, tmp_path: Path
) -> None:
    candidate = "1.0.1-retrain.1"  # the first retrain of 1.0.0
    stack.use(model_name, "1.0.0", candidate)  # the candidate ranks as well as its parent
    api.create(quality_slo())
    operator(resync=0.3)
    stores = _stores(tmp_path, feedback=3)
    rm = model(model_name, stores, tmp_path, "Automatic")
    rm["spec"]["rollout"] = {
        "steps": [{"weight": 50}, {"weight": 100}],
        "analysis": {"sloRef": {"name": "ndcg"}, "interval": "1s", "inconclusiveLimit": 10},
        "progressDeadline": "60s",
    }
    api.create(rm)
    wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.0.0", 30, "first deploy")
    version, uri = _run_the_job(api, _triggered_once(api, model_name), passed=True)
    assert version == candidate
    status = wait_status(
        api, model_name, lambda s: s.get("canaryVersion") == version, 30, "the candidate's canary"
    )
    assert status["canaryUri"] == uri and status["retrain"]["promotion"]["state"] == "Canary"
    canary = api.get_object("deployments", f"{model_name}-canary", NAMESPACE)
    assert canary["metadata"]["labels"]["rankops.dev/version"] == version
    cond = {c["type"]: c for c in status["conditions"]}["ServingSpecVersion"]
    assert (cond["status"], cond["reason"]) == ("True", "CandidateInCanary")
    # The analysis judges it on NDCG@3 from Prometheus and promotes it; the spec is never edited.
    status = wait_status(
        api,
        model_name,
        lambda s: (
            s.get("stableVersion") == version and (s.get("retrain") or {}).get("servedBy") == "candidate"
        ),
        60,
        "the candidate promoted by the analysis",
    )
    assert status["lastAnalysis"]["verdict"] == "Pass"
    assert (status["retrain"]["specVersion"], status["retrain"]["servedVersion"]) == ("1.0.0", version)
    obj = api.get_object("rankingmodels", model_name, NAMESPACE)
    assert obj["spec"]["model"] == {"version": "1.0.0", "uri": stores["parent"]}
    status = wait_status(
        api,
        model_name,
        lambda s: (
            {c["type"]: c["status"] for c in s["conditions"]}.get("ServingSpecVersion") == "False"
            and s.get("phase") == "Healthy"
        ),  # the stable track has rolled to the candidate
        30,
        "ServingSpecVersion False, Healthy",
    )
    time.sleep(1.0)  # more reconciles: no rollout back to spec.model's 1.0.0
    status = status_of(api, model_name)
    assert (
        status["phase"] == "Healthy"
        and not status.get("canaryVersion")
        and status["stableVersion"] == version
    )
    # A Git change of spec.model wins: the promotion ends and the new version's canary replaces it.
    obj["spec"]["model"] = {"version": "1.1.0", "uri": "file:///models/1.1.0"}
    api.apply_object(obj)
    wait_status(
        api,
        model_name,
        lambda s: s.get("canaryVersion") == "1.1.0" and s["retrain"]["promotion"]["state"] == "Superseded",
        30,
        "the Git version's canary",
    )
    wanted = {"CandidateCanary", "CandidateServing", "PromotionSuperseded"}
    wait_for(lambda: wanted <= {e["reason"] for e in _events(api, model_name)}, 10, 0.1, f"Events {wanted}")


def test_a_maintenance_window_retrain_task_runs_through_the_retrain_controller(
    api: Any, operator: Any, model_name: str, tmp_path: Path
) -> None:
    """Window opens -> Retrain requested -> the retrain controller's Job -> the window shows the outcome."""
    operator(prometheus_url=f"http://127.0.0.1:{free_port()}", resync=0.3)
    stores = _stores(tmp_path, feedback=0)
    rm = model(model_name, stores, tmp_path, "Manual")
    rm["metadata"]["labels"] = {"team": "search"}
    del rm["spec"]["retrain"]["triggers"]  # no trigger of its own: the window's task asks
    api.create(rm)
    wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.0.0", 30, "first deploy")
    window = f"{model_name}-w"
    api.create(
        {
            "apiVersion": "rankops.dev/v1alpha1",
            "kind": "MaintenanceWindow",
            "metadata": {"name": window, "namespace": NAMESPACE},
            "spec": {
                "schedule": "* * * * *",  # open whenever the test runs (an hour long)
                "duration": "1h",
                "selector": {"matchLabels": {"team": "search"}},
                "tasks": [{"name": "retrain", "type": "Retrain", "timeout": "30m"}],
            },
        }
    )

    def window_run() -> dict[str, Any]:
        mw = api.get_object("maintenancewindows", window, NAMESPACE)
        runs = [r for r in (mw.get("status") or {}).get("lastRuns") or [] if r["model"] == model_name]
        return dict(runs[0]) if runs else {}

    (job,) = wait_for(lambda: _retrain_jobs(api), 30, 0.1, "the retrain Job the window asked for")
    name = job["metadata"]["name"]
    assert name == retrain_job_name(model_name, 1)  # the retrain controller's Job, not a window chore
    assert job["metadata"]["annotations"]["rankops.dev/triggers"] == "MaintenanceWindow"
    assert job["spec"]["activeDeadlineSeconds"] == 1800  # the task's timeout
    assert not [j for j in api.list_objects("jobs", NAMESPACE) if j["metadata"]["name"] != name]
    status = wait_status(api, model_name, lambda s: (s.get("retrain") or {}).get("run"), 10, "the run")
    (firing,) = status["retrain"]["triggers"]
    run = wait_for(lambda: window_run().get("result") == "Running" and window_run(), 15, 0.1, "Running")
    assert firing["type"] == "MaintenanceWindow" and firing["job"] == name
    assert firing["key"] == f"{window}@{run['windowStart']}" and run["jobName"] == name
    version, uri = _run_the_job(api, job, passed=True)
    run = wait_for(lambda: window_run().get("result") == "Succeeded" and window_run(), 30, 0.1, "Succeeded")
    assert (run["reason"], run["jobName"]) == ("CandidateReady", name) and version in run["message"]
    status = status_of(api, model_name)
    assert (status["retrain"]["candidate"]["version"], status["retrain"]["candidate"]["uri"]) == (
        version,
        uri,
    )
    mw = api.get_object("maintenancewindows", window, NAMESPACE)
    tasks = {c["type"]: c for c in mw["status"]["conditions"]}["TasksSucceeded"]
    assert (tasks["status"], tasks["reason"]) == ("True", "AllSucceeded")
    maintenance = wait_status(
        api,
        model_name,
        lambda s: {c["type"]: c for c in s.get("conditions") or []}.get("MaintenanceSucceeded"),
        10,
        "MaintenanceSucceeded",
    )
    cond = {c["type"]: c for c in maintenance["conditions"]}["MaintenanceSucceeded"]
    assert (cond["status"], cond["reason"]) == ("True", "ChoresSucceeded")
    reasons = {e["reason"] for e in _events(api, window)}
    assert {"RetrainRequested", "TaskSucceeded"} <= reasons
    assert "CandidateReady" in {e["reason"] for e in _events(api, model_name)}
    time.sleep(1.0)  # more reconciles of both: the request does not fire again
    assert len(_retrain_jobs(api)) == 1 and window_run()["result"] == "Succeeded"

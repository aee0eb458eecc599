"""The sandbox end to end: the demo's story on real processes, and nothing left behind.

- ``test_story_promotes_a_better_model_and_rolls_back_a_broken_one``: the story of ``rankops
  demo`` (v1 stable, v2 canaried and promoted, maintenance windows running Backup,
  RestoreTest and DriftCheck Jobs, v3 trained on shuffled labels rolled back during its
  canary, v4 promoted and then rolled back on an Alertmanager alert once the query mix shifts
  to the domain it is weak on) with the real operator process, a real Prometheus and
  Alertmanager, ``rankops serve`` pods and held-out traffic with feedback; asserts on final
  status, history, Events, the alert path, the PNG and its series, and that no process of the
  sandbox survives it.
- ``test_sigterm_stops_every_process_and_frees_every_port``: ``rankops sandbox up
  --foreground`` with a Deployment and a Job running, SIGTERM, then no process and no port
  of it is left; on SIGKILL its children die with it; a failed start stops what had started.
- The runtime alone (no Prometheus, no operator): a crashing pod restarts with back-off, a
  Job's exit code becomes its status.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rankops.sandbox.alerting import alertmanager_binary
from rankops.sandbox.maint_act import DRIFT_MIN_SAMPLES
from rankops.sandbox.prometheus import prometheus_binary

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data" / "datasets"
MODELS = ROOT / "artifacts" / "demo" / "models"  # the demo's cache: trained once, shared

needs_prometheus = pytest.mark.skipif(
    prometheus_binary() is None,
    reason="prometheus not installed (Debian package `prometheus`: make prometheus)",
)


def _wait(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line or environment mentions ``marker`` (a work directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in text and state != "Z":
            found.append(int(entry.name))
    return found


def _bound(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@needs_prometheus
@pytest.mark.skipif(
    alertmanager_binary() is None,
    reason="prometheus-alertmanager not installed (Debian `prometheus-alertmanager`: make prometheus)",
)
@pytest.mark.slow
@pytest.mark.prometheus
@pytest.mark.timeout(900)
def test_story_promotes_a_better_model_and_rolls_back_a_broken_one(tmp_path: Path) -> None:
    from rich.console import Console

    from rankops.sandbox.story import StoryOptions, run_story

    png = tmp_path / "story.png"
    options = StoryOptions(workdir=tmp_path / "run", data=DATA, models=MODELS, png=png, rate=20, live=False)
    with open(tmp_path / "timeline.txt", "w") as out:
        summary = run_story(options, Console(file=out, width=140))
    print((tmp_path / "timeline.txt").read_text())
    print(json.dumps(summary))

    acts = {a["act"]: a for a in summary["acts"]}
    assert [acts[k]["outcome"] for k in ("v1", "v2", "v3", "v4")] == [
        "Healthy",
        "Promoted",
        "RolledBack",
        "RolledBackAfterPromotion",
    ], acts
    assert summary["ok"] is True and summary["not_yet"] == []
    # The maintenance act between v2 and v3: a real Backup Job, then a RestoreTest Job of it and a
    # DriftCheck Job that reached every serving pod at its own pod IP on port 8080 and judged
    # the live queries (its verdict on the replayed held-out traffic is reported, not assumed).
    jobs = {j["type"]: j for j in acts["maint"]["jobs"]}
    assert (jobs["Backup"]["result"], jobs["RestoreTest"]["result"]) == ("Succeeded", "Succeeded")
    drift = acts["maint"]["drift"]
    assert drift["verdict"] in ("NoDrift", "Drift") and drift["n"] >= DRIFT_MIN_SAMPLES, acts["maint"]
    expected = ("Succeeded", None) if drift["verdict"] == "NoDrift" else ("Failed", "DriftDetected")
    assert (jobs["DriftCheck"]["result"], jobs["DriftCheck"]["reason"]) == expected, jobs["DriftCheck"]
    assert drift["pods"] and all(
        re.fullmatch(r"http://127\.\d+\.\d+\.\d+:8080", p) and not p.startswith("http://127.0.0.1:")
        for p in drift["pods"]
    ), drift
    assert [(b["version"], b["verified"]) for b in acts["maint"]["backups"]] == [("2.0.0", True)]
    assert {"RolloutStarted", "StepAdvanced", "AnalysisPassed", "Promoted"} <= set(acts["v2"]["events"])
    assert {"RolloutStarted", "AnalysisFailed", "RolledBack"} <= set(acts["v3"]["events"])
    assert "Promoted" not in acts["v3"]["events"]
    assert 0 < acts["v3"]["rollback_latency_s"] < 60
    assert acts["v3"]["bad_requests_served"] > 0
    # The route switches to the stable track only once no old stable pod is left serving.
    assert acts["v2"]["old_version_served_after_promotion_s"] == 0
    # v4: fine on the canary (promoted), then rolled back on the alert once the mix shifted
    v4 = acts["v4"]
    assert v4["canary"] == "Promoted" and v4["reason"] == "PostPromotionBreach", v4
    assert {"RolloutStarted", "Promoted", "RolledBack"} <= set(v4["events"])
    assert v4["alert"]["in_alertmanager"] is True and v4["alert"]["breach_at_s"] is not None, v4
    assert 0 < v4["breach_to_rollback_s"] < 60 and 0 <= v4["alert_to_rollback_s"] < v4["breach_to_rollback_s"]
    assert v4["bad_requests_served"] > 0 and v4["bad_ndcg_at_3"] < 0.6  # the SLO's breach level
    assert summary["operator_alert_evaluations"] >= 1  # the operator looked because of the alert
    assert summary["final"] == {
        "phase": "RolledBack",
        "stableVersion": "2.0.0",
        "canaryWeight": 0,
        "specVersion": "4.0.0",  # a rollback never edits the spec
    }
    assert [(h["version"], h["outcome"]) for h in summary["history"]] == [
        ("1.0.0", "Deployed"),
        ("2.0.0", "Promoted"),
        ("3.0.0", "RolledBack"),
        ("4.0.0", "Promoted"),
        ("4.0.0", "RolledBack"),
    ]
    assert summary["history"][-1]["reason"] == "PostPromotionBreach"
    assert summary["requests"]["judged"] > 200

    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    series = json.loads(png.with_suffix(".json").read_text())
    assert series["lines"] == ["NDCG@3 canary", "NDCG@3 stable", "canary weight"]
    stable, canary = series["ndcg_at_3"]["stable"], series["ndcg_at_3"]["canary"]
    assert len(stable) > 10 and len(canary) > 3
    # v3's canary was worse than the stable v2 it ran beside: its bins after the v3 mark are low
    v3_at = next(at for at, label in series["acts"] if label.startswith("v3"))
    v4_at = next(at for at, label in series["acts"] if label.startswith("v4"))

    def mean_after(points: list[list[float]]) -> float:
        late = [p for p in points if v3_at < p[0] < v4_at]
        return sum(p[1] * p[2] for p in late) / sum(p[2] for p in late)

    assert mean_after(canary) < mean_after(stable) - 0.3
    assert [w for _, w in series["canary_weight"]].count(0) >= 3
    assert {label for _, label in series["events"]} >= {"RolloutStarted", "Promoted", "RolledBack"}
    assert [v for _, track, v in series["versions"] if track == "canary"] == ["2.0.0", "3.0.0", "4.0.0"]
    assert [v for _, track, v in series["versions"] if track == "stable"][-3:] == ["2.0.0", "4.0.0", "2.0.0"]
    assert any("RankopsSLOBreach" in label and "4.0.0" in label for _, label in series["alerts"])
    # after the shift the stable track served 4.0.0 worse than it served 2.0.0 before
    shift_at = next(at for at, label in series["acts"] if label.startswith("traffic:"))
    served_until = shift_at + v4["shift_to_rollback_s"] + v4["bad_served_after_rollback_s"]
    v4_bins = [p for p in stable if shift_at < p[0] < served_until]
    assert v4_bins and sum(p[1] * p[2] for p in v4_bins) / sum(p[2] for p in v4_bins) < 0.6

    assert _processes_mentioning(str(tmp_path)) == [], "a sandbox process outlived the story"


def _api(url: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode() if body is not None else None,
        method="POST" if body is not None else "GET",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _long_running(name: str) -> dict[str, Any]:
    """A container that binds a port and runs until stopped (the API server emulator)."""
    return {
        "name": name,
        "image": "ghcr.io/rankops/serving:0.1.0",
        "command": ["rankops", "sandbox", "apiserver", "--port", "0"],
    }


UP = [sys.executable, "-m", "rankops.cli", "sandbox", "up", "--foreground", "--no-example-model"]


@needs_prometheus
@pytest.mark.timeout(300)
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_stops_every_process_and_frees_every_port(tmp_path: Path, stop_signal: int) -> None:
    workdir = tmp_path / "sb"
    proc = subprocess.Popen(
        [*UP, "--workdir", str(workdir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    try:
        state = _wait(lambda: (workdir / "sandbox.json").is_file() or proc.poll() is not None, 90, "start-up")
        assert state and proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        info = json.loads((workdir / "sandbox.json").read_text())
        api = info["apiserver"]
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "busy"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "busy"}},
                "template": {
                    "metadata": {"labels": {"app": "busy"}},
                    "spec": {"containers": [_long_running("busy")]},
                },
            },
        }
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "chore"},
            "spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [_long_running("chore")]}}
            },
        }
        _api(api, "/apis/apps/v1/namespaces/default/deployments", deployment)
        _api(api, "/apis/batch/v1/namespaces/default/jobs", job)

        def running_pods() -> list[dict[str, Any]]:
            pods = _api(api, "/api/v1/namespaces/default/pods")["items"]
            return [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]

        pods = _wait(lambda: len(running_pods()) == 3 and running_pods(), 60, "three running pods")
        # the sandbox, Prometheus, the operator and three pods
        _wait(lambda: len(_processes_mentioning(str(workdir))) >= 6, 30, "the processes")
        sandbox_pids = _processes_mentioning(str(workdir))
        # the pods declare no container ports: each prints the URL it listens on first
        logs = sorted((workdir / "run" / "runtime" / "pods").glob("*.log"))
        urls = _wait(
            lambda: len(logs) == 3 and all(log.read_text().startswith("http") for log in logs) and logs,
            60,
            "the pods' URLs",
        )
        ports = [int(log.read_text().split()[0].rsplit(":", 1)[1]) for log in urls]
        ports += [int(u.rsplit(":", 1)[1]) for u in (api, info["prometheus"])]
        ports.append(int(info["entrypoint"].split("/")[2].rsplit(":", 1)[1]))
        assert all(_bound(p) for p in ports)
        assert len(pods) == 3

        proc.send_signal(stop_signal)
        assert proc.wait(60) == 0
        _wait(lambda: not _processes_mentioning(str(workdir)), 15, "every sandbox process to be gone")
        assert not [p for p in ports if _bound(p)], "a port is still bound"
        assert all(_zombie(pid) for pid in sandbox_pids)
        assert not (workdir / "sandbox.json").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@needs_prometheus
@pytest.mark.timeout(180)
def test_sigkill_of_the_sandbox_takes_its_processes_with_it(tmp_path: Path) -> None:
    """No clean-up code runs on SIGKILL: the children go because of PR_SET_PDEATHSIG."""
    workdir = tmp_path / "sb"
    proc = subprocess.Popen([*UP, "--workdir", str(workdir)], stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        _wait(lambda: (workdir / "sandbox.json").is_file(), 90, "start-up")
        api = json.loads((workdir / "sandbox.json").read_text())["apiserver"]
        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "chore"},
            "spec": {
                "template": {"spec": {"restartPolicy": "Never", "containers": [_long_running("chore")]}}
            },
        }
        _api(api, "/apis/batch/v1/namespaces/default/jobs", job)
        _wait(lambda: len(_processes_mentioning(str(workdir))) >= 4, 60, "sandbox, Prometheus, operator, pod")
        children = [p for p in _processes_mentioning(str(workdir)) if p != proc.pid]
        proc.kill()
        proc.wait(10)
        _wait(lambda: all(_zombie(pid) for pid in children), 15, "the children to die with the sandbox")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def _zombie(pid: int) -> bool:
    """Gone, or a zombie (dead, waiting to be reaped by a parent that is not ours)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


FAILING = ["rankops", "sandbox", "status", "--workdir", "/nonexistent"]  # exits 1 at once
SUCCEEDING = ["rankops", "sandbox", "--help"]  # exits 0 at once


@pytest.mark.timeout(120)
async def test_a_crashing_pod_restarts_with_back_off_and_jobs_report_their_outcome(tmp_path: Path) -> None:
    import asyncio

    from rankops.sandbox.apiserver import SandboxAPIServer
    from rankops.sandbox.runtime import ProcessRuntime

    def container(command: list[str]) -> dict[str, Any]:
        return {"name": "main", "image": "ghcr.io/rankops/serving:0.1.0", "command": command}

    def job(name: str, command: list[str]) -> dict[str, Any]:
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "backoffLimit": 1,
                "template": {"spec": {"restartPolicy": "Never", "containers": [container(command)]}},
            },
        }

    async def until(predicate: Callable[[], Any], seconds: float, what: str) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if value := predicate():
                return value
            await asyncio.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")

    async with SandboxAPIServer(crds=[str(ROOT / "crds")]) as api:
        async with ProcessRuntime(api, tmp_path, backoff_base=0.5, backoff_max=2.0) as runtime:
            api.create(
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "crashy", "namespace": "default"},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": {"app": "crashy"}},
                        "template": {
                            "metadata": {"labels": {"app": "crashy"}},
                            "spec": {"containers": [container(FAILING)]},
                        },
                    },
                }
            )
            api.create(job("works", SUCCEEDING))
            api.create(job("fails", FAILING))

            def crashy() -> dict[str, Any] | None:
                pods = [
                    p
                    for p in api.list_objects("pods", "default")
                    if p["metadata"]["name"].startswith("crashy")
                ]
                return pods[0] if pods else None

            def restarts() -> int:
                pod = crashy()
                statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or [{}]
                return int(statuses[0].get("restartCount", 0))

            await until(lambda: restarts() >= 3, 60, "three restarts")
            status = (crashy() or {})["status"]["containerStatuses"][0]
            assert status["lastState"]["terminated"]["exitCode"] == 1
            assert (
                len([p for p in api.list_objects("pods", "default") if "crashy" in p["metadata"]["name"]])
                == 1
            )

            def conditions(name: str) -> set[str]:
                obj = api.get_object("jobs", name, "default") or {}
                return {
                    c["type"]
                    for c in (obj.get("status") or {}).get("conditions") or []
                    if c["status"] == "True"
                }

            await until(lambda: "Complete" in conditions("works"), 30, "job works Complete")
            await until(lambda: "Failed" in conditions("fails"), 30, "job fails Failed")
            works = api.get_object("jobs", "works", "default")["status"]
            fails = api.get_object("jobs", "fails", "default")["status"]
            assert works["succeeded"] == 1 and "failed" not in works
            assert fails["failed"] == 2 and "succeeded" not in fails  # backoffLimit 1: two tries
            reason = next(c for c in fails["conditions"] if c["type"] == "Failed")["reason"]
            assert reason == "BackoffLimitExceeded"
            pids = [p.pid for p in runtime.processes()]
        assert not [pid for pid in pids if not _zombie(pid)]


@needs_prometheus
@pytest.mark.timeout(120)
def test_a_failed_start_stops_what_had_started(tmp_path: Path) -> None:
    from rankops.sandbox.stack import Sandbox

    workdir = tmp_path / "sb"
    broken = Sandbox(workdir, operator_env={"RANKOPS_EVENTS_LEVEL": "NO-SUCH-LEVEL"})
    with pytest.raises(RuntimeError, match="the operator exited at start"), broken:
        pass
    _wait(lambda: not _processes_mentioning(str(workdir)), 15, "Prometheus to be stopped")
    assert "RANKOPS_EVENTS_LEVEL" in (workdir / "operator.log").read_text()

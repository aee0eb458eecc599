"""The MaintenanceWindow controller against the sandbox API server, with an injected clock.

The controller's reconcile runs with ``now`` from a clock the test sets: Jobs appear in the
API server at the window's start (not a second before), with the specs the core builds, once
however many replicas reconcile; the sandbox's Job stand-in completes them and the status
follows. No real waiting: the clock jumps.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import kopf
import pytest

from rankops.operator.adapters.kube import ApiError, KubeClient, resource_path
from rankops.operator.controllers.maintenancewindow import MaintenanceWindowController
from rankops.operator.core.maintenance.jobs import job_name
from tests.integration.harness import crd_manifests

NS = "default"
# 02:00 in Berlin (CEST, UTC+2) on 2 June 2026 is 00:00 UTC.
WINDOW_START = datetime(2026, 6, 2, 0, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, str]] = []  # (kind, name, type, reason)

    def __call__(self, obj: Any, event: Any) -> None:
        self.events.append((obj["kind"], obj["metadata"]["name"], event.type, event.reason))

    def reasons(self, kind: str | None = None) -> list[str]:
        return [r for k, _, _, r in self.events if kind is None or k == kind]


def window(tmp: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "nightly", "namespace": NS},
        "spec": {
            "schedule": "0 2 * * *",
            "timeZone": "Europe/Berlin",
            "duration": "2h",
            "selector": {"matchLabels": {"team": "search"}},
            "tasks": [
                {
                    "name": "backup",
                    "type": "Backup",
                    "timeout": "30m",
                    "backup": {"destination": f"file://{tmp}/b"},
                },
                {"name": "restore", "type": "RestoreTest", "restoreTest": {"source": f"file://{tmp}/b"}},
                {"name": "drift", "type": "DriftCheck"},
            ],
            **spec,
        },
    }


def ranking_model(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {
            "model": {"version": "1.0.0", "uri": f"file:///models/{name}/1.0.0"},
            "serving": {"image": "ghcr.io/rankops/serving:0.1.0"},
        },
    }


@pytest.fixture
def api() -> Iterator[Any]:
    """The sandbox API server with its Job stand-in (marks Jobs Complete; runs no pods)."""
    from rankops.sandbox.apiserver import SandboxAPIServer

    with SandboxAPIServer.in_thread(
        crds=crd_manifests(), simulate_workloads=True, simulate_jobs=True, workload_delay=0.1
    ) as server:
        yield server


@pytest.fixture
async def kube(api: Any) -> AsyncIterator[KubeClient]:
    client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
    yield client
    await client.close()


async def jobs(kube: KubeClient) -> list[dict[str, Any]]:
    return await kube.list_items(resource_path("Job", NS))


async def status(kube: KubeClient, name: str = "nightly") -> dict[str, Any]:
    obj = await kube.get(resource_path("MaintenanceWindow", NS, name))
    assert obj is not None
    return dict(obj.get("status") or {})


def fake_backup(dest: Path, version: str, taken: datetime) -> None:
    """What ``rankops backup`` publishes (a record over a manifest over files), written directly."""
    d = dest / version
    d.mkdir(parents=True)
    (d / "model.pt").write_bytes(b"weights " + version.encode())
    files = {"model.pt": {"sha256": hashlib.sha256((d / "model.pt").read_bytes()).hexdigest(), "size": 15}}
    manifest = json.dumps({"version": version, "files": files}).encode()
    (d / "manifest.json").write_bytes(manifest)
    record = {
        "version": version,
        "takenAt": taken.isoformat().replace("+00:00", "Z"),
        "manifestSha256": hashlib.sha256(manifest).hexdigest(),
        "sizeBytes": 15 + len(manifest),
        "keep": False,
    }
    (d / "backup.json").write_text(json.dumps(record))


async def test_jobs_appear_at_the_window_start_once_and_their_completion_is_tracked(
    api: Any, kube: KubeClient, tmp_path: Path
) -> None:
    await kube.create(resource_path("RankingModel", NS), ranking_model("ranker", {"team": "search"}))
    await kube.create(resource_path("RankingModel", NS), ranking_model("unrelated", {"team": "ads"}))
    mw = await kube.create(resource_path("MaintenanceWindow", NS), window(tmp_path))
    clock, events = FakeClock(WINDOW_START - timedelta(seconds=1)), Recorder()
    controller = MaintenanceWindowController(kube, post_event=events, clock=clock)

    result = await controller.reconcile(NS, "nightly")
    assert await jobs(kube) == []
    st = await status(kube)
    assert st["nextWindow"] == "2026-06-02T00:00:00Z" and st["active"] is False
    assert result.requeue_after == pytest.approx(1.0)

    clock.now = WINDOW_START + timedelta(seconds=2)
    # What the backup Job will have published by the time it completes (the sandbox runs no pods).
    fake_backup(tmp_path / "b" / NS / "ranker", "1.0.0", WINDOW_START + timedelta(minutes=1))
    await controller.reconcile(NS, "nightly")
    created = {j["metadata"]["name"]: j for j in await jobs(kube)}
    # Backup and RestoreTest for the selected model; DriftCheck skipped (no ready pod).
    expected = {job_name("nightly", t, "ranker", WINDOW_START) for t in ("backup", "restore")}
    assert set(created) == expected
    backup = created[job_name("nightly", "backup", "ranker", WINDOW_START)]
    assert backup["metadata"]["ownerReferences"][0]["uid"] == mw["metadata"]["uid"]
    assert backup["spec"]["activeDeadlineSeconds"] == 1800
    pod = backup["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["args"][:4] == [
        "backup",
        "--model",
        "file:///models/ranker/1.0.0",
        "--to",
    ]
    assert pod["containers"][0]["args"][0] == "prune-backups"
    assert pod["securityContext"]["runAsNonRoot"] is True
    st = await status(kube)
    assert st["active"] is True and st["currentWindowEnd"] == "2026-06-02T02:00:00Z"
    runs = {(r["task"], r["model"]): r for r in st["lastRuns"]}
    assert runs[("drift", "ranker")]["result"] == "Skipped"
    assert events.reasons("MaintenanceWindow").count("JobCreated") == 2
    assert "JobCreated" in events.reasons("RankingModel")

    # A restarted operator or a second replica (fresh controller, stale status) adds nothing.
    replica = MaintenanceWindowController(kube, post_event=events, clock=clock)
    await replica.reconcile(NS, "nightly")
    await controller.reconcile(NS, "nightly")
    assert len(await jobs(kube)) == 2

    # The sandbox's Job stand-in completes them; the status and Events follow.

    async def finished() -> bool:
        return all((j.get("status") or {}).get("succeeded") for j in await jobs(kube))

    for _ in range(100):
        if await finished():
            break
        await asyncio.sleep(0.1)
    assert await finished()
    clock.now = WINDOW_START + timedelta(minutes=3)
    await controller.reconcile(NS, "nightly")
    st = await status(kube)
    runs = {(r["task"], r["model"]): r for r in st["lastRuns"]}
    assert runs[("backup", "ranker")]["result"] == "Succeeded"
    assert runs[("restore", "ranker")]["result"] == "Succeeded"
    assert [b["version"] for b in st["backups"]] == ["1.0.0"] and st["backups"][0]["verified"] is True
    assert events.reasons().count("TaskSucceeded") == 4  # on the window and on the model
    conditions = {c["type"]: c for c in st["conditions"]}
    assert conditions["TasksSucceeded"]["status"] == "True"
    metrics = controller.metrics.registry
    model = {"namespace": NS, "model": "ranker"}
    assert metrics.get_sample_value("rankops_backup_last_run_failed", model) == 0
    assert metrics.get_sample_value("rankops_backup_count", model) == 1
    assert metrics.get_sample_value("rankops_backup_last_success_timestamp_seconds", model) is not None
    created = {"namespace": NS, "window": "nightly", "type": "Backup"}
    assert metrics.get_sample_value("rankops_maintenance_jobs_created_total", created) == 1
    assert (
        metrics.get_sample_value("rankops_maintenance_window_active", {"namespace": NS, "window": "nightly"})
        == 1
    )

    # After the window: closed, next one tomorrow, nothing new.
    clock.now = WINDOW_START + timedelta(hours=2, minutes=1)
    await controller.reconcile(NS, "nightly")
    st = await status(kube)
    assert st["active"] is False and st["nextWindow"] == "2026-06-03T00:00:00Z"
    assert len(await jobs(kube)) == 2


async def test_invalid_schedule_refused_at_apply_and_unknown_zone_reported(
    kube: KubeClient, tmp_path: Path
) -> None:
    with pytest.raises(ApiError) as err:
        await kube.create(resource_path("MaintenanceWindow", NS), window(tmp_path, schedule="61 * * * *"))
    assert err.value.status == 422 and "spec.schedule" in str(err.value) and "minute 0-59" in str(err.value)
    await kube.create(resource_path("MaintenanceWindow", NS), window(tmp_path, timeZone="Mars/Olympus_Mons"))
    events = Recorder()
    controller = MaintenanceWindowController(kube, post_event=events, clock=FakeClock(WINDOW_START))
    await controller.reconcile(NS, "nightly")
    st = await status(kube)
    (ready,) = [c for c in st["conditions"] if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.timeZone" in ready["message"] and "Mars/Olympus_Mons" in ready["message"]
    assert events.reasons() == ["InvalidSpec"] and await jobs(kube) == []


async def test_missed_window_past_the_starting_deadline(kube: KubeClient, tmp_path: Path) -> None:
    await kube.create(resource_path("RankingModel", NS), ranking_model("ranker", {"team": "search"}))
    await kube.create(resource_path("MaintenanceWindow", NS), window(tmp_path, startingDeadlineSeconds=300))
    events = Recorder()
    clock = FakeClock(WINDOW_START - timedelta(days=2, hours=1))
    controller = MaintenanceWindowController(kube, post_event=events, clock=clock)
    await controller.reconcile(NS, "nightly")
    # The operator is down for two days and comes back 20 minutes into a window.
    clock.now = WINDOW_START + timedelta(minutes=20)
    await controller.reconcile(NS, "nightly")
    assert await jobs(kube) == []
    st = await status(kube)
    assert st["missedWindows"] == 3 and st["lastScheduleTime"] == "2026-06-02T00:00:00Z"
    assert "WindowMissed" in events.reasons()
    assert {c["type"]: c["status"] for c in st["conditions"]}["WindowMissed"] == "True"


async def test_drift_job_gets_the_ready_serving_pods(kube: KubeClient, tmp_path: Path) -> None:
    await kube.create(resource_path("RankingModel", NS), ranking_model("ranker", {"team": "search"}))
    for i, ready in enumerate(["True", "False", "True"]):
        pod = await kube.create(
            f"/api/v1/namespaces/{NS}/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"ranker-stable-{i}", "labels": {"app.kubernetes.io/name": "ranker"}},
                "spec": {"containers": [{"name": "serve", "image": "x"}]},
            },
        )
        await kube.merge_patch(
            f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/status",
            {"status": {"podIP": f"10.0.0.{i + 1}", "conditions": [{"type": "Ready", "status": ready}]}},
        )
    await kube.create(
        resource_path("MaintenanceWindow", NS),
        window(tmp_path, tasks=[{"name": "drift", "type": "DriftCheck"}]),
    )
    events = Recorder()
    controller = MaintenanceWindowController(kube, post_event=events, clock=FakeClock(WINDOW_START))
    await controller.reconcile(NS, "nightly")
    (job,) = await jobs(kube)
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--endpoint"] == [
        "http://10.0.0.1:8080",
        "http://10.0.0.3:8080",
    ]

    # The drift Job exits 1 (drift found): the Job's podFailurePolicy rule 0 names it.
    name = job["metadata"]["name"]
    await kube.merge_patch(
        resource_path("Job", NS, name, "status"),
        {
            "status": {
                "failed": 1,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "PodFailurePolicy",
                        "message": f"Container driftcheck for pod {NS}/{name}-x failed with exit code 1 "
                        "matching FailJob rule at index 0",
                    }
                ],
            }
        },
    )
    await asyncio.sleep(0.3)  # the sandbox's Job stand-in leaves a finished Job alone
    await controller.reconcile(NS, "nightly")
    st = await status(kube)
    (run,) = st["lastRuns"]
    assert (run["result"], run["reason"]) == ("Failed", "DriftDetected")
    assert ("RankingModel", "ranker", "Warning", "DriftDetected") in events.events
    conditions = {c["type"]: c for c in st["conditions"]}
    assert (conditions["TasksSucceeded"]["status"], conditions["TasksSucceeded"]["reason"]) == (
        "False",
        "DriftDetected",
    )
    labels = {"namespace": NS, "model": "ranker"}
    assert controller.metrics.registry.get_sample_value("rankops_drift_detected", labels) == 1
    assert (
        controller.metrics.registry.get_sample_value(
            "rankops_drift_checks_total", {**labels, "verdict": "Drift"}
        )
        == 1
    )


async def test_change_freeze_follows_only_in_window_windows(kube: KubeClient, tmp_path: Path) -> None:
    await kube.create(resource_path("MaintenanceWindow", NS), window(tmp_path, rolloutPolicy="OnlyInWindow"))
    controller = MaintenanceWindowController(kube, post_event=Recorder())
    outside = await controller.rollout_freeze(NS, {"team": "search"}, WINDOW_START - timedelta(hours=1))
    assert not outside.allowed and "2026-06-02T00:00:00Z" in outside.message
    assert (
        await controller.rollout_freeze(NS, {"team": "search"}, WINDOW_START + timedelta(minutes=5))
    ).allowed
    assert (await controller.rollout_freeze(NS, {"team": "ads"}, WINDOW_START - timedelta(hours=1))).allowed

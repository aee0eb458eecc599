"""A MaintenanceWindow's Jobs run for real in the sandbox's process runtime (each pod a local
process): the Backup Job's init container runs ``rankops backup`` of the bundled model, its
main container ``rankops prune-backups``; the controller (injected clock) sees the Job
complete and lists the published backup in status. A second model whose artifact is
corrupted fails its backup check (exit 1, the Job's podFailurePolicy rule 0): BackupCorrupted,
and nothing of it is published.
"""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import kopf
import pytest

from rankops.operator.adapters.kube import KubeClient, resource_path
from rankops.operator.controllers.maintenancewindow import MaintenanceWindowController
from tests.integration.harness import crd_manifests
from tests.integration.maintenance_support import trained_bundled_model

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]
NS = "default"
START = datetime(2026, 6, 2, 0, 0, tzinfo=UTC)


async def test_backup_job_runs_for_real_and_the_backup_is_in_status(tmp_path: Path) -> None:
    from rankops.sandbox.apiserver import SandboxAPIServer
    from rankops.sandbox.runtime import ProcessRuntime

    model = trained_bundled_model()
    broken = tmp_path / "broken-model"
    shutil.copytree(model, broken)
    (broken / "catalog.jsonl").write_text("{}\n")
    dest = tmp_path / "backups"
    async with SandboxAPIServer(crds=crd_manifests()) as api, ProcessRuntime(api, tmp_path / "runtime"):
        kube = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
        try:
            for name, artifact in (("ranker", model), ("broken", broken)):
                await kube.create(
                    resource_path("RankingModel", NS),
                    {
                        "apiVersion": "rankops.dev/v1alpha1",
                        "kind": "RankingModel",
                        "metadata": {"name": name, "namespace": NS},
                        "spec": {
                            "model": {"version": "1.0.0", "uri": f"file://{artifact}"},
                            "serving": {"image": "ghcr.io/rankops/serving:0.1.0", "replicas": 1},
                        },
                    },
                )
            await kube.create(
                resource_path("MaintenanceWindow", NS),
                {
                    "apiVersion": "rankops.dev/v1alpha1",
                    "kind": "MaintenanceWindow",
                    "metadata": {"name": "nightly", "namespace": NS},
                    "spec": {
                        "schedule": "0 2 * * *",
                        "timeZone": "Europe/Berlin",
                        "duration": "2h",
                        "tasks": [
                            {"name": "backup", "type": "Backup", "backup": {"destination": f"file://{dest}"}}
                        ],
                    },
                },
            )
            clock = [START + timedelta(seconds=1)]
            controller = MaintenanceWindowController(
                kube, post_event=lambda obj, event: None, clock=lambda: clock[0]
            )
            await controller.reconcile(NS, "nightly")
            for _ in range(600):
                await asyncio.sleep(0.25)
                clock[0] = START + timedelta(minutes=1)
                await controller.reconcile(NS, "nightly")
                obj = await kube.get(resource_path("MaintenanceWindow", NS, "nightly"))
                runs = (obj or {}).get("status", {}).get("lastRuns") or []
                if len(runs) == 2 and all(r["result"] in ("Succeeded", "Failed") for r in runs):
                    break
            status = (obj or {}).get("status", {})
            runs = {r["model"]: r for r in status["lastRuns"]}
            assert runs["ranker"]["result"] == "Succeeded", runs
            assert (runs["broken"]["result"], runs["broken"]["reason"]) == ("Failed", "BackupCorrupted"), runs
            assert "exit code 1" in runs["broken"]["message"]
            # The failure is loud on the RankingModel too, as a condition.
            for name, expected in (
                ("broken", ("False", "BackupCorrupted")),
                ("ranker", ("True", "ChoresSucceeded")),
            ):
                rm = await kube.get(resource_path("RankingModel", NS, name))
                cond = next(c for c in rm["status"]["conditions"] if c["type"] == "MaintenanceSucceeded")
                assert (cond["status"], cond["reason"]) == expected, cond
            assert not (dest / NS / "broken").exists() or not any((dest / NS / "broken").iterdir())
            (backup,) = status["backups"]
            assert backup["version"] == "1.0.0" and backup["verified"] is True
            assert backup["uri"] == f"file://{dest}/{NS}/ranker/1.0.0"
            published = dest / NS / "ranker" / "1.0.0"
            assert (published / "backup.json").is_file()
            assert (published / "model.pt").read_bytes() == (model / "model.pt").read_bytes()
        finally:
            await kube.close()

"""MaintenanceWindows with the real operator (kopf) against the sandbox API server.

A window whose schedule opens every minute and stays open an hour is open whenever the test
runs, so its Jobs appear as soon as it is applied (no waiting for a clock); the timing of
window starts is covered with an injected clock in test_maintenance_controller.py.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from rankops.operator.core.maintenance.jobs import job_name
from tests.integration.conftest import NAMESPACE, status_of, wait_status
from tests.integration.harness import crd_manifests, free_port, wait_for

pytestmark = [pytest.mark.timeout(90)]


@pytest.fixture
def api() -> Iterator[Any]:
    """The sandbox API server with its Job stand-in (marks Jobs Complete; runs no pods)."""
    from rankops.sandbox.apiserver import SandboxAPIServer

    with SandboxAPIServer.in_thread(
        crds=crd_manifests(), simulate_workloads=True, simulate_jobs=True, workload_delay=0.1
    ) as server:
        yield server


def _no_prometheus() -> str:
    return f"http://127.0.0.1:{free_port()}"


def model(name: str, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "RankingModel",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"team": "search"}},
        "spec": {
            "model": {"version": version, "uri": f"file:///models/{name}/{version}"},
            "serving": {"image": "rankops/serving:test", "replicas": 1},
            "rollout": {"steps": [{"weight": 100}]},
        },
    }


def window(name: str, tmp: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "schedule": "* * * * *",
            "duration": "1h",
            "selector": {"matchLabels": {"team": "search"}},
            "tasks": [{"name": "backup", "type": "Backup", "backup": {"destination": f"file://{tmp}/b"}}],
            **spec,
        },
    }


def test_operator_runs_window_jobs_and_tracks_them(
    api: Any, operator: Any, model_name: str, tmp_path: Path
) -> None:
    port = free_port()
    operator(prometheus_url=_no_prometheus(), resync=2.0, RANKOPS_METRICS_PORT=str(port))
    api.create(model(model_name))
    api.create(window("chores", tmp_path))

    def backup_jobs() -> list[dict[str, Any]]:
        return [
            j
            for j in api.list_objects("jobs", NAMESPACE)
            if j["metadata"]["name"].startswith("chores-backup")
        ]

    (first, *_) = wait_for(backup_jobs, 30, 0.1, "the window's backup Job")
    meta = first["metadata"]
    start = datetime.fromisoformat(meta["annotations"]["rankops.dev/window-start"].replace("Z", "+00:00"))
    assert meta["name"] == job_name("chores", "backup", model_name, start)
    assert meta["ownerReferences"][0]["kind"] == "MaintenanceWindow"

    def succeeded() -> bool:
        runs = (api.get_object("maintenancewindows", "chores", NAMESPACE).get("status") or {}).get(
            "lastRuns"
        ) or []
        return any(r.get("model") == model_name and r.get("result") == "Succeeded" for r in runs)

    wait_for(succeeded, 30, 0.1, "the backup run Succeeded in status (Job watch)")
    status = api.get_object("maintenancewindows", "chores", NAMESPACE)["status"]
    assert status["active"] is True
    assert {c["type"]: c["status"] for c in status["conditions"]}["TasksSucceeded"] == "True"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        metrics = r.read().decode()
    assert (
        'rankops_maintenance_jobs_created_total{namespace="default",type="Backup",window="chores"}' in metrics
    )
    assert f'rankops_backup_last_run_failed{{model="{model_name}",namespace="default"}} 0.0' in metrics


def test_change_freeze_holds_a_new_version_until_a_window_opens(
    api: Any, operator: Any, model_name: str, tmp_path: Path
) -> None:
    operator(prometheus_url=_no_prometheus(), resync=0.5)
    # Open only on 1 January at midnight (one minute): closed whenever this test runs... except then.
    api.create(
        window(
            "freeze", tmp_path, schedule="0 0 1 1 *", duration="1m", rolloutPolicy="OnlyInWindow", tasks=[]
        )
    )
    api.create(model(model_name))
    wait_status(api, model_name, lambda s: s.get("stableVersion") == "1.0.0", 30, "first deploy")
    obj = api.get_object("rankingmodels", model_name, NAMESPACE)
    obj["spec"]["model"]["version"] = "1.1.0"
    obj["spec"]["model"]["uri"] = f"file:///models/{model_name}/1.1.0"
    api.apply_object(obj)

    def frozen(s: dict[str, Any]) -> bool:
        return any(
            c.get("type") == "Progressing" and c.get("reason") == "RolloutFrozen"
            for c in s.get("conditions") or []
        )

    wait_status(api, model_name, frozen, 30, "the rollout frozen")
    assert status_of(api, model_name)["stableVersion"] == "1.0.0"
    assert not status_of(api, model_name).get("canaryVersion")
    # The window opens (its schedule now matches every minute for an hour): the rollout starts.
    mw = api.get_object("maintenancewindows", "freeze", NAMESPACE)
    mw["spec"]["schedule"], mw["spec"]["duration"] = "* * * * *", "1h"
    api.apply_object(mw)
    wait_status(
        api, model_name, lambda s: s.get("stableVersion") == "1.1.0", 30, "the rollout after the freeze"
    )

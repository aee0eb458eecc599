"""`kubectl rankops` against the sandbox API server, through kubectl's own plugin mechanism.

The plugin runs as ``kubectl rankops ...`` (kubectl finds ``kubectl-rankops`` on PATH) where
kubectl is installed, else as ``python -m rankops.cli.kubectl``. Steering tests run the real
operator as a process (``rankops operator run``) with an unreachable Prometheus, so a rollout
holds (phase Paused, MetricsUnavailable) until the CLI promotes or aborts it.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    NAMESPACE,
    deploy_healthy,
    get_model,
    quality_slo,
    ranking_model,
    start_rollout,
    wait_status,
)

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = shutil.which("kubectl")
DEAD_PROMETHEUS = "http://127.0.0.1:9"  # discard port: every query fails at once


@pytest.fixture
def cli(api: Any, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    shim = plugins / "kubectl-rankops"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m rankops.cli.kubectl "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "PATH": f"{plugins}:{os.environ['PATH']}"}

    def run(*args: str, timeout: float = 90, background: bool = False) -> Any:
        command = [KUBECTL, "rankops", *args] if KUBECTL else [str(shim), *args]
        if background:
            return subprocess.Popen(
                command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        return subprocess.run(
            command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
        )

    return run


def set_status(api: Any, name: str, status: dict[str, Any]) -> None:
    obj = get_model(api, name)
    obj["status"] = status
    api.apply_object(obj, status=True)


def test_errors_are_one_line_with_exit_2(api: Any, cli: Callable[..., Any], model_name: str) -> None:
    done = cli("status", "nope")
    assert done.returncode == 2
    assert done.stderr.strip() == f"kubectl rankops status: error: RankingModel {NAMESPACE}/nope not found"
    api.create(ranking_model(model_name))
    set_status(api, model_name, {"phase": "Healthy", "stableVersion": "1.0.0", "message": "serving 1.0.0"})
    for action in ("promote", "abort", "pause"):
        done = cli(action, model_name)
        assert done.returncode == 2, done
        assert (
            f"cannot {action} (no rollout in progress): {model_name} is Healthy: serving 1.0.0" in done.stderr
        )
    assert "only a RolledBack, Failed or Paused rollout" in cli("retry", model_name).stderr
    assert "not paused by rankops.dev/paused" in cli("resume", model_name).stderr
    assert "nothing to undo" in cli("undo", model_name).stderr
    done = cli("status", model_name, "--watch", "--timeout", "soon")
    assert done.returncode == 2 and "not a duration: 'soon'" in done.stderr
    # Nothing was written: every refusal came before the patch.
    assert not (get_model(api, model_name)["metadata"].get("annotations") or {})


def test_status_shows_phase_step_weights_and_each_objective(
    api: Any, cli: Callable[..., Any], model_name: str
) -> None:
    api.create(ranking_model(model_name, "1.1.0"))
    set_status(
        api,
        model_name,
        {
            "phase": "Progressing",
            "message": "step 2/3: analysing",
            "stableVersion": "1.0.0",
            "canaryVersion": "1.1.0",
            "canaryRevision": 2,
            "canaryWeight": 50,
            "currentStep": 1,
            "lastAnalysis": {
                "verdict": "Pass",
                "reason": "NonInferior",
                "message": "canary no worse than stable",
                "look": 3,
                "plannedLooks": 11,
                "time": "2026-12-02T01:00:00Z",
                "objectives": [
                    {
                        "name": "ndcg",
                        "metric": "ndcg_at_3",
                        "verdict": "Pass",
                        "canaryMean": 0.8012,
                        "stableMean": 0.7991,
                        "difference": 0.0021,
                        "ciLower": -0.011,
                        "ciUpper": 0.015,
                        "pValue": 0.00042,
                        "canaryN": 240,
                        "stableN": 720,
                    }
                ],
            },
        },
    )
    done = cli("status", model_name)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Phase:         Progressing" in out
    assert "Stable:        1.0.0  weight 50" in out and "Canary:        1.1.0  weight 50  (revision 2)" in out
    assert "Step:          2/3 (weight 50)" in out
    assert "Last analysis: Pass (NonInferior), look 3/11" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("ndcg "))
    assert row.split() == [
        "ndcg",
        "ndcg_at_3",
        "Pass",
        "0.801",
        "0.799",
        "0.002",
        "[-0.011,",
        "0.015]",
        "0.0004",
        "240/720",
    ]
    listing = cli("status")
    assert listing.returncode == 0 and model_name in listing.stdout and "Progressing" in listing.stdout


@pytest.mark.slow
def test_watch_exit_codes_and_steering_with_the_operator(
    api: Any, operator: Callable[..., Any], cli: Callable[..., Any], model_name: str
) -> None:
    api.create(quality_slo())
    operator(DEAD_PROMETHEUS, process=True, resync=5.0)
    deploy_healthy(api, model_name, steps=[{"weight": 50}, {"weight": 100}], timeout=60)
    done = cli("status", model_name, "--watch", "--timeout", "30s")
    assert done.returncode == 0 and "rollout ended: Healthy" in done.stdout, done

    # 1.1.0 holds (no metrics); a watcher started now ends 0 once it is promoted.
    start_rollout(api, model_name, "1.1.0")
    wait_status(
        api, model_name, lambda s: s.get("phase") == "Paused" and s.get("canaryVersion") == "1.1.0", 60
    )
    timed_out = cli("status", model_name, "--watch", "--timeout", "2s")
    assert timed_out.returncode == 124, timed_out
    watcher = cli("status", model_name, "--watch", "--timeout", "60s", background=True)
    time.sleep(1.0)
    promoted = cli("promote", model_name, "--full")
    assert promoted.returncode == 0, promoted
    out, err = watcher.communicate(timeout=90)
    print(f"=== kubectl rankops status --watch (promoted), exit code {watcher.returncode} ===\n" + out)
    assert watcher.returncode == 0, err
    assert "Phase:         Paused (MetricsUnavailable)" in out and out.rstrip().endswith(
        "rollout ended: Healthy"
    )
    assert get_model(api, model_name)["status"]["stableVersion"] == "1.1.0"

    # 1.2.0 is aborted: the watcher ends 1.
    start_rollout(api, model_name, "1.2.0")
    wait_status(
        api, model_name, lambda s: s.get("phase") == "Paused" and s.get("canaryVersion") == "1.2.0", 60
    )
    watcher = cli("status", model_name, "--watch", "--timeout", "60s", background=True)
    time.sleep(1.0)
    assert cli("abort", model_name).returncode == 0
    out, err = watcher.communicate(timeout=90)
    print(f"=== kubectl rankops status --watch (rolled back), exit code {watcher.returncode} ===\n" + out)
    assert watcher.returncode == 1, err
    assert out.rstrip().endswith("rollout ended: RolledBack")

    history = cli("history", model_name)
    rows = [line.split()[:3] for line in history.stdout.splitlines()[1:]]
    assert rows == [["0", "1.0.0", "Deployed"], ["1", "1.1.0", "Promoted"], ["2", "1.2.0", "Aborted"]], (
        history
    )
    header, *lines = history.stdout.splitlines()
    uri_column = header.split().index("URI")
    uris = [line.split()[uri_column] for line in lines]
    assert uris == [f"file:///models/{model_name}/{v}" for v in ("1.0.0", "1.1.0", "1.2.0")], history

    # retry restarts 1.2.0 from step 0 (acknowledged through status.lastRetryToken).
    retried = cli("retry", model_name)
    assert retried.returncode == 0, retried
    wait_status(
        api,
        model_name,
        lambda s: s.get("canaryVersion") == "1.2.0" and s.get("phase") in ("Progressing", "Paused"),
        30,
    )
    # pause holds the rollout (acknowledged as Paused/UserPaused); resume lets it go on.
    paused = cli("pause", model_name)
    assert paused.returncode == 0, paused
    held = get_model(api, model_name)["status"]
    assert (held["phase"], held["pauseReason"]) == ("Paused", "UserPaused")
    resumed = cli("resume", model_name)
    assert resumed.returncode == 0, resumed
    assert get_model(api, model_name)["status"].get("pauseReason") != "UserPaused"

    # undo to revision 1: spec.model back to 1.1.0 (the stable), the rollout is cancelled.
    assert cli("abort", model_name).returncode == 0
    undone = cli("undo", model_name, "--to-revision", "1")
    assert undone.returncode == 0, undone
    spec_model = get_model(api, model_name)["spec"]["model"]
    assert spec_model == {"version": "1.1.0", "uri": f"file:///models/{model_name}/1.1.0"}
    done = cli("status", model_name, "--watch", "--timeout", "30s")
    assert done.returncode == 0, done


@pytest.mark.prometheus
@pytest.mark.timeout(180)
def test_watch_follows_judged_rollouts_to_their_end(
    api: Any, stack: Any, operator: Callable[..., Any], cli: Callable[..., Any], model_name: str
) -> None:
    """Rollouts judged on NDCG@3 from a real Prometheus: promoted (exit 0), rolled back (exit 1)."""
    api.create(quality_slo())
    operator()
    # Pauses make the steps last long enough to watch them go by.
    deploy_healthy(
        api, model_name, steps=[{"weight": 25, "pause": "5s"}, {"weight": 50, "pause": "5s"}, {"weight": 100}]
    )
    start_rollout(api, model_name, "1.1.0")
    done = cli("status", model_name, "--watch", "--timeout", "90s", timeout=120)
    print(
        f"=== kubectl rankops status --watch (good canary), exit code {done.returncode} ===\n" + done.stdout
    )
    assert done.returncode == 0, done.stderr
    assert "Last analysis: Pass" in done.stdout and done.stdout.rstrip().endswith("rollout ended: Healthy")
    assert "Phase:         Progressing" in done.stdout and "Canary:        1.1.0  weight 50" in done.stdout

    stack.use(model_name, "1.1.0", "1.2.0", stable_mean=0.8, canary_mean=0.5)
    start_rollout(api, model_name, "1.2.0")
    done = cli("status", model_name, "--watch", "--timeout", "90s", timeout=120)
    print(f"=== kubectl rankops status --watch (bad canary), exit code {done.returncode} ===\n" + done.stdout)
    assert done.returncode == 1, done.stderr
    assert "Last analysis: Fail" in done.stdout and done.stdout.rstrip().endswith("rollout ended: RolledBack")

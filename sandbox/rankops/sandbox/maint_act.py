"""The demo's maintenance act: MaintenanceWindows that open now run a Backup Job, then a
RestoreTest Job of what it published and a DriftCheck Job, for the stable model (real
processes in the sandbox's runtime); the act reports the Jobs, their results and the backup
inventory the operator wrote to the window's status.

Two windows, as one would schedule them (backup at 02:00, restore drill and drift check at
03:00): the tasks of one window start together, and a restore test needs the backup to exist.
Each schedule is this very minute of today (UTC) with a one-hour duration: a new window looks
back one window length, so the operator starts its Jobs at once, and the next start is a day
away.

The DriftCheck Job (``rankops drift``) asks every ready serving pod of the model for its
rolling window of live query features at ``podIP:8080``, the address and port a cluster
would give it (each sandbox pod has a loopback address of its own), and judges them against
the artifact's reference with ``minSamples: DRIFT_MIN_SAMPLES``; the act opens that window
only once the ready stable pods hold that many distinct live queries between them (a stable pod that
started moments ago, after a promotion, has not seen them yet), as an operator would schedule
a drift check after the traffic of a day rather than on a fresh pod. The act
reads the Job's verdict from its pod's log (as ``kubectl logs job/…`` would): a check that
found drift did its chore too (its Job fails with ``DriftDetected``, by design), so the act
succeeds when Backup and RestoreTest succeeded and the DriftCheck reached the pods and
judged them (``NoDrift`` or ``Drift``); the verdict is in the summary.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from rankops.sandbox.stack import Sandbox
from rankops.sandbox.timeline import Recorder
from rankops.serving.drift_check import distinct_rows, fetch_window

__all__ = ["WINDOWS", "live_queries", "maintenance_window", "play_maintenance"]

WINDOWS = ("nightly-backup", "restore-drill")
FINISHED = ("Succeeded", "Failed", "Skipped")
# The replay holds 112 distinct held-out queries and the drift window counts each once.
DRIFT_MIN_SAMPLES = 100


def maintenance_window(name: str, namespace: str, backups: Path, now: datetime) -> dict[str, Any]:
    destination = f"file://{backups.resolve()}"
    tasks: list[dict[str, Any]] = (
        [{"name": "backup", "type": "Backup", "backup": {"destination": destination}}]
        if name == WINDOWS[0]
        else [
            {"name": "restore-test", "type": "RestoreTest", "restoreTest": {"source": destination}},
            {"name": "drift", "type": "DriftCheck", "driftCheck": {"minSamples": DRIFT_MIN_SAMPLES}},
        ]
    )
    return {
        "apiVersion": "rankops.dev/v1alpha1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "schedule": f"{now.minute} {now.hour} * * *",
            "timeZone": "UTC",
            "duration": "1h",
            "tasks": tasks,
        },
    }


def _status(sb: Sandbox, name: str, namespace: str) -> dict[str, Any]:
    assert sb.api is not None
    obj = sb.api.get_object("maintenancewindows", name, namespace) or {}
    return dict(obj.get("status") or {})


def _run_window(
    sb: Sandbox, rec: Recorder, name: str, namespace: str, backups: Path, deadline: float
) -> list[dict[str, Any]]:
    """Apply one window and wait until its runs are all finished (or the deadline)."""
    sb.apply(maintenance_window(name, namespace, backups, datetime.now(UTC)))
    seen: dict[str, str] = {}
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = list(_status(sb, name, namespace).get("lastRuns") or [])
        for run in runs:
            if seen.get(str(run.get("jobName"))) != run.get("result"):
                seen[str(run.get("jobName"))] = str(run.get("result"))
                rec.say(f"{name}: Job {run.get('jobName')} ({run.get('type')}) {run.get('result')}")
        if runs and all(r.get("result") in FINISHED for r in runs):
            break
        time.sleep(0.5)
    return runs


def _stable_pod_urls(sb: Sandbox, namespace: str, model: str) -> list[str]:
    assert sb.api is not None
    urls = []
    for pod in sb.api.list_objects("pods", namespace):
        labels = pod["metadata"].get("labels") or {}
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        ours = labels.get("rankops.dev/track") == "stable" and labels.get("app.kubernetes.io/name") == model
        if ours and ready and status.get("podIP"):
            urls.append(f"http://{status['podIP']}:8080")
    return urls


def live_queries(urls: Sequence[str]) -> int:
    """Distinct live queries in the pods' drift windows (``GET /v1/drift/window``), pooled as the
    drift Job pools them (a query two pods served counts once); a pod that fails adds none."""
    rows: list[dict[str, float | str]] = []
    for url in urls:
        try:
            rows.extend(fetch_window(url, timeout_s=5.0).rows)
        except (httpx.HTTPError, ValueError):
            continue
    return len(distinct_rows(rows))


def _wait_for_live_queries(sb: Sandbox, rec: Recorder, namespace: str, model: str, deadline: float) -> None:
    """Until the stable pods saw ``DRIFT_MIN_SAMPLES`` queries (or the deadline: the check judges)."""
    n = 0
    while time.monotonic() < deadline:
        n = live_queries(_stable_pod_urls(sb, namespace, model))
        if n >= DRIFT_MIN_SAMPLES:
            break
        time.sleep(0.5)
    rec.say(
        f"restore-drill: the stable pods hold {n} live queries (the drift check needs {DRIFT_MIN_SAMPLES})"
    )


def play_maintenance(
    sb: Sandbox, rec: Recorder, namespace: str, model: str, backups: Path, timeout: float
) -> dict[str, Any]:
    """Run the backup window, then the restore drill; return the act's result."""
    assert sb.api is not None
    rec.mark("maint: Backup, then RestoreTest + DriftCheck windows")
    t0 = time.monotonic()
    deadline = t0 + timeout
    runs: list[dict[str, Any]] = []
    for name in WINDOWS:
        if name == WINDOWS[1]:
            _wait_for_live_queries(sb, rec, namespace, model, deadline)
        window_runs = _run_window(sb, rec, name, namespace, backups, deadline)
        runs += [{**r, "window": name} for r in window_runs]
        if not window_runs or any(r.get("result") != "Succeeded" for r in window_runs):
            break  # no restore drill of a backup that did not happen
    settled = bool(runs) and all(r.get("result") in FINISHED for r in runs)
    drift_runs = [r for r in runs if r.get("type") == "DriftCheck"]
    drift = _drift_verdict(sb, namespace, str(drift_runs[0].get("jobName"))) if drift_runs else {}
    chores = [r for r in runs if r.get("type") != "DriftCheck"]
    ok = (
        settled
        and len(chores) == len(WINDOWS)
        and all(r.get("result") == "Succeeded" for r in chores)
        and drift.get("verdict") in ("NoDrift", "Drift")
    )
    outcome = "Succeeded" if ok else ("Failed" if settled else "TimedOut")
    rec.mark(f"maint: Jobs {outcome.lower()}")
    jobs = {
        str(j["metadata"]["name"]): j.get("status") or {}
        for j in sb.api.list_objects("jobs", namespace)
        if (j["metadata"].get("labels") or {}).get("rankops.dev/maintenance-window") in WINDOWS
    }
    backup_status = _status(sb, WINDOWS[0], namespace)
    return {
        "act": "maint",
        "expected": "Succeeded",
        "outcome": outcome,
        "seconds": round(time.monotonic() - t0, 1),
        "jobs": [
            {
                "window": r["window"],
                "type": r.get("type"),
                "model": r.get("model"),
                "job": r.get("jobName"),
                "result": r.get("result"),
                "reason": r.get("reason"),
                "message": r.get("message"),
                "succeeded": int((jobs.get(str(r.get("jobName"))) or {}).get("succeeded") or 0),
            }
            for r in runs
        ],
        "backups": [
            {k: b.get(k) for k in ("model", "version", "uri", "sizeBytes", "verified")}
            for b in backup_status.get("backups") or []
        ],
        "drift": drift,
    }


def _drift_verdict(sb: Sandbox, namespace: str, job: str) -> dict[str, Any]:
    """The DriftCheck Job's result line (``rankops drift`` prints one JSON object) from its pod's log."""
    assert sb.api is not None
    pods = [
        p["metadata"]["name"]
        for p in sb.api.list_objects("pods", namespace)
        if (p["metadata"].get("labels") or {}).get("batch.kubernetes.io/job-name") == job
    ]
    for pod in pods:
        for line in reversed(sb.pod_log(namespace, pod).splitlines()):
            try:
                result = json.loads(line)
            except ValueError:
                continue
            if isinstance(result, dict) and "verdict" in result:
                return {
                    "verdict": result.get("verdict"),
                    "n": result.get("n"),
                    "drifted": result.get("drifted"),
                    "pods": [p.get("endpoint") for p in result.get("pods") or []],
                }
    return {}

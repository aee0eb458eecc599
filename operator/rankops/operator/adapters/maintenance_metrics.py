"""The operator's maintenance metrics (``rankops_maintenance_*``, ``rankops_backup_*``,
``rankops_drift_*``), so "alert on backup failures" is one Prometheus rule, e.g.
``rankops_backup_last_run_failed == 1`` or
``time() - rankops_backup_last_success_timestamp_seconds > 2 * 86400``.

One registry per operator process (``MaintenanceMetrics.registry``), served by the operator's
metrics endpoint; gauges are set from each reconcile's status, so they survive restarts as
soon as the first reconcile ran.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from rankops.operator.core.timeutil import parse_time

__all__ = ["MaintenanceMetrics"]


class MaintenanceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        win = ["namespace", "window"]
        model = ["namespace", "model"]
        self.active = Gauge(
            "rankops_maintenance_window_active", "1 while the window is open", win, registry=self.registry
        )
        self.next_start = Gauge(
            "rankops_maintenance_next_window_timestamp_seconds",
            "Start of the next window",
            win,
            registry=self.registry,
        )
        self.missed = Gauge(
            "rankops_maintenance_missed_windows",
            "Window starts missed in total (operator down)",
            win,
            registry=self.registry,
        )
        self.jobs_created = Counter(
            "rankops_maintenance_jobs_created",
            "Jobs created by maintenance windows",
            [*win, "type"],
            registry=self.registry,
        )
        self.task_failed = Gauge(
            "rankops_maintenance_task_last_run_failed",
            "1 when the task's last run for the model failed",
            [*win, "task", "type", "model"],
            registry=self.registry,
        )
        self.task_overran = Gauge(
            "rankops_maintenance_task_overran",
            "1 while the task's Job runs past the window's end",
            [*win, "task", "model"],
            registry=self.registry,
        )
        self.backup_failed = Gauge(
            "rankops_backup_last_run_failed",
            "1 when the model's last backup failed",
            model,
            registry=self.registry,
        )
        self.backup_success = Gauge(
            "rankops_backup_last_success_timestamp_seconds",
            "Completion time of the model's last successful backup",
            model,
            registry=self.registry,
        )
        self.backups = Gauge(
            "rankops_backup_count", "Published backups at the destination", model, registry=self.registry
        )
        self.restore_failed = Gauge(
            "rankops_backup_restore_test_failed",
            "1 when the model's last restore test failed",
            model,
            registry=self.registry,
        )
        self.drift = Gauge(
            "rankops_drift_detected",
            "1 when the model's last drift check found drift",
            model,
            registry=self.registry,
        )
        self.drift_checks = Counter(
            "rankops_drift_checks",
            "Finished drift check Jobs by verdict",
            [*model, "verdict"],
            registry=self.registry,
        )

    def observe(
        self, namespace: str, window: str, status: Mapping[str, Any], created: Sequence[Mapping[str, Any]]
    ) -> None:
        """Set the gauges from a status written by the planner; count the Jobs just created."""
        self.active.labels(namespace, window).set(1 if status.get("active") else 0)
        nxt = parse_time(status.get("nextWindow"))
        if nxt is not None:
            self.next_start.labels(namespace, window).set(nxt.timestamp())
        self.missed.labels(namespace, window).set(float(status.get("missedWindows") or 0))
        for job in created:
            kind = (job.get("metadata", {}).get("labels") or {}).get("rankops.dev/task-type", "")
            self.jobs_created.labels(namespace, window, kind).inc()
        for run in status.get("lastRuns") or []:
            task, kind, model, result = (
                run.get("task", ""),
                run.get("type", ""),
                run.get("model", ""),
                run.get("result"),
            )
            failed = 1 if result == "Failed" else 0
            if result in ("Succeeded", "Failed"):
                self.task_failed.labels(namespace, window, task, kind, model).set(failed)
            self.task_overran.labels(namespace, window, task, model).set(1 if run.get("overran") else 0)
            if kind == "Backup" and result in ("Succeeded", "Failed"):
                self.backup_failed.labels(namespace, model).set(failed)
                done = parse_time(run.get("completionTime"))
                if result == "Succeeded" and done is not None:
                    self.backup_success.labels(namespace, model).set(done.timestamp())
            if kind == "RestoreTest" and result in ("Succeeded", "Failed"):
                self.restore_failed.labels(namespace, model).set(failed)
            if kind == "DriftCheck" and result in ("Succeeded", "Failed"):
                self.drift.labels(namespace, model).set(1 if run.get("reason") == "DriftDetected" else 0)

    def drift_finished(self, namespace: str, model: str, verdict: str) -> None:
        self.drift_checks.labels(namespace, model, verdict).inc()

    def inventory(self, namespace: str, model: str, count: int) -> None:
        self.backups.labels(namespace, model).set(count)

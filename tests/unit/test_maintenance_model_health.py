"""A RankingModel's MaintenanceSucceeded condition from a window's last runs."""

from __future__ import annotations

from rankops.operator.core.maintenance.model_health import model_condition


def run(task: str, model: str, result: str, **extra: str) -> dict[str, str]:
    return {"task": task, "model": model, "result": result, **extra}


def test_no_finished_run_says_nothing() -> None:
    assert model_condition([], "m") is None
    assert model_condition([run("backup", "m", "Running"), run("backup", "other", "Failed")], "m") is None


def test_any_failed_task_makes_it_false_with_the_tasks_reason() -> None:
    runs = [
        run("backup", "m", "Succeeded"),
        run("drift", "m", "Failed", reason="DriftDetected", message="query_length p=0.001"),
        run("restore", "m", "Failed", reason="RestoreTestFailed", message="golden 0.41 < 0.80"),
    ]
    status, reason, message = model_condition(runs, "m")  # type: ignore[misc]
    assert (status, reason) == ("False", "DriftDetected")
    assert "query_length" in message and "1 more failed" in message


def test_all_finished_runs_succeeded_makes_it_true() -> None:
    runs = [run("backup", "m", "Succeeded"), run("drift", "m", "Succeeded"), run("evaluate", "m", "Running")]
    assert model_condition(runs, "m") == ("True", "ChoresSucceeded", "last runs succeeded: backup, drift")

"""Job names and specs for MaintenanceWindow tasks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rankops.operator.core.maintenance.jobs import JobContext, ModelTarget, TaskSpec, build_job, job_name

START = datetime(2026, 6, 1, 2, tzinfo=UTC)
CTX = JobContext("nightly", "prod", "uid-mw", START, START + timedelta(hours=2), "Europe/Berlin")
MODEL = ModelTarget(
    "ranker",
    "uid-rm",
    "rankops/serving:1",
    "1.2.0",
    "s3://models/ranker/1.2.0",
    protected_versions=("1.1.0",),
)
NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@given(
    window=st.from_regex(r"[a-z][a-z0-9-]{0,50}[a-z0-9]", fullmatch=True),
    task=st.from_regex(r"[a-z][a-z0-9-]{0,38}[a-z0-9]", fullmatch=True),
    model=st.from_regex(r"[a-z][a-z0-9-]{0,50}[a-z0-9]", fullmatch=True),
    minutes=st.integers(0, 10**6),
)
def test_job_names_are_valid_deterministic_and_distinct_per_window(
    window: str, task: str, model: str, minutes: int
) -> None:
    start = START + timedelta(minutes=minutes)
    name = job_name(window, task, model, start)
    assert len(name) <= 63 and NAME_RE.match(name)
    assert name == job_name(window, task, model, start)
    assert name != job_name(window, task, model, start + timedelta(minutes=1))
    assert name != job_name(window, task + "x", model, start)


def test_backup_job_runs_backup_then_prune_with_protected_versions() -> None:
    task = TaskSpec("backup", "Backup", destination="s3://backups/", retention=(7, 4, 12), timeout_s=1800)
    job = build_job(task, MODEL, CTX)
    meta, spec = job["metadata"], job["spec"]
    assert meta["name"] == job_name("nightly", "backup", "ranker", START)
    assert (
        meta["ownerReferences"][0] | {"kind": "MaintenanceWindow", "uid": "uid-mw", "controller": True}
        == (meta["ownerReferences"][0])
    )
    assert meta["annotations"]["rankops.dev/window-start"] == "2026-06-01T02:00:00Z"
    assert spec["backoffLimit"] == 0 and spec["activeDeadlineSeconds"] == 1800
    pod = spec["template"]["spec"]
    (init,) = pod["initContainers"]
    assert [init["command"][0], *init["args"]] == [
        "rankops", "backup", "--model", "s3://models/ranker/1.2.0", "--to", "s3://backups/prod/ranker",
    ]  # fmt: skip
    prune = pod["containers"][0]["args"]
    assert prune[:3] == ["prune-backups", "--at", "s3://backups/prod/ranker"]
    assert "Europe/Berlin" in prune
    assert [prune[i + 1] for i, a in enumerate(prune) if a == "--protect"] == ["1.1.0", "1.2.0"]
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    for c in [*pod["containers"], init]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] and not sc["allowPrivilegeEscalation"]
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"]["type"] == "RuntimeDefault"
        assert c["image"] == "rankops/serving:1"


def test_drift_restore_evaluate_jobs() -> None:
    model = ModelTarget(
        **{**MODEL.__dict__, "drift_endpoints": ("http://10.0.0.5:8080", "http://10.0.0.6:8080")}
    )
    drift = build_job(TaskSpec("drift", "DriftCheck", p_value=0.05), model, CTX)["spec"]["template"]["spec"]
    args = drift["containers"][0]["args"]
    assert args[:3] == ["drift", "--model", MODEL.uri]
    assert [args[i + 1] for i, a in enumerate(args) if a == "--endpoint"] == list(model.drift_endpoints)
    restore = build_job(TaskSpec("restore", "RestoreTest", destination="file:///b"), MODEL, CTX)
    assert restore["spec"]["template"]["spec"]["containers"][0]["args"][:5] == [
        "restore", "--version", "1.2.0", "--from", "file:///b/prod/ranker",
    ]  # fmt: skip
    ev = build_job(TaskSpec("eval", "Evaluate", data="s3://data/beir"), MODEL, CTX)
    assert "--record" in ev["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(
    "task",
    [
        TaskSpec("b", "Backup"),
        TaskSpec("e", "Evaluate"),
        TaskSpec("r", "RestoreTest"),
        TaskSpec("x", "Retrain"),
    ],
)
def test_tasks_missing_settings_are_refused(task: TaskSpec) -> None:
    with pytest.raises(ValueError, match=task.name):
        build_job(task, MODEL, CTX)

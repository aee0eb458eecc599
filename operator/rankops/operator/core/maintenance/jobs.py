"""The Jobs a MaintenanceWindow starts, as pure functions of data.

One Job per (window start, task, model). Its name is a function of exactly those (and the
MaintenanceWindow), so an operator restart or a second replica that reconciles the same
window computes the same name and the API server's create-conflict stops a duplicate.

Each task runs a ``rankops`` subcommand in the model's serving image (which holds the whole
``rankops`` package):

- ``Backup``: init container ``rankops backup`` then ``rankops prune-backups`` (retention runs
  only after a successful, verified backup); destination ``<destination>/<namespace>/<model>``.
- ``RestoreTest``: ``rankops restore`` of the served version into a scratch ``emptyDir``.
- ``Evaluate``: ``rankops evaluate --record`` on the task's data (result written beside the
  artifact).
- ``DriftCheck``: ``rankops drift`` against each serving pod's rolling window (endpoints
  resolved by the controller when it creates the Job).

Pods follow Pod Security "restricted" (non-root, read-only root filesystem, no privilege
escalation, all capabilities dropped, seccomp ``RuntimeDefault``, no service-account token).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rankops.operator.core.maintenance.retrain_task import RetrainProgress
from rankops.operator.core.timeutil import format_time

__all__ = [
    "ANNOTATION_WINDOW_END",
    "ANNOTATION_WINDOW_START",
    "GROUP_VERSION",
    "LABEL_MODEL",
    "LABEL_TASK",
    "LABEL_WINDOW",
    "TASK_TYPES",
    "JobContext",
    "ModelTarget",
    "TaskSpec",
    "backup_destination",
    "build_job",
    "chore_container",
    "chore_job_spec",
    "job_name",
    "restricted_pod_spec",
    "task_args",
]

GROUP_VERSION = "rankops.dev/v1alpha1"
KIND = "MaintenanceWindow"
TASK_TYPES = ("Backup", "RestoreTest", "Evaluate", "DriftCheck", "Retrain")
MAX_NAME = 63  # a Job's name also becomes the value of its pods' job-name label
LABEL_NAME = "app.kubernetes.io/name"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_WINDOW = "rankops.dev/maintenance-window"
LABEL_TASK = "rankops.dev/task"
LABEL_TASK_TYPE = "rankops.dev/task-type"
LABEL_MODEL = "rankops.dev/model"
ANNOTATION_WINDOW_START = "rankops.dev/window-start"
ANNOTATION_WINDOW_END = "rankops.dev/window-end"
RUN_AS_USER = 10001
SCRATCH = "/scratch"


@dataclass(frozen=True)
class TaskSpec:
    """One entry of ``spec.tasks`` with defaults applied."""

    name: str
    type: str
    timeout_s: float | None = None
    destination: str | None = None  # Backup / RestoreTest
    retention: tuple[int, int, int] = (7, 4, 12)  # daily, weekly, monthly
    verify: bool = True
    keep: bool = False  # Backup: mark every backup keep (critical models)
    data: str | None = None  # Evaluate
    split: str = "test"
    psi_threshold: float = 0.25  # DriftCheck
    p_value: float = 0.05
    min_samples: int = 200


@dataclass(frozen=True)
class ModelTarget:
    """A RankingModel a window's task applies to, as the controller observed it."""

    name: str
    uid: str
    image: str
    version: str
    uri: str
    protected_versions: tuple[str, ...] = ()  # served or in history: never pruned
    drift_endpoints: tuple[str, ...] = ()  # http://pod:port of each serving pod
    has_retrain: bool = False  # spec.retrain is set: a Retrain task's request can be run
    retrain_progress: tuple[
        RetrainProgress, ...
    ] = ()  # this window's Retrain requests, as status.retrain says


@dataclass(frozen=True)
class JobContext:
    window_name: str
    namespace: str
    window_uid: str
    window_start: datetime
    window_end: datetime
    time_zone: str = "UTC"
    extra_labels: Mapping[str, str] = field(default_factory=dict)


def job_name(window_name: str, task: str, model: str, window_start: datetime) -> str:
    """``<window>-<task>-<model>`` cut to fit, then a digest of all four (and the start)."""
    key = f"{window_name}\0{task}\0{model}\0{format_time(window_start)}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:10]
    prefix = f"{window_name}-{task}-{model}"[: MAX_NAME - len(digest) - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def backup_destination(destination: str, namespace: str, model: str) -> str:
    return f"{destination.rstrip('/')}/{namespace}/{model}"


def task_args(task: TaskSpec, model: ModelTarget, ctx: JobContext) -> list[list[str]]:
    """The command lines the Job runs, in order (all but the last as init containers)."""
    if task.type == "Backup":
        if not task.destination:
            raise ValueError(f"task {task.name}: a Backup task needs backup.destination")
        dest = backup_destination(task.destination, ctx.namespace, model.name)
        backup = ["rankops", "backup", "--model", model.uri, "--to", dest]
        if task.keep:
            backup.append("--keep")
        daily, weekly, monthly = task.retention
        prune = [
            "rankops", "prune-backups", "--at", dest, "--model-name", model.name,
            "--time-zone", ctx.time_zone,
            "--daily", str(daily), "--weekly", str(weekly), "--monthly", str(monthly),
        ]  # fmt: skip
        for version in sorted(set(model.protected_versions) | {model.version}):
            prune += ["--protect", version]
        return [backup, prune]
    if task.type == "RestoreTest":
        if not task.destination:
            raise ValueError(f"task {task.name}: a RestoreTest task needs restoreTest.source")
        source = backup_destination(task.destination, ctx.namespace, model.name)
        return [
            [
                "rankops", "restore", "--version", model.version, "--from", source,
                "--to", f"{SCRATCH}/restore/{model.version}",
            ]
        ]  # fmt: skip
    if task.type == "Evaluate":
        if not task.data:
            raise ValueError(f"task {task.name}: an Evaluate task needs evaluate.data")
        return [
            [
                "rankops",
                "evaluate",
                "--model",
                model.uri,
                "--data",
                task.data,
                "--split",
                task.split,
                "--record",
            ]
        ]
    if task.type == "DriftCheck":
        args = [
            "rankops", "drift", "--model", model.uri,
            "--psi-threshold", repr(task.psi_threshold), "--p-value", repr(task.p_value),
            "--min-samples", str(task.min_samples),
        ]  # fmt: skip
        for endpoint in model.drift_endpoints:
            args += ["--endpoint", endpoint]
        return [args]
    raise ValueError(f"task {task.name}: no Job for task type {task.type!r}")


def chore_container(name: str, image: str, args: Sequence[str], env: list[dict[str, str]]) -> dict[str, Any]:
    """A container running ``args`` under Pod Security "restricted", with /tmp and the scratch volume."""
    return {
        "name": name,
        "image": image,
        "command": [args[0]],
        "args": list(args[1:]),
        "env": env,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "scratch", "mountPath": SCRATCH},
        ],
    }


def restricted_pod_spec(
    containers: list[dict[str, Any]], init: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A pod spec that never restarts, as Pod Security "restricted" asks, with no service-account token."""
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_USER,
            "runAsGroup": RUN_AS_USER,
            "fsGroup": RUN_AS_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {}}, {"name": "scratch", "emptyDir": {}}],
    }
    if init:
        pod_spec["initContainers"] = init
    return pod_spec


def chore_job_spec(pod_spec: dict[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    """A Job spec that runs ``pod_spec`` once; exit 1 (a failed check), 2 (bad input) and 3 (no
    verdict: too little data to judge) stay apart."""
    return {
        # A chore is idempotent and the next window retries it; a retry loop inside a window
        # would only hide a failure from status.
        "backoffLimit": 0,
        # The rule index in the Failed condition's message tells a failed check (exit 1: drift,
        # a corrupted backup) from bad input (exit 2) and from no verdict (exit 3: a drift
        # check with fewer live queries than it needs); see ``observed.job_state``.
        "podFailurePolicy": {
            "rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [2]}},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
            ]
        },
        "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
    }


def build_job(task: TaskSpec, model: ModelTarget, ctx: JobContext) -> dict[str, Any]:
    """The ``batch/v1`` Job for one task and model in the window starting ``ctx.window_start``."""
    name = job_name(ctx.window_name, task.name, model.name, ctx.window_start)
    labels = {
        **dict(ctx.extra_labels),
        LABEL_NAME: model.name,
        LABEL_MANAGED_BY: "rankops",
        LABEL_WINDOW: ctx.window_name,
        LABEL_TASK: task.name,
        LABEL_TASK_TYPE: task.type,
        LABEL_MODEL: model.name,
    }
    env = [
        {"name": "RANKOPS_MODEL", "value": model.name},
        {"name": "RANKOPS_VERSION", "value": model.version},
        {"name": "RANKOPS_MODEL_URI", "value": model.uri},
        {"name": "RANKOPS_TASK", "value": task.name},
        {"name": "RANKOPS_WINDOW_START", "value": format_time(ctx.window_start)},
    ]
    commands = task_args(task, model, ctx)
    containers = [chore_container(task.type.lower(), model.image, commands[-1], env)]
    init = [
        chore_container(f"{task.type.lower()}-{i}", model.image, c, env) for i, c in enumerate(commands[:-1])
    ]
    job_spec = chore_job_spec(restricted_pod_spec(containers, init), labels)
    if task.timeout_s is not None:
        job_spec["activeDeadlineSeconds"] = max(1, int(task.timeout_s))
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": ctx.namespace,
            "labels": labels,
            "annotations": {
                ANNOTATION_WINDOW_START: format_time(ctx.window_start),
                ANNOTATION_WINDOW_END: format_time(ctx.window_end),
            },
            "ownerReferences": [
                {
                    "apiVersion": GROUP_VERSION,
                    "kind": KIND,
                    "name": ctx.window_name,
                    "uid": ctx.window_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": job_spec,
    }

"""The Job controller of the sandbox: each Job's pod runs its container's ``rankops …`` command.

One pod at a time (``parallelism`` and ``completions`` above 1 are run one after another);
a failed pod is replaced after a back-off doubling from 1 s until ``backoffLimit`` (default
6) failures, then the Job fails (``FailureTarget`` and ``Failed``, reason
``BackoffLimitExceeded``); a failed pod whose exit code matches a ``podFailurePolicy`` rule
with action ``FailJob`` fails the Job at once (reason ``PodFailurePolicy``, the message naming
the container, the exit code and the rule's index, as Kubernetes words it). Success sets
``SuccessCriteriaMet`` and ``Complete``, as Kubernetes 1.31+ does. ``suspend: true`` runs
nothing. ``activeDeadlineSeconds`` ends a running Job with reason ``DeadlineExceeded``. Pods
carry ``job-name`` and ``batch.kubernetes.io/job-name`` labels and stay after the Job finished
(``kubectl logs`` has nothing to read, the log file is under the sandbox's work directory).
"""

from __future__ import annotations

import copy
import datetime
import time
from collections.abc import Mapping
from typing import Any

from rankops.sandbox import objects
from rankops.sandbox.objects import Snapshot, pod_ready, utc_now

__all__ = ["JobController"]

MANAGER = "sandbox-job-controller"


def _finished(job: Mapping[str, Any]) -> bool:
    return any(
        c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
        for c in (job.get("status") or {}).get("conditions") or []
    )


def _seconds_since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds()


def _fail_job_rule(policy: Mapping[str, Any], failed_pods: list[dict[str, Any]]) -> str | None:
    """The Failed condition's message of the first FailJob rule a failed pod's exit code matches."""
    for pod in failed_pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            code = ((cs.get("state") or {}).get("terminated") or {}).get("exitCode")
            if code is None or code == 0:
                continue
            for i, rule in enumerate(policy.get("rules") or []):
                on = rule.get("onExitCodes") or {}
                if rule.get("action") != "FailJob" or not on:
                    continue
                if on.get("containerName") and on["containerName"] != cs.get("name"):
                    continue
                values = on.get("values") or []
                if (on.get("operator") == "In") == (code in values):
                    meta = pod["metadata"]
                    return (
                        f"Container {cs.get('name')} for pod {meta.get('namespace')}/{meta['name']} failed "
                        f"with exit code {code} matching FailJob rule at index {i}"
                    )
    return None


class JobController:
    def __init__(self, cluster: Any, backoff_base: float = 1.0) -> None:
        self.cluster = cluster
        self.backoff_base = backoff_base
        self._last_failure: dict[str, float] = {}

    def sync(self, snap: Snapshot) -> None:
        for job in snap.of("batch", "jobs"):
            if not job["metadata"].get("deletionTimestamp") and not _finished(job):
                self._sync_one(snap, job)

    def _sync_one(self, snap: Snapshot, job: Mapping[str, Any]) -> None:
        meta, spec = job["metadata"], job.get("spec") or {}
        old = job.get("status") or {}
        pods = snap.owned("", "pods", meta["uid"])
        phases = [(p.get("status") or {}).get("phase") for p in pods]
        succeeded, failed = phases.count("Succeeded"), phases.count("Failed")
        active = [p for p, ph in zip(pods, phases, strict=True) if ph not in ("Succeeded", "Failed")]
        completions = int(spec.get("completions") or 1)
        backoff_limit = int(spec.get("backoffLimit", 6))
        now = utc_now()
        status: dict[str, Any] = {k: v for k, v in old.items() if k in ("startTime", "conditions")}
        conditions: list[dict[str, Any]] = list(status.get("conditions") or [])

        def finish(*types: str, reason: str | None = None, message: str | None = None) -> None:
            for ctype in types:
                c: dict[str, Any] = {
                    "type": ctype,
                    "status": "True",
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                }
                if reason:
                    c["reason"], c["message"] = reason, message or ""
                conditions.append(c)

        suspended = bool(spec.get("suspend"))
        deadline = spec.get("activeDeadlineSeconds")
        failed_pods = [p for p, ph in zip(pods, phases, strict=True) if ph == "Failed"]
        policy_match = _fail_job_rule(spec.get("podFailurePolicy") or {}, failed_pods)
        if succeeded >= completions:
            finish("SuccessCriteriaMet", "Complete")
            status["completionTime"] = now
        elif policy_match is not None:
            objects.delete(self.cluster, active)
            active = []
            finish("FailureTarget", "Failed", reason="PodFailurePolicy", message=policy_match)
        elif failed > backoff_limit:
            finish(
                "FailureTarget",
                "Failed",
                reason="BackoffLimitExceeded",
                message="Job has reached the specified backoff limit",
            )
        elif deadline and _seconds_since(old.get("startTime")) > float(deadline):
            objects.delete(self.cluster, active)
            active = []
            finish(
                "FailureTarget",
                "Failed",
                reason="DeadlineExceeded",
                message="Job was active longer than specified deadline",
            )
        elif not suspended and not active and self._backoff_over(meta["uid"], failed):
            pod = self._create_pod(job)
            if pod is not None:
                active = [pod]
        if failed and failed > int(old.get("failed") or 0):
            self._last_failure[meta["uid"]] = time.monotonic()
        if active or succeeded or failed:
            status.setdefault("startTime", now)
        status["conditions"] = conditions
        counts = {
            "active": len(active),
            "ready": sum(pod_ready(p) for p in active),
            "succeeded": succeeded,
            "failed": failed,
        }
        status.update({k: v for k, v in counts.items() if v or k == "ready"})
        if not status["conditions"]:
            del status["conditions"]
        objects.write_status(self.cluster, job, status, MANAGER)

    def _backoff_over(self, uid: str, failed: int) -> bool:
        if not failed:
            return True
        last = self._last_failure.get(uid)
        return last is None or time.monotonic() - last >= min(30.0, self.backoff_base * 2 ** (failed - 1))

    def _create_pod(self, job: Mapping[str, Any]) -> dict[str, Any] | None:
        meta = job["metadata"]
        template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
        pod_meta = template.get("metadata") or {}
        spec = template.get("spec") or {}
        spec.setdefault("restartPolicy", "Never")
        spec["nodeName"] = "sandbox"
        labels = {
            **(pod_meta.get("labels") or {}),
            "job-name": meta["name"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "batch.kubernetes.io/controller-uid": meta["uid"],
        }
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{meta['name'][:57]}-{objects.random_suffix()}",
                "namespace": meta["namespace"],
                "labels": labels,
                "annotations": pod_meta.get("annotations") or {},
                "ownerReferences": [objects.controller_ref(job)],
            },
            "spec": spec,
        }
        return objects.create(self.cluster, pod, MANAGER)

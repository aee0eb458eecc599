"""MaintenanceWindow controller: read the window, gather the models it selects and its Jobs,
call the pure planner, then apply Jobs, status and Events.

One reconcile, in order:

1. read the MaintenanceWindow; a spec the core refuses (``61 * * * *``, an unknown time zone)
   gets ``Ready=False/InvalidSpec`` naming the field and nothing else happens;
2. gather the RankingModels it selects (served version and URI, versions in history: never
   pruned), for a DriftCheck the ready serving pods' addresses, for this window's Retrain
   requests what the model's ``status.retrain`` says of them (``core.retrain.request_progress``),
   and the window's own Jobs;
3. ``plan_window``; delete the Jobs ``Replace`` supersedes, create the new ones (a 409 means
   another replica or an earlier run created it: deterministic names make that harmless); wake
   the retrain loop of each model a Retrain task just asked to retrain (it starts that Job);
4. after a Backup run finished, read the destination's inventory (publication records only:
   re-hashing is the verify step's job); write status, post Events on the window and on the
   RankingModel concerned, update the maintenance metrics.

``rollout_freeze(namespace, labels, now)`` is what the RankingModel reconcile asks before a
rollout starts (``rolloutPolicy: OnlyInWindow``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rankops.operator.adapters.backup_store import BackupStoreError, list_backups
from rankops.operator.adapters.kube import ApiError, KubeClient, owned_by, resource_path
from rankops.operator.adapters.maintenance_metrics import MaintenanceMetrics
from rankops.operator.controllers.waiting import PerObject, sleep_until_woken
from rankops.operator.core.conditions import set_condition
from rankops.operator.core.maintenance.freeze import Freeze, rollout_freeze, selects
from rankops.operator.core.maintenance.jobs import LABEL_WINDOW, ModelTarget, backup_destination
from rankops.operator.core.maintenance.model_health import CONDITION, model_condition
from rankops.operator.core.maintenance.observed import ObservedJob, observe_job
from rankops.operator.core.maintenance.planner import (
    Event,
    WindowMeta,
    WindowPlan,
    plan_invalid_window,
    plan_window,
)
from rankops.operator.core.maintenance.retrain_task import REQUESTED, RetrainProgress
from rankops.operator.core.maintenance.spec import MaintenanceWindowSpec, parse_window_spec
from rankops.operator.core.retrain import RetrainState, request_progress
from rankops.operator.core.spec import SpecError
from rankops.operator.core.timeutil import format_time, parse_time

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PostEvent = Callable[[Mapping[str, Any], Any], None]
MAX_INVENTORY = 512
DEFAULT_PORT = 8080


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class WindowResult:
    plan: WindowPlan | None
    requeue_after: float | None


def _versions(rm: Mapping[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(served version, its URI, every version the object names: served, canary, history)."""
    spec, status = rm.get("spec") or {}, rm.get("status") or {}
    model = spec.get("model") or {}
    version = str(status.get("stableVersion") or model.get("version") or "")
    uri = str(status.get("stableUri") or model.get("uri") or "")
    named = {version, str(model.get("version") or ""), str(status.get("canaryVersion") or "")}
    named |= {str(h.get("version") or "") for h in status.get("history") or [] if isinstance(h, Mapping)}
    return version, uri, tuple(sorted(v for v in named if v))


def _ready_endpoints(pods: list[dict[str, Any]], port: int) -> tuple[str, ...]:
    out = []
    for pod in pods:
        status = pod.get("status") or {}
        ready = any(
            c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or []
        )
        ip = status.get("podIP")
        if ready and ip and not (pod.get("metadata") or {}).get("deletionTimestamp"):
            out.append(f"http://{ip}:{port}")
    return tuple(sorted(out))


def _retrain_progress(
    rm: Mapping[str, Any], window: str, runs: list[Mapping[str, Any]]
) -> tuple[RetrainProgress, ...]:
    """What the model's ``status.retrain`` says of this window's open Retrain requests for it."""
    name = (rm.get("metadata") or {}).get("name")
    starts = {
        start
        for r in runs
        if r.get("type") == "Retrain"
        and r.get("model") == name
        and r.get("result") in (REQUESTED, "Running")
        and (start := parse_time(r.get("windowStart"))) is not None
    }
    if not starts:
        return ()
    state = RetrainState.from_status(rm.get("status"))
    found = (request_progress(state, window, start) for start in sorted(starts))
    return tuple(p for p in found if p is not None)


class MaintenanceWindowController:
    def __init__(
        self,
        kube: KubeClient,
        *,
        post_event: PostEvent,
        metrics: MaintenanceMetrics | None = None,
        clock: Clock = utcnow,
        list_store: Callable[[str, str], Awaitable[list[Any]]] | None = None,
        wake_retrain: Callable[[str, str], None] | None = None,
    ) -> None:
        self.kube = kube
        self.wake_retrain = wake_retrain or (lambda namespace, name: None)
        self.post_event = post_event
        self.metrics = metrics or MaintenanceMetrics()
        self.clock = clock
        self._list_store = list_store or self._list_backups_in_thread
        self._objects = PerObject()

    @staticmethod
    async def _list_backups_in_thread(dest: str, model: str) -> list[Any]:
        return await asyncio.to_thread(list_backups, dest, model, verify=False)

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._objects.lock(namespace, name)

    async def reconcile(self, namespace: str, name: str) -> WindowResult:
        async with self.lock(namespace, name):
            return await self._reconcile(namespace, name)

    async def _reconcile(self, namespace: str, name: str) -> WindowResult:
        path = resource_path("MaintenanceWindow", namespace, name)
        obj = await self.kube.get(path)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return WindowResult(None, None)
        meta = obj.get("metadata") or {}
        status = obj.get("status") or {}
        now = self.clock()
        try:
            spec = parse_window_spec(obj.get("spec") or {})
        except SpecError as exc:
            plan = plan_invalid_window(status, exc, now, generation=meta.get("generation"))
            await self.kube.merge_patch(f"{path}/status", {"status": plan.status_patch})
            self._post(obj, plan.events, {})
            return WindowResult(plan, None)
        window = WindowMeta(name, namespace, str(meta.get("uid", "")), meta.get("generation"))
        models = await self._models(namespace, spec, name, status.get("lastRuns") or [])
        jobs = await self._jobs(namespace, name, window.uid)
        plan = plan_window(spec, status, models, jobs, now, meta=window)
        for job_name in plan.delete:
            await self.kube.delete(
                resource_path("Job", namespace, job_name) + "?propagationPolicy=Background"
            )
        for job in plan.create:
            try:
                await self.kube.create(resource_path("Job", namespace), job)
            except ApiError as exc:
                if exc.status != 409:
                    raise
                logger.info(
                    "Job %s/%s exists already (created by an earlier run)", namespace, job["metadata"]["name"]
                )
        patch = dict(plan.status_patch)
        inventory = await self._inventory(spec, namespace, models, status, patch)
        if inventory is not None:
            patch["backups"] = inventory
        await self.kube.merge_patch(f"{path}/status", {"status": patch})
        for model_name in plan.retrain_requested:  # after the write: the request is in lastRuns
            self.wake_retrain(namespace, model_name)
        await self._model_conditions(
            namespace, models, patch.get("lastRuns", status.get("lastRuns")) or [], now
        )
        rms = {m.name: m for m in models}
        self._post(obj, plan.events, {n: self._rm_ref(namespace, m) for n, m in rms.items()})
        self.metrics.observe(namespace, name, patch, plan.create)
        self._count_drift_checks(namespace, status, patch)
        return WindowResult(plan, plan.requeue_after)

    def _count_drift_checks(
        self, namespace: str, before: Mapping[str, Any], after: Mapping[str, Any]
    ) -> None:
        seen = {
            (r.get("task"), r.get("model")): (r.get("jobName"), r.get("result"))
            for r in before.get("lastRuns") or []
        }
        for run in after.get("lastRuns") or []:
            key, now = (run.get("task"), run.get("model")), (run.get("jobName"), run.get("result"))
            if (
                run.get("type") != "DriftCheck"
                or run.get("result") not in ("Succeeded", "Failed")
                or seen.get(key) == now
            ):
                continue
            verdict = (
                "NoDrift"
                if run["result"] == "Succeeded"
                else "Drift"
                if run.get("reason") == "DriftDetected"
                else "Error"
            )
            self.metrics.drift_finished(namespace, str(run.get("model")), verdict)

    async def _models(
        self, namespace: str, spec: MaintenanceWindowSpec, window: str, runs: list[Mapping[str, Any]]
    ) -> list[ModelTarget]:
        rms = await self.kube.list_items(resource_path("RankingModel", namespace))
        want_pods = any(t.type == "DriftCheck" for t in spec.tasks)
        out = []
        for rm in sorted(rms, key=lambda o: o["metadata"]["name"]):
            meta = rm.get("metadata") or {}
            if meta.get("deletionTimestamp") or not selects(spec.selector, meta.get("labels") or {}):
                continue
            version, uri, named = _versions(rm)
            serving = (rm.get("spec") or {}).get("serving") or {}
            endpoints: tuple[str, ...] = ()
            if want_pods:
                pods = await self.kube.list_items(
                    f"/api/v1/namespaces/{namespace}/pods", {"app.kubernetes.io/name": meta["name"]}
                )
                endpoints = _ready_endpoints(pods, int(serving.get("port") or DEFAULT_PORT))
            out.append(
                ModelTarget(
                    name=meta["name"],
                    uid=str(meta.get("uid", "")),
                    image=str(serving.get("image", "")),
                    version=version,
                    uri=uri,
                    protected_versions=named,
                    drift_endpoints=endpoints,
                    has_retrain=bool((rm.get("spec") or {}).get("retrain")),
                    retrain_progress=_retrain_progress(rm, window, runs),
                )
            )
        return out

    async def _jobs(self, namespace: str, name: str, uid: str) -> list[ObservedJob]:
        items = await self.kube.list_items(resource_path("Job", namespace), {LABEL_WINDOW: name})
        observed = (observe_job(j) for j in items if owned_by(j, uid))
        return [j for j in observed if j is not None]

    async def _inventory(
        self,
        spec: MaintenanceWindowSpec,
        namespace: str,
        models: list[ModelTarget],
        status: Mapping[str, Any],
        patch: Mapping[str, Any],
    ) -> list[dict[str, Any]] | None:
        """The backup inventory, re-read when a Backup run finished since the last status."""
        before = {(r.get("task"), r.get("model")): r.get("result") for r in status.get("lastRuns") or []}
        finished = [
            r
            for r in patch.get("lastRuns") or []
            if r.get("type") == "Backup"
            and r.get("result") in ("Succeeded", "Failed")
            and before.get((r.get("task"), r.get("model"))) != r.get("result")
        ]
        if not finished and "backups" in status:
            return None
        tasks = [t for t in spec.tasks if t.type == "Backup" and t.destination]
        if not tasks:
            return None
        out: list[dict[str, Any]] = []
        for task in tasks:
            for model in models:
                dest = backup_destination(task.destination or "", namespace, model.name)
                try:
                    stored = await self._list_store(dest, model.name)
                except (BackupStoreError, OSError) as exc:
                    logger.info("no backup inventory at %s: %s", dest, exc)
                    continue
                self.metrics.inventory(namespace, model.name, len(stored))
                for s in stored:
                    out.append(
                        {
                            "model": model.name,
                            "version": s.backup.version,
                            "uri": s.uri,
                            "takenAt": format_time(s.backup.taken_at),
                            "sizeBytes": s.size_bytes,
                            "sha256": s.manifest_sha256,
                            "verified": s.backup.verified,
                        }
                    )
        out.sort(key=lambda b: (b["model"], b["takenAt"]), reverse=True)
        return out[:MAX_INVENTORY]

    async def _model_conditions(
        self, namespace: str, models: list[ModelTarget], runs: list[Mapping[str, Any]], now: datetime
    ) -> None:
        """Each selected RankingModel's ``MaintenanceSucceeded`` condition, written only when it changes."""
        for model in models:
            verdict = model_condition(runs, model.name)
            if verdict is None:
                continue
            path = resource_path("RankingModel", namespace, model.name)
            rm = await self.kube.get(path)
            if rm is None:
                continue
            old = (rm.get("status") or {}).get("conditions") or []
            new = set_condition(old, CONDITION, *verdict, now, (rm.get("metadata") or {}).get("generation"))
            if list(new) != list(old):
                await self.kube.merge_patch(f"{path}/status", {"status": {"conditions": list(new)}})

    @staticmethod
    def _rm_ref(namespace: str, model: ModelTarget) -> dict[str, Any]:
        return {
            "apiVersion": "rankops.dev/v1alpha1",
            "kind": "RankingModel",
            "metadata": {"name": model.name, "namespace": namespace, "uid": model.uid},
        }

    def _post(
        self, obj: Mapping[str, Any], events: list[Event], models: Mapping[str, Mapping[str, Any]]
    ) -> None:
        for event in events:
            targets = [obj]
            if event.model is not None and event.model in models:
                targets.append(models[event.model])
            for target in targets:
                try:
                    self.post_event(target, event)
                except Exception:  # Events are best effort; never fail a reconcile on them
                    logger.exception("cannot post event %s", event.reason)

    async def rollout_allowed(self, namespace: str, labels: Mapping[str, str], now: datetime) -> bool:
        """The RankingModel controller's rollout gate."""
        return (await self.rollout_freeze(namespace, labels, now)).allowed

    # ----------------------------------------------------------------------- the per-object loop

    def forget(self, namespace: str, name: str) -> None:
        self._objects.forget(namespace, name)

    def wake(self, namespace: str, name: str) -> None:
        self._objects.wake(namespace, name)

    async def run_daemon(
        self,
        namespace: str,
        name: str,
        stopped: Any,
        resync_s: float,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        """The window's timer: reconcile at each window edge the plan names (its start, its end),
        when a Job of the window changes (``wake``), and at least every ``resync_s``."""
        wake = self._objects.wakeup(namespace, name)
        failures = 0
        while not stopped:
            try:
                wake.clear()
                result = await self.reconcile(namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the timer alive: log, back off, retry
                failures += 1
                delay = min(resync_s, 0.5 * 2 ** min(failures, 6))
                log.warning("reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            else:
                failures = 0
                requeue = result.requeue_after
                # Wake a little after the edge, so the clock reads past it.
                delay = resync_s if requeue is None else min(requeue + 0.05, resync_s)
            await sleep_until_woken(stopped, wake, max(delay, 0.05))

    async def rollout_freeze(self, namespace: str, labels: Mapping[str, str], now: datetime) -> Freeze:
        """Change freeze for a RankingModel with ``labels`` (windows with an invalid spec gate nothing)."""
        windows = []
        for obj in await self.kube.list_items(resource_path("MaintenanceWindow", namespace)):
            try:
                windows.append((obj["metadata"]["name"], parse_window_spec(obj.get("spec") or {})))
            except SpecError:
                continue
        return rollout_freeze(windows, labels, now)

"""The retrain controller: a RankingModel's ``spec.retrain`` triggers, its retrain Job, and the
candidate's promotion. One reconcile reads as observe -> ``plan_retrain`` once -> apply.

1. read the RankingModel (a spec the core rejects is the rollout controller's to report);
2. observe: the served (parent) version from ``status.stableVersion``; for the triggers the
   newest ``DriftDetected`` DriftCheck run of a MaintenanceWindow on this model and the
   windows' ``Requested`` Retrain tasks for it (``status.lastRuns``), the QualitySLO's
   ``status.quality.retrainRequest``, and the feedback logged since the parent's manifest
   ``created`` against the base training queries (``adapters.retrain_store``, in a thread);
   for a running retrain its Job and, once finished, the candidate's ``manifest.json`` at the
   candidate URI;
3. ``plan_retrain``; create the Job it asks for (a 409 means an earlier pass or another replica
   created it: the name is deterministic), write ``status.retrain`` as a merge patch of what
   changed (nothing when nothing did), post the Events, and wake the rollout loop when an
   automatic promotion began or ended (the rollout plans from ``effective_spec``) and the
   windows whose requests the status answers when it changed (their ``lastRuns`` follow it).

The per-object loop (``run_daemon``) runs at the schedule's next time, when a retrain Job changes
(``wake``, from the Job watch) and at least every resync interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rankops.operator import api
from rankops.operator.adapters.kube import ApiError, KubeClient, owned_by, resource_path
from rankops.operator.adapters.retrain_store import (
    RetrainStoreError,
    count_feedback,
    count_train_queries,
    read_manifest,
)
from rankops.operator.controllers.waiting import PerObject, Stopped, sleep_until_woken
from rankops.operator.core.diff import merge_patch_between
from rankops.operator.core.events import Event
from rankops.operator.core.maintenance.observed import job_state
from rankops.operator.core.retrain import (
    LABEL_RETRAIN,
    JobOutcome,
    NewData,
    RetrainObserved,
    RetrainPlan,
    RetrainState,
    RetrainTarget,
    RolloutView,
    TriggerInputs,
    drift_from_windows,
    plan_retrain,
    quality_request_from_status,
    requests_from_windows,
)
from rankops.operator.core.spec import RankingModelSpec, SpecError, parse_ranking_model_spec
from rankops.operator.core.timeutil import parse_time

__all__ = ["RetrainController"]

logger = logging.getLogger(__name__)

EventPoster = Callable[[Mapping[str, Any], Event], None]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _new_data(parent_uri: str, log: str, data: str) -> NewData | None:
    """Feedback since the parent was created vs the base training queries (blocking)."""
    manifest = read_manifest(parent_uri)
    created = parse_time(str((manifest or {}).get("created") or "")) if manifest else None
    if created is None:
        raise RetrainStoreError(f"{parent_uri}: no manifest with a 'created' time")
    return NewData(records=count_feedback(log, created.timestamp()), base=count_train_queries(data))


class RetrainController:
    def __init__(
        self,
        kube: KubeClient,
        *,
        post_event: EventPoster | None = None,
        clock: Clock = utcnow,
        wake_model: Callable[[str, str], None] | None = None,
        wake_window: Callable[[str, str], None] | None = None,
    ) -> None:
        self.kube = kube
        self.post_event = post_event or (lambda obj, event: None)
        self.clock = clock
        self.wake_model = wake_model or (lambda namespace, name: None)
        self.wake_window = wake_window or (lambda namespace, name: None)
        self._objects = PerObject()

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._objects.lock(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        self._objects.forget(namespace, name)

    def wake(self, namespace: str, name: str) -> None:
        self._objects.wake(namespace, name)

    async def reconcile(self, namespace: str, name: str) -> RetrainPlan | None:
        async with self.lock(namespace, name):
            return await self._reconcile(namespace, name)

    async def _reconcile(self, namespace: str, name: str) -> RetrainPlan | None:
        path = resource_path(api.RANKING_MODEL, namespace, name)
        obj = await self.kube.get(path)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return None
        status = obj.get("status") or {}
        try:
            spec = parse_ranking_model_spec(obj.get("spec") or {})
        except SpecError:
            return None  # the rollout controller reports it (condition Degraded, InvalidSpec)
        state = RetrainState.from_status(status)
        if spec.retrain is None and state.promotion is None and not state.running:
            return None
        if not status.get("stableVersion"):
            return None  # nothing served yet: nothing to retrain from
        observed = await self._observe(namespace, name, obj, spec, state)
        plan = plan_retrain(spec, state, observed, self.clock())
        await self._apply(obj, path, plan)
        return plan

    async def _observe(
        self, namespace: str, name: str, obj: Mapping[str, Any], spec: RankingModelSpec, state: RetrainState
    ) -> RetrainObserved:
        status = obj.get("status") or {}
        meta = obj["metadata"]
        target = RetrainTarget(
            name=name,
            namespace=namespace,
            uid=str(meta.get("uid", "")),
            parent_version=str(status.get("stableVersion")),
            parent_uri=str(status.get("stableUri") or spec.model.uri),
        )
        triggers = TriggerInputs(parent_version=target.parent_version)
        retrain = spec.retrain
        if retrain is not None and not state.running:
            windows = await self.kube.list_items(resource_path(api.MAINTENANCE_WINDOW, namespace))
            drift = drift_from_windows(windows, name) if retrain.triggers.drift is not None else None
            new_data = None
            trainer = retrain.trainer
            if retrain.triggers.new_data is not None and trainer.feedback_log and trainer.data:
                try:
                    new_data = await asyncio.to_thread(
                        _new_data, target.parent_uri, trainer.feedback_log, trainer.data
                    )
                except RetrainStoreError as exc:
                    logger.warning("%s/%s: new-data trigger cannot count: %s", namespace, name, exc)
            triggers = TriggerInputs(
                target.parent_version,
                drift,
                quality_request_from_status(status),
                new_data,
                requests_from_windows(windows, name),
            )
        job, manifest, manifest_error = None, None, None
        # By label (the chart grants Jobs list/watch/create/delete, as chores need).
        jobs = [
            j
            for j in await self.kube.list_items(resource_path("Job", namespace), {LABEL_RETRAIN: name})
            if owned_by(j, target.uid)
        ]
        active = tuple(sorted(j["metadata"]["name"] for j in jobs if job_state(j)[0] == "Running"))
        if state.running and state.run is not None:
            raw = next((j for j in jobs if j["metadata"].get("name") == state.run.job), None)
            if raw is not None:
                job_status = raw.get("status") or {}
                kind, failure, message = job_state(raw)
                job = JobOutcome(kind, failure, message, parse_time(job_status.get("completionTime")))
            if job is None or job.state != "Running":
                try:
                    manifest = await asyncio.to_thread(read_manifest, state.run.candidate_uri)
                except RetrainStoreError as exc:
                    manifest_error = str(exc)
        return RetrainObserved(
            target=target,
            image=spec.serving.image,
            rollout=RolloutView.from_status(status),
            triggers=triggers,
            job=job,
            manifest=manifest,
            manifest_error=manifest_error,
            active_jobs=active,
        )

    async def _apply(self, obj: Mapping[str, Any], path: str, plan: RetrainPlan) -> None:
        namespace = obj["metadata"]["namespace"]
        if plan.job is not None:
            try:
                await self.kube.create(resource_path("Job", namespace), plan.job)
                logger.info("created retrain Job %s/%s", namespace, plan.job["metadata"]["name"])
            except ApiError as exc:
                if exc.status != 409:
                    raise
                logger.info("retrain Job %s/%s exists already", namespace, plan.job["metadata"]["name"])
        old = (obj.get("status") or {}).get("retrain") or {}
        patch = merge_patch_between(old, plan.status)
        if patch:
            await self.kube.merge_patch(f"{path}/status", {"status": {"retrain": patch}})
            for window in sorted({f.window for f in plan.state.fired if f.window}):
                self.wake_window(namespace, window)
        for event in plan.events:
            try:
                self.post_event(obj, event)
            except Exception:  # Events are best effort; never fail a reconcile on them
                logger.exception("cannot post event %s", event.reason)
        if plan.wake_rollout:
            self.wake_model(namespace, obj["metadata"]["name"])

    async def run_daemon(
        self,
        namespace: str,
        name: str,
        stopped: Stopped,
        resync_s: float,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        wake = self._objects.wakeup(namespace, name)
        failures = 0
        while not stopped:
            delay = resync_s
            try:
                wake.clear()
                plan = await self.reconcile(namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive: log, back off, retry
                failures += 1
                delay = min(resync_s, 0.5 * 2 ** min(failures, 6))
                log.warning(
                    "retrain reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay
                )
            else:
                failures = 0
                if plan is not None and plan.requeue_after is not None:
                    delay = min(resync_s, plan.requeue_after + 0.05)  # a little past the cron time
            await sleep_until_woken(stopped, wake, max(delay, 0.05))

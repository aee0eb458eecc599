"""The RankingModel controller: one reconcile reads as observe -> decide once -> apply.

``RankingModelController.reconcile(namespace, name)``:

1. read the RankingModel fresh (a stale status is never planned from) and parse its spec once;
2. observe: the child Deployments' readiness; if ``analysis_due`` says a look is due, the
   QualitySLO's objectives from the ``MetricsSource``, judged into a ``Verdict``;
3. decide: ``plan_rollout`` once;
4. apply: children from ``build_children(plan.state)`` in their order (create if absent, patch
   only where ``needs_update``; owned children no longer built are deleted, checked once per spec
   generation), the status changes as a merge patch through ``/status`` (only when there are
   any), the plan's Events.

A reconcile that finds nothing to change makes no write. Reconciles of one object are serialised
by a per-object lock; ``run_daemon`` is the per-object loop that follows the plan's requeue times
and otherwise resyncs, woken at once by ``wake`` (create/update/annotation handlers, child
Deployment events).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rankops.operator import api
from rankops.operator.adapters.kube import ChildrenApplier, KubeClient, deployment_ready, resource_path
from rankops.operator.adapters.prometheus import MetricsSource, MetricsUnavailable
from rankops.operator.controllers.waiting import PerObject, Stopped, sleep_until_woken
from rankops.operator.core.children import build_children
from rankops.operator.core.events import Event
from rankops.operator.core.judge import judge
from rankops.operator.core.promql import objective_queries
from rankops.operator.core.retrain import RetrainState, effective_spec, served_condition
from rankops.operator.core.rollout import (
    AnalysisRequest,
    Observed,
    Plan,
    RolloutState,
    analysis_due,
    merge_patch,
    plan_invalid_spec,
    plan_rollout,
)
from rankops.operator.core.spec import (
    Objective,
    RankingModelSpec,
    SpecError,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)
from rankops.operator.core.verdict import ObjectiveData, TrackSummary, Verdict

__all__ = ["CHILD_KINDS", "RankingModelController", "Result"]

logger = logging.getLogger(__name__)

# Every kind ``build_children`` may produce: what a reconcile may have to prune.
CHILD_KINDS = ("Deployment", "Service", "HTTPRoute")

EventPoster = Callable[[Mapping[str, Any], Event], None]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class Result:
    """What one reconcile did (for the daemon's scheduling, logs and tests)."""

    plan: Plan | None
    phase: str | None = None
    children_written: int = 0
    status_written: bool = False

    @property
    def requeue_after(self) -> float | None:
        return None if self.plan is None else self.plan.requeue_after


@dataclasses.dataclass(frozen=True)
class LoopTiming:
    """How the per-object loop schedules itself (``OperatorConfig`` supplies the values)."""

    resync_interval: float = 60.0
    min_requeue: float = 0.05
    settle_requeue: float = 0.1


# (namespace, the model's labels, now) -> may a new rollout start now?
RolloutGate = Callable[[str, Mapping[str, str], datetime], Awaitable[bool]]


class RankingModelController:
    def __init__(
        self,
        kube: KubeClient,
        metrics: MetricsSource,
        *,
        post_event: EventPoster | None = None,
        clock: Clock = utcnow,
        analysis_interval: float | None = None,
        rollout_gate: RolloutGate | None = None,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.applier = ChildrenApplier(kube)
        self.post_event = post_event or (lambda obj, event: None)
        self.clock = clock
        self.analysis_interval = analysis_interval
        # The change freeze (MaintenanceWindow rolloutPolicy OnlyInWindow); None: never frozen.
        self.rollout_gate = rollout_gate
        self._objects = PerObject()
        # (uid, generation) each model's children were last pruned for: pruning lists every
        # child kind, so it runs once per spec generation (and once after a restart), not on
        # every reconcile. Only a spec change can make the core stop building a child.
        self._pruned: dict[tuple[str, str], tuple[str, int | None]] = {}

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._objects.lock(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        """The object is gone: drop what this controller keeps about it."""
        self._objects.forget(namespace, name)
        self._pruned.pop((namespace, name), None)

    def wake(self, namespace: str, name: str) -> None:
        """Make the object's loop reconcile now (a new plan may change when it should look next)."""
        self._objects.wake(namespace, name)

    async def reconcile(self, namespace: str, name: str, *, trigger: str = "") -> Result:
        async with self.lock(namespace, name):
            result = await self._reconcile(namespace, name)
        if result.plan is not None and (result.status_written or result.children_written):
            logger.info(
                "%s %s/%s: phase %s, weight %s, %d child writes",
                trigger or "reconcile",
                namespace,
                name,
                result.phase,
                result.plan.state.canary_weight,
                result.children_written,
            )
        return result

    # ----------------------------------------------------------------------- the reconcile

    async def _reconcile(self, namespace: str, name: str) -> Result:
        path = resource_path(api.RANKING_MODEL, namespace, name)
        obj = await self.kube.get(path)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return Result(plan=None)
        meta = obj["metadata"]
        state = RolloutState.from_status(obj.get("status"))
        generation = meta.get("generation")
        now = self.clock()
        try:
            spec = self._spec(obj.get("spec") or {})
        except SpecError as exc:
            plan = plan_invalid_spec(state, exc, now, generation=generation)
            return await self._record(obj, path, plan, children_written=0)
        # An automatically promoted retrain candidate stands in for spec.model (never edited)
        # until spec.model changes; the condition says when the served version is not the spec's.
        retrain = RetrainState.from_status(obj.get("status"))
        declared, spec = spec, effective_spec(spec, retrain)

        observed = await self._observe(namespace, name)
        annotations = meta.get("annotations") or {}
        request = analysis_due(spec, state, now, annotations=annotations)
        verdict = None if request is None else await self.analyse(namespace, name, request, now)
        allowed = True
        if self.rollout_gate is not None:
            allowed = await self.rollout_gate(namespace, meta.get("labels") or {}, now)
        plan = plan_rollout(
            spec,
            state,
            verdict,
            now,
            annotations=annotations,
            generation=generation,
            observed=observed,
            rollout_allowed=allowed,
        )

        served = served_condition(
            plan.status.get("conditions"), declared, retrain, plan.state.stable_version, now, generation
        )
        if served is not None:
            plan = dataclasses.replace(plan, status={**plan.status, "conditions": served})
        written = await self._apply_children(namespace, name, meta, build_children(meta, spec, plan.state))
        return await self._record(obj, path, plan, children_written=written)

    def _spec(self, raw: Mapping[str, Any]) -> RankingModelSpec:
        spec = parse_ranking_model_spec(raw)
        analysis = spec.rollout.analysis
        if self.analysis_interval is not None and analysis is not None:  # operator-wide override
            analysis = dataclasses.replace(analysis, interval_s=self.analysis_interval)
            spec = dataclasses.replace(spec, rollout=dataclasses.replace(spec.rollout, analysis=analysis))
        return spec

    async def _observe(self, namespace: str, name: str) -> Observed:
        stable, canary = await asyncio.gather(
            self.kube.get(resource_path("Deployment", namespace, f"{name}-stable")),
            self.kube.get(resource_path("Deployment", namespace, f"{name}-canary")),
        )
        return Observed(canary_ready=deployment_ready(canary), stable_ready=deployment_ready(stable))

    async def _apply_children(
        self, namespace: str, name: str, meta: Mapping[str, Any], desired: list[dict[str, Any]]
    ) -> int:
        """Apply the children in their order, then prune owned ones no longer built; the writes made."""
        written = 0
        for child in desired:
            applied = await self.applier.apply(child)
            if applied.action != "unchanged":
                written += 1
                logger.info("%s %s/%s %s", applied.action, applied.kind, namespace, applied.name)
        return written + await self._prune(namespace, name, meta, desired)

    async def _prune(
        self, namespace: str, name: str, meta: Mapping[str, Any], desired: list[dict[str, Any]]
    ) -> int:
        """Delete owned children the core no longer builds (after applying the wanted ones)."""
        uid = str(meta.get("uid") or "")
        mark = (uid, meta.get("generation"))
        if not uid or self._pruned.get((namespace, name)) == mark:
            return 0
        labels = {api.LABEL_NAME: name, api.LABEL_MANAGED_BY: api.MANAGED_BY}
        deleted = await self.applier.prune(namespace, uid, labels, desired, CHILD_KINDS)
        for applied in deleted:
            logger.info("deleted %s/%s %s (no longer wanted)", applied.kind, namespace, applied.name)
        self._pruned[(namespace, name)] = mark
        return len(deleted)

    async def _record(
        self, obj: Mapping[str, Any], path: str, plan: Plan, *, children_written: int
    ) -> Result:
        """Write what changed in the status (if anything) and post the plan's Events."""
        patch = merge_patch(obj.get("status") or {}, plan.status)
        written = bool(patch)
        if written:
            await self.kube.merge_patch(f"{path}/status", {"status": patch})
        for event in plan.events:
            try:
                self.post_event(obj, event)
            except Exception:  # Events are best effort; never fail a reconcile on them
                logger.exception("cannot post event %s", event.reason)
        return Result(
            plan=plan, phase=plan.state.phase, children_written=children_written, status_written=written
        )

    # ----------------------------------------------------------------------- analysis observations

    async def analyse(self, namespace: str, name: str, request: AnalysisRequest, now: datetime) -> Verdict:
        """Run one analysis look: the QualitySLO's objectives judged on data from the MetricsSource."""
        common: dict[str, Any] = {"now": now, "look": request.look, "planned_looks": request.planned_looks}
        slo_obj = await self.kube.get(resource_path(api.QUALITY_SLO, namespace, request.slo_ref))
        if slo_obj is None:
            return Verdict.unavailable(
                "SLONotFound", f"QualitySLO {namespace}/{request.slo_ref} not found", **common
            )
        try:
            slo = parse_quality_slo_spec(slo_obj.get("spec") or {})
        except SpecError as exc:
            return Verdict.unavailable(
                "InvalidSLO", f"QualitySLO {namespace}/{request.slo_ref}: {exc}", **common
            )
        observations = await asyncio.gather(
            *(self.observe_objective(objective, name, request, now) for objective in slo.objectives)
        )
        data = {objective.name: obs for objective, obs in zip(slo.objectives, observations, strict=True)}
        return judge(
            slo.objectives,
            data,
            evidence=request.evidence,
            now=now,
            elapsed_s=request.window_s,
            min_samples=request.min_samples,
            look=request.look,
            planned_looks=request.planned_looks,
        )

    async def observe_objective(
        self, objective: Objective, model: str, request: AnalysisRequest, now: datetime | None = None
    ) -> ObjectiveData:
        # Summary objectives accumulate evidence since the rollout started (one fixed window start
        # for every look, so consecutive looks' totals differ by exactly the new samples).
        window = request.window_s if objective.kind == "summary" else request.window_for(objective.window_s)
        try:
            canary, stable = await asyncio.gather(
                self._track(objective, model, "canary", request.canary_version, window, now),
                self._track(objective, model, "stable", request.stable_version, window, now),
            )
        except MetricsUnavailable as exc:
            return ObjectiveData(error=str(exc))
        if objective.kind == "summary":
            assert not isinstance(canary, float) and not isinstance(stable, float)
            return ObjectiveData(canary=canary, stable=stable)
        assert not isinstance(canary, TrackSummary) and not isinstance(stable, TrackSummary)
        return ObjectiveData(canary_value=canary, stable_value=stable)

    async def _track(
        self, objective: Objective, model: str, track: str, version: str, window: float, now: datetime | None
    ) -> TrackSummary | float | None:
        q = objective_queries(objective, model=model, track=track, version=version, window_s=window)
        if q.kind == "value":
            assert q.value is not None
            return await self.metrics.query(q.value)
        if q.series is not None:  # exact increases from raw samples, all at one evaluation time
            count, total, squares = await self.metrics.increases(q.series, window, at=now)
            return TrackSummary.from_increases(count, total, squares)
        assert q.count is not None and q.total is not None and q.squares is not None
        count, total, squares = await asyncio.gather(
            self.metrics.query(q.count), self.metrics.query(q.total), self.metrics.query(q.squares)
        )
        return TrackSummary.from_increases(count, total, squares)

    # ----------------------------------------------------------------------- the per-object loop

    async def run_daemon(
        self,
        namespace: str,
        name: str,
        stopped: Stopped,
        timing: LoopTiming,
        log: logging.Logger | logging.LoggerAdapter[Any],
    ) -> None:
        """Follow the plan's requeue times (analysis looks, pauses, deadlines); resync otherwise."""
        wake = self._objects.wakeup(namespace, name)
        failures = 0
        while not stopped:
            try:
                wake.clear()  # wake-ups from before this reconcile are covered by it
                result = await self.reconcile(namespace, name, trigger="loop")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep the loop alive: log, back off, retry
                failures += 1
                delay = min(timing.resync_interval, 0.5 * 2 ** min(failures, 6))
                log.warning("reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
            else:
                failures = 0
                requeue = result.requeue_after
                delay = timing.resync_interval if requeue is None else min(requeue, timing.resync_interval)
                if result.status_written:
                    # Look once more right away: the new state may already be satisfied by what
                    # is observed now (e.g. a step whose replica split did not change is ready at
                    # once, and no Deployment event will announce it). The follow-up usually
                    # finds nothing to change and writes nothing.
                    delay = min(delay, timing.settle_requeue)
                delay = max(delay, timing.min_requeue)
                log.debug("next reconcile in %.2fs (plan requeue %s)", delay, requeue)
            await sleep_until_woken(stopped, wake, delay)

"""The reconcile loop of one RankingModel: observe, call the core, apply, record.

Thin on purpose: every decision is the core's (``plan_rollout``, ``judge``, ``build_children``,
``needs_update``); this module only gathers observations through the adapters
(``KubeClient`` for the object, its children and its QualitySLO; ``MetricsSource`` for the
judge's data) and writes back what the plan says: children, in the order ``build_children``
gives them (create if absent, merge-patch only when ``needs_update``; delete owned children
``build_children`` no longer returns, such as the HTTPRoute after a switch to replica-ratio
routing: checked once per spec generation), the status through the ``/status`` subresource
(only when the plan's ``status_patch`` is non-empty) and Events. A reconcile that finds
nothing to change makes no write at all.

Every reconcile reads the RankingModel fresh from the API server, so the several triggers
(create/update/resume handlers, annotation changes, the per-object analysis daemon) can be
serialised by a per-object lock without ever planning from a stale status.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rankops.operator.adapters.kube import ChildrenApplier, KubeClient, resource_path
from rankops.operator.adapters.prometheus import MetricsSource, MetricsUnavailable
from rankops.operator.api import LABEL_MANAGED_BY, LABEL_NAME, MANAGED_BY
from rankops.operator.core.builders import build_children, needs_update
from rankops.operator.core.judge import ObjectiveData, TrackSummary, Verdict, judge
from rankops.operator.core.planner import (
    AnalysisRequest,
    Event,
    Observed,
    Plan,
    plan_invalid_spec,
    plan_rollout,
)
from rankops.operator.core.promql import objective_queries
from rankops.operator.core.spec import (
    Objective,
    RankingModelSpec,
    SpecError,
    parse_quality_slo_spec,
    parse_ranking_model_spec,
)

logger = logging.getLogger(__name__)

# Every kind ``build_children`` may produce: what a reconcile may have to prune.
CHILD_KINDS = ("Deployment", "Service", "HTTPRoute")

EventPoster = Callable[[Mapping[str, Any], Event], None]
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def deployment_ready(deployment: Mapping[str, Any] | None) -> bool:
    """All desired replicas of the current generation updated and ready (Deployment conventions)."""
    if deployment is None:
        return False
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    desired = int(spec.get("replicas", 1))
    if int(status.get("observedGeneration", 0)) < int(meta.get("generation", 0)):
        return False
    if desired == 0:
        return True
    return (
        int(status.get("updatedReplicas", 0)) >= desired
        and int(status.get("readyReplicas", 0)) >= desired
        and int(status.get("availableReplicas", 0)) >= desired
    )


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


class Reconciler:
    def __init__(
        self,
        kube: KubeClient,
        metrics: MetricsSource,
        *,
        post_event: EventPoster | None = None,
        clock: Clock = utcnow,
        analysis_interval: float | None = None,
    ) -> None:
        self.kube = kube
        self.metrics = metrics
        self.applier = ChildrenApplier(kube, needs_update)
        self.post_event = post_event or (lambda obj, event: None)
        self.clock = clock
        self.analysis_interval = analysis_interval
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # (uid, generation) each model's children were last pruned for: pruning lists every
        # child kind, so it runs once per spec generation (and once after a restart), not on
        # every reconcile. Only a spec change can make the core stop building a child.
        self._pruned: dict[tuple[str, str], tuple[str, int | None]] = {}

    def lock(self, namespace: str, name: str) -> asyncio.Lock:
        return self._locks.setdefault((namespace, name), asyncio.Lock())

    def forget(self, namespace: str, name: str) -> None:
        self._locks.pop((namespace, name), None)
        self._pruned.pop((namespace, name), None)

    async def reconcile(self, namespace: str, name: str, *, trigger: str = "") -> Result:
        async with self.lock(namespace, name):
            return await self._reconcile(namespace, name, trigger)

    def _spec(self, raw: Mapping[str, Any]) -> RankingModelSpec:
        spec = parse_ranking_model_spec(raw)
        analysis = spec.rollout.analysis
        if self.analysis_interval is not None and analysis is not None:  # operator-wide override
            spec = dataclasses.replace(
                spec,
                rollout=dataclasses.replace(
                    spec.rollout, analysis=dataclasses.replace(analysis, interval_s=self.analysis_interval)
                ),
            )
        return spec

    async def _reconcile(self, namespace: str, name: str, trigger: str) -> Result:
        path = resource_path("RankingModel", namespace, name)
        obj = await self.kube.get(path)
        if obj is None or (obj.get("metadata") or {}).get("deletionTimestamp"):
            return Result(plan=None)
        meta = obj["metadata"]
        status = dict(obj.get("status") or {})
        annotations = dict(meta.get("annotations") or {})
        generation = meta.get("generation")
        now = self.clock()

        try:
            spec = self._spec(obj.get("spec") or {})
        except SpecError as exc:
            plan = plan_invalid_spec(status, exc, now, generation=generation)
            written = await self._write_status(path, plan)
            self._post(obj, plan)
            return Result(plan=plan, phase=plan.status.get("phase"), status_written=written)

        observed = await self._observe(namespace, name)
        plan = plan_rollout(
            spec, status, None, now, annotations=annotations, generation=generation, observed=observed
        )
        if plan.analysis is not None:
            verdict = await self.analyse(namespace, name, plan.analysis, now)
            plan = plan_rollout(
                spec, status, verdict, now, annotations=annotations, generation=generation, observed=observed
            )

        children_written = 0
        desired_children = build_children(meta, spec, plan.status)
        for desired in desired_children:
            applied = await self.applier.apply(desired)
            if applied.action != "unchanged":
                children_written += 1
                logger.info("%s %s/%s %s", applied.action, applied.kind, namespace, applied.name)
        children_written += await self._prune(namespace, name, meta, desired_children)
        written = await self._write_status(path, plan)
        self._post(obj, plan)
        return Result(
            plan=plan,
            phase=plan.status.get("phase"),
            children_written=children_written,
            status_written=written,
        )

    async def _prune(
        self, namespace: str, name: str, meta: Mapping[str, Any], desired: list[dict[str, Any]]
    ) -> int:
        """Delete owned children the core no longer builds (after applying the wanted ones)."""
        uid = str(meta.get("uid") or "")
        mark = (uid, meta.get("generation"))
        if not uid or self._pruned.get((namespace, name)) == mark:
            return 0
        labels = {LABEL_NAME: name, LABEL_MANAGED_BY: MANAGED_BY}
        deleted = await self.applier.prune(namespace, uid, labels, desired, CHILD_KINDS)
        for applied in deleted:
            logger.info("deleted %s/%s %s (no longer wanted)", applied.kind, namespace, applied.name)
        self._pruned[(namespace, name)] = mark
        return len(deleted)

    async def _write_status(self, path: str, plan: Plan) -> bool:
        if not plan.status_patch:
            return False
        await self.kube.merge_patch(f"{path}/status", {"status": plan.status_patch})
        return True

    def _post(self, obj: Mapping[str, Any], plan: Plan) -> None:
        for event in plan.events:
            try:
                self.post_event(obj, event)
            except Exception:  # Events are best effort; never fail a reconcile on them
                logger.exception("cannot post event %s", event.reason)

    async def _observe(self, namespace: str, name: str) -> Observed:
        stable, canary = await asyncio.gather(
            self.kube.get(resource_path("Deployment", namespace, f"{name}-stable")),
            self.kube.get(resource_path("Deployment", namespace, f"{name}-canary")),
        )
        return Observed(canary_ready=deployment_ready(canary), stable_ready=deployment_ready(stable))

    async def analyse(self, namespace: str, name: str, request: AnalysisRequest, now: datetime) -> Verdict:
        """Run one analysis look: the QualitySLO's objectives judged on data from the MetricsSource."""
        common: dict[str, Any] = {"now": now, "look": request.look, "planned_looks": request.planned_looks}
        slo_obj = await self.kube.get(resource_path("QualitySLO", namespace, request.slo_ref))
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
            *(self.observe_objective(objective, name, request) for objective in slo.objectives)
        )
        data = {objective.name: obs for objective, obs in zip(slo.objectives, observations, strict=True)}
        return judge(
            slo.objectives,
            data,
            look=request.look,
            planned_looks=request.planned_looks,
            now=now,
            min_samples=request.min_samples,
        )

    async def observe_objective(
        self, objective: Objective, model: str, request: AnalysisRequest
    ) -> ObjectiveData:
        window = request.window_for(objective.window_s)
        try:
            canary, stable = await asyncio.gather(
                self._track(objective, model, "canary", request.canary_version, window),
                self._track(objective, model, "stable", request.stable_version, window),
            )
        except MetricsUnavailable as exc:
            return ObjectiveData(error=str(exc))
        if objective.kind == "summary":
            assert not isinstance(canary, float) and not isinstance(stable, float)
            return ObjectiveData(canary=canary, stable=stable)
        assert not isinstance(canary, TrackSummary) and not isinstance(stable, TrackSummary)
        return ObjectiveData(canary_value=canary, stable_value=stable)

    async def _track(
        self, objective: Objective, model: str, track: str, version: str, window: float
    ) -> TrackSummary | float | None:
        q = objective_queries(objective, model=model, track=track, version=version, window_s=window)
        if q.kind == "value":
            assert q.value is not None
            return await self.metrics.query(q.value)
        if q.series is not None:  # exact increases from raw samples, all at one evaluation time
            count, total, squares = await self.metrics.increases(q.series, window)
            return TrackSummary.from_increases(count, total, squares)
        assert q.count is not None and q.total is not None and q.squares is not None
        count, total, squares = await asyncio.gather(
            self.metrics.query(q.count), self.metrics.query(q.total), self.metrics.query(q.squares)
        )
        return TrackSummary.from_increases(count, total, squares)


AsyncFn = Callable[..., Awaitable[Any]]

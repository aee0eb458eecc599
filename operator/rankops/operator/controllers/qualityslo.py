"""The QualitySLO controller: evaluate an SLO for every RankingModel using it, write the
status of both, and act on what the core decides.

One evaluation (:meth:`QualitySLOController.evaluate`), run on the SLO's timer
(``spec.evaluation.interval``) and at once for an Alertmanager alert
(:meth:`consume_alerts`), is one sequence:

1. read the QualitySLO (an invalid spec: status message and ``Ready=False``, nothing else)
   and the RankingModels whose ``spec.rollout.analysis.sloRef`` names it;
2. per objective, one grouped query for all of them (``adapters.slo_metrics``); an objective
   Prometheus cannot answer is NoData for every model, and the status says why;
3. ``core.slo.evaluate`` → the QualitySLO status (``Ready`` condition with
   ``observedGeneration``), Events on the SLO for state changes only;
4. per model, ``core.slo.quality.plan_quality`` → its ``status.quality``, ``QualityMet``,
   a rollback or one ladder action; the status is written first (with the object's
   ``resourceVersion``: a concurrent write makes this model wait for the next evaluation,
   and its action with it), then the action is taken and its outcome recorded;
5. notifications (never waited on) and the PrometheusRule where served.

Evaluations of one SLO never overlap (a lock per SLO); an alert for a model evaluates the SLO
that model uses.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from rankops.operator.adapters.kube import ApiError, KubeClient, resource_path
from rankops.operator.adapters.notify import Notification, WebhookNotifier
from rankops.operator.adapters.prometheus import MetricsUnavailable, PrometheusMetricsSource
from rankops.operator.adapters.rules import PrometheusRuleWriter
from rankops.operator.adapters.serving_pods import ServingPods
from rankops.operator.adapters.slo_metrics import objective_series
from rankops.operator.controllers.waiting import PerObject
from rankops.operator.core.conditions import set_condition
from rankops.operator.core.events import Event
from rankops.operator.core.slo.alert_rules import prometheus_rule, rule_group
from rankops.operator.core.slo.evaluate import Evaluation, ModelTarget, evaluate
from rankops.operator.core.slo.objectives import grouped_queries
from rankops.operator.core.slo.policy import LiveSLO, parse_live_slo, parse_post_promotion
from rankops.operator.core.slo.quality import ModelView, QualityPlan, plan_quality
from rankops.operator.core.spec import SpecError

from .alerts import AlertReceiver

__all__ = ["EventPoster", "QualitySLOController", "slo_ref"]

logger = logging.getLogger(__name__)

EventPoster = Callable[[Mapping[str, Any], Event], None]


def slo_ref(model: Mapping[str, Any]) -> str | None:
    analysis = ((model.get("spec") or {}).get("rollout") or {}).get("analysis") or {}
    ref = analysis.get("sloRef") or {}
    return str(ref["name"]) if isinstance(ref, Mapping) and ref.get("name") else None


def _retrain_allowed(spec: Mapping[str, Any]) -> bool:
    """The retrain policy allows a quality-triggered retrain (``triggers.relativeQualityDrop``)."""
    return bool(((spec.get("retrain") or {}).get("triggers") or {}).get("relativeQualityDrop") is not None)


class QualitySLOController:
    def __init__(
        self,
        client: KubeClient,
        metrics: PrometheusMetricsSource,
        *,
        post_event: EventPoster,
        serving: ServingPods | None = None,
        notifier: WebhookNotifier | None = None,
        rules: PrometheusRuleWriter | None = None,
        wake_model: Callable[[str, str], None] = lambda namespace, name: None,
        match_namespace: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.post_event = post_event
        self.serving = serving or ServingPods(client)
        self.notifier = notifier or WebhookNotifier()
        self.rules = rules
        self.wake_model = wake_model
        self.match_namespace = match_namespace
        self.clock = clock
        self._objects = PerObject()
        self._intervals: dict[tuple[str, str], float] = {}
        self.actions: list[tuple[str, str, str]] = []  # (namespace/model, action, outcome): logs, tests

    # ------------------------------------------------------------------ entry points

    async def consume_alerts(self, receiver: AlertReceiver) -> None:
        """Evaluate at once for every firing alert the receiver accepted (runs until cancelled)."""
        while True:
            trigger = await receiver.next_trigger()
            logger.info("alert %s (%s) for %s/%s: evaluating now", trigger.alertname, trigger.severity,
                        trigger.namespace, trigger.model)  # fmt: skip
            try:
                await self.evaluate_model(trigger.namespace, trigger.model)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("evaluation for alert %s on %s/%s failed", trigger.alertname,
                                 trigger.namespace, trigger.model)  # fmt: skip

    async def run_timer(
        self,
        namespace: str,
        name: str,
        sleep: Callable[[float], Awaitable[object]],
        stopped: Callable[[], bool],
    ) -> None:
        """Evaluate every ``spec.evaluation.interval`` until ``stopped()`` (a kopf daemon's flag),
        and at once when :meth:`wake` is called (the spec changed). ``sleep(seconds)`` returns
        early when stopping. A failed evaluation is logged and retried at the next tick."""
        wake = self._objects.wakeup(namespace, name)
        while not stopped():
            wake.clear()  # what woke us is covered by this evaluation
            try:
                await self.evaluate(namespace, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("evaluation of QualitySLO %s/%s failed", namespace, name)
            tasks = {
                asyncio.ensure_future(sleep(self._intervals.get((namespace, name), 60.0))),
                asyncio.ensure_future(wake.wait()),
            }
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()

    def wake(self, namespace: str, name: str) -> None:
        """Evaluate the SLO now (its spec changed)."""
        self._objects.wake(namespace, name)

    def forget(self, namespace: str, name: str) -> None:
        self._objects.forget(namespace, name)
        self._intervals.pop((namespace, name), None)

    async def evaluate_model(self, namespace: str, name: str) -> Evaluation | None:
        model = await self.client.get(resource_path("RankingModel", namespace, name))
        ref = slo_ref(model or {})
        if model is None or ref is None:
            logger.warning("alert for %s/%s: no RankingModel using a QualitySLO", namespace, name)
            return None
        return await self.evaluate(namespace, ref)

    async def evaluate(self, namespace: str, name: str) -> Evaluation | None:
        lock = self._objects.lock(namespace, name)
        async with lock:
            return await self._evaluate(namespace, name)

    # ------------------------------------------------------------------ one evaluation

    async def _evaluate(self, namespace: str, name: str) -> Evaluation | None:
        now = self.clock()
        slo = await self.client.get(resource_path("QualitySLO", namespace, name))
        if slo is None:
            return None
        generation = int((slo.get("metadata") or {}).get("generation") or 0)
        try:
            live = parse_live_slo(slo.get("spec") or {})
        except SpecError as exc:
            await self._slo_status(
                slo, {"message": str(exc)}, "False", "InvalidSpec", str(exc), now, generation
            )
            return None
        self._intervals[(namespace, name)] = live.evaluation.interval_s
        items = await self.client.list_items(resource_path("RankingModel", namespace))
        models = [m for m in items if slo_ref(m) == name and (m.get("status") or {}).get("stableVersion")]
        targets = [
            ModelTarget(
                str(m["metadata"]["name"]),
                str(m["status"]["stableVersion"]),
                m["status"].get("canaryVersion") or None,
            )
            for m in models
        ]
        results, problems = await self._query(live, [t.name for t in targets], namespace, now)
        message = "; ".join(problems)
        ev = evaluate(live, targets, results, slo.get("status"), now, message)
        ready: tuple[Literal["True", "False"], str, str]
        if not targets:
            ready = ("True", "NoModels", "no RankingModel with a stable version uses this QualitySLO")
        elif problems:
            ready = ("False", "MetricsUnavailable", message)
        else:
            ready = ("True", "Evaluated", f"{len(targets)} models, state {ev.state}")
        await self._slo_status(slo, ev.status(), ready[0], ready[1], ready[2], now, generation)
        for model_name, objective, before, after in ev.changes:
            kind: Literal["Normal", "Warning"] = "Warning" if after == "Breached" else "Normal"
            detail = next(o for o in (ev.model(model_name) or ev.models[0]).objectives if o.name == objective)
            value = "no value" if detail.value is None else f"{detail.value:.4g}"
            message = f"{model_name}: {objective} {before or 'new'} -> {after} ({value})"
            self.post_event(slo, Event(kind, f"Objective{after}", message))
        for model in models:
            result = ev.model(str(model["metadata"]["name"]))
            if result is not None:
                await self._act(model, result, live, name, now)
        await self._write_rules(slo, live, [t.name for t in targets])
        return ev

    async def _query(
        self, live: LiveSLO, models: Sequence[str], namespace: str, now: datetime
    ) -> tuple[dict[str, Any], list[str]]:
        if not models:
            return {}, []
        ns = namespace if self.match_namespace else None

        async def one(objective_name: str, queries: Any) -> tuple[str, Any, str | None]:
            try:
                return objective_name, await objective_series(self.metrics, queries, now), None
            except MetricsUnavailable as exc:
                return objective_name, None, f"{objective_name}: {exc}"

        jobs = []
        problems: list[str] = []
        for o in live.objectives:
            try:
                jobs.append(one(o.name, grouped_queries(o, models, live.window_s(o), ns)))
            except ValueError as exc:  # a custom query the live watch cannot run
                problems.append(str(exc))
        answers = await asyncio.gather(*jobs)
        results = {n: series for n, series, _ in answers}
        problems += [p for _, _, p in answers if p]
        return results, problems

    async def _slo_status(
        self,
        slo: Mapping[str, Any],
        status: dict[str, Any],
        ready: Literal["True", "False", "Unknown"],
        reason: str,
        message: str,
        now: datetime,
        generation: int,
    ) -> None:
        conditions = set_condition(
            (slo.get("status") or {}).get("conditions"), "Ready", ready, reason, message, now, generation
        )
        meta = slo["metadata"]
        body = {"status": {**status, "observedGeneration": generation, "conditions": conditions}}
        await self.client.merge_patch(
            resource_path("QualitySLO", meta["namespace"], meta["name"], "status"), body
        )

    # ------------------------------------------------------------------ one model

    async def _act(
        self, model: Mapping[str, Any], result: Any, live: LiveSLO, slo_name: str, now: datetime
    ) -> None:
        meta, spec = model["metadata"], model.get("spec") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        try:
            post_promotion = parse_post_promotion(spec.get("rollout") or {})
        except SpecError:
            post_promotion = None  # the rollout controller reports the spec; no rollback on a bad one
        view = ModelView(
            generation=int(meta.get("generation") or 0),
            spec_version=str((spec.get("model") or {}).get("version") or ""),
            status=model.get("status") or {},
            post_promotion=post_promotion,
            retrain_allowed=_retrain_allowed(spec),
        )
        plan = plan_quality(view, result, slo_name, live.remediation, now)
        path = resource_path("RankingModel", namespace, name, "status")
        try:
            await self.client.merge_patch(
                path,
                {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": plan.status_patch},
            )
        except ApiError as exc:
            if exc.status == 409:  # written meanwhile: the next evaluation plans from the new status
                logger.info("%s/%s changed during the evaluation; acting next time", namespace, name)
                return
            raise
        for event in plan.events:
            self.post_event(model, event)
        if plan.rolled_back:
            self.actions.append((f"{namespace}/{name}", "Rollback", plan.status_patch.get("message", "")))
            self.wake_model(namespace, name)  # the rollout controller moves the stable track now
        if plan.action is not None:
            outcome = await self._take(plan, namespace, name, live, result, now)
            self.actions.append((f"{namespace}/{name}", plan.action, outcome))
            await self.client.merge_patch(path, {"status": plan.with_outcome(outcome)})
            if plan.action == "RollingRestart":
                self.wake_model(namespace, name)
        self._notify(live, namespace, name, plan)

    async def _take(
        self, plan: QualityPlan, namespace: str, name: str, live: LiveSLO, result: Any, now: datetime
    ) -> str:
        try:
            if plan.action == "InvalidateCaches":
                deciding = result.deciding()
                threshold = live.remediation.quality_threshold
                if threshold is None:
                    objective = next(
                        (o for o in live.objectives if deciding and o.name == deciding.name), None
                    )
                    threshold = objective.breach if objective and objective.higher_is_better else 0.65
                outcome = await self.serving.invalidate_caches(namespace, f"{name}-stable", threshold)
                return outcome.describe()
            if plan.action == "RollingRestart":
                await self.serving.rolling_restart(
                    namespace, f"{name}-stable", now
                )  # = status.quality.restartedAt
                return "restart annotation set on the stable Deployment"
            return "retrain requested in status.quality.retrainRequest"
        except (ApiError, OSError) as exc:
            return f"failed: {exc}"

    def _notify(self, live: LiveSLO, namespace: str, name: str, plan: QualityPlan) -> None:
        for kind, text in plan.notifications:
            for target in live.notifications:
                if kind in target.events:
                    self.notifier.submit(
                        self._secret_url(namespace, target.secret_name, target.secret_key),
                        Notification(kind, namespace, name, text),
                    )

    def _secret_url(self, namespace: str, secret: str, key: str) -> Callable[[], Any]:
        async def read() -> str:
            obj = await self.client.get(f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(secret)}")
            data = (obj or {}).get("data") or {}
            if key not in data:
                raise LookupError(f"Secret {namespace}/{secret} has no key {key!r}")
            return base64.b64decode(data[key]).decode().strip()

        return read

    async def _write_rules(self, slo: Mapping[str, Any], live: LiveSLO, models: Sequence[str]) -> None:
        if self.rules is None or not models:
            return
        meta = slo["metadata"]
        owner = {
            "apiVersion": slo["apiVersion"],
            "kind": "QualitySLO",
            "name": meta["name"],
            "uid": meta.get("uid"),
            "controller": True,
            "blockOwnerDeletion": True,
        }
        ns = str(meta["namespace"])
        group = rule_group(str(meta["name"]), ns, live, list(models))
        try:
            await self.rules.apply(prometheus_rule(str(meta["name"]), ns, group, owner))
        except ApiError as exc:
            logger.warning("PrometheusRule for QualitySLO %s/%s not written: %s", ns, meta["name"], exc)

"""kopf registration of the rankops operator: which event calls which controller.

The handlers live in their own ``registry`` (not kopf's process-wide default one): run them
with ``kopf.run(registry=registry)`` (``rankops operator run``) or ``KopfRunner([...],
registry=registry)``. Whatever else in the process registers kopf handlers, or swaps kopf's
default registry (kopf's CLI does when it is given a registry), cannot add handlers to this
operator or take its away.

Triggers of one RankingModel, all ending in ``RankingModelController.reconcile`` (serialised by
a per-object lock):

- ``on.create`` / ``on.update(field="spec")`` / ``on.resume``: reconcile at once (first deploy,
  a new version, restart of the operator: the plan resumes from ``status``);
- ``on.field("metadata.annotations")``: ``rankops.dev/promote|abort|retry`` tokens act at once;
- ``on.event`` of the child Deployments (watch only): readiness changes wake the loop;
- a per-object ``daemon`` (``RankingModelController.run_daemon``): reconciles again when the plan
  asks for it and otherwise every ``RANKOPS_RESYNC_INTERVAL`` seconds to repair drifted children.
  The other handlers wake it, so a new plan is followed at once.

Continuous learning of one RankingModel (``spec.retrain``): a second per-object ``daemon``
(``RetrainController.run_daemon``) fires the triggers, runs the retrain Job and follows its
candidate; ``on.event`` of Jobs labelled ``rankops.dev/retrain`` (watch only) wakes it when a
Job finishes, and a spec change wakes it too.

Triggers of one QualitySLO: a per-object ``daemon`` (``QualitySLOController.run_timer``)
evaluates it every ``spec.evaluation.interval`` and at once after a spec change
(``on.update(field="spec")`` wakes it); the Alertmanager receiver (started with the
operator when ``RANKOPS_ALERTS_PORT`` is set, ``controllers.quality_runtime``) evaluates the SLO
of an alerted model at once. A rollback it writes wakes the RankingModel's loop.

Triggers of one MaintenanceWindow, all ending in ``MaintenanceWindowController.reconcile``:

- ``on.create`` / ``on.update(field="spec")`` / ``on.resume``: wake its timer;
- ``on.event`` of its Jobs (watch only, label ``rankops.dev/maintenance-window``): a Job's
  completion or failure is tracked at once;
- a per-object ``daemon`` (``MaintenanceWindowController.run_daemon``): the window's timer,
  reconciling at each window start and end, and every ``RANKOPS_RESYNC_INTERVAL`` seconds;
- a Retrain task's request wakes the model's retrain loop (which runs the retrain), and a change
  of ``status.retrain`` wakes the windows that asked (their ``lastRuns`` follow it).

With ``RANKOPS_WEBHOOK_PORT`` set, ``rankops operator run`` adds ``register_admission``'s
validating handlers (``controllers.admission``) and the startup handler serves them with kopf's
``WebhookServer`` over HTTPS; the ValidatingWebhookConfiguration is the Helm chart's (kopf
manages none, so the operator needs no RBAC on webhook configurations).

A RankingModel's reconcile asks the MaintenanceWindows of its namespace whether a rollout may
start (``rolloutPolicy: OnlyInWindow``). With ``RANKOPS_METRICS_PORT`` set the operator serves
its maintenance metrics there.

kopf's own footprint: progress and diff-base in annotations under ``kopf.rankops.dev/``, the
finalizer ``rankops.dev/finalizer`` (kopf needs it for daemons; children need none: they carry
owner references and are garbage-collected), Events for warnings and errors only
(``settings.posting.level``); the rollout's own Events are posted explicitly.
"""

from __future__ import annotations

import contextlib
from typing import Any

import kopf

from rankops.operator import api
from rankops.operator.adapters.events import ApiEventPoster
from rankops.operator.adapters.kube import KubeClient, connection_info, post_event, resource_path
from rankops.operator.adapters.maintenance_metrics import MaintenanceMetrics
from rankops.operator.adapters.prometheus import PrometheusMetricsSource
from rankops.operator.adapters.rules import PrometheusRuleWriter
from rankops.operator.adapters.serving_pods import ServingPods
from rankops.operator.controllers.admission import AdmissionController, WebhookConfig
from rankops.operator.controllers.maintenancewindow import MaintenanceWindowController
from rankops.operator.controllers.quality_runtime import QualityRuntime, ReceiverConfig
from rankops.operator.controllers.qualityslo import QualitySLOController
from rankops.operator.controllers.rankingmodel import LoopTiming, RankingModelController
from rankops.operator.controllers.retrain import RetrainController
from rankops.operator.core.retrain import LABEL_RETRAIN
from rankops.operator.peering import PeeringConfig
from rankops.operator.settings import OperatorConfig

RANKING_MODELS = api.resource(api.RANKING_MODEL)
QUALITY_SLOS = api.resource(api.QUALITY_SLO)
MAINTENANCE_WINDOWS = api.resource(api.MAINTENANCE_WINDOW)
LABEL_WINDOW = f"{api.GROUP}/maintenance-window"

registry = kopf.OperatorRegistry()
WEBHOOK_PATH = "/validate"  # the chart's clientConfig paths: /validate/<plural>


class _Credentials:
    """The ConnectionInfo the login handler returned last, shared with our own API client."""

    info: kopf.ConnectionInfo | None = None


CREDENTIALS = _Credentials()


@kopf.on.login(errors=kopf.ErrorsMode.PERMANENT, registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    info = connection_info(**kwargs)
    CREDENTIALS.info = info
    return info


@kopf.on.startup(registry=registry)
async def configure(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    config = OperatorConfig.from_env()
    settings.persistence.finalizer = api.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=api.KOPF_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=api.KOPF_PREFIX, key="last-handled-configuration"
    )
    settings.posting.level = config.events_level
    settings.watching.server_timeout = config.watch_timeout
    settings.watching.client_timeout = config.watch_timeout + 5
    settings.watching.connect_timeout = 5
    settings.networking.request_timeout = 30
    # Several replicas share a kopf peering object (rankops.operator.peering); one needs none.
    peering = PeeringConfig.from_env()
    if peering is None:
        settings.peering.standalone = True
    else:
        peering.apply(settings)

    webhook = WebhookConfig.from_env()
    if webhook is not None:
        # path: kopf takes the rest of `/validate/<plural>` as the handler id (register_admission)
        settings.admission.server = kopf.WebhookServer(
            addr=webhook.host,
            port=webhook.port,
            path=WEBHOOK_PATH,
            certfile=webhook.certfile,
            pkeyfile=webhook.pkeyfile,
        )

    memo.config = config
    memo.kube = KubeClient(lambda: CREDENTIALS.info or connection_info(settings=settings, logger=logger))
    memo.metrics = PrometheusMetricsSource(config.prometheus_url, timeout=config.prometheus_timeout)
    memo.windows = MaintenanceWindowController(
        memo.kube,
        post_event=post_event,
        metrics=MaintenanceMetrics(),
        wake_retrain=lambda namespace, name: memo.retrain.wake(namespace, name),
    )
    memo.rankingmodels = RankingModelController(
        memo.kube,
        memo.metrics,
        post_event=post_event,
        analysis_interval=config.analysis_interval,
        rollout_gate=memo.windows.rollout_allowed,
    )
    memo.retrain = RetrainController(
        memo.kube, post_event=post_event, wake_model=memo.rankingmodels.wake, wake_window=memo.windows.wake
    )
    memo.qualityslos = QualitySLOController(
        memo.kube,
        memo.metrics,
        # through the API, not kopf.event: alerts are handled outside kopf's handler tasks
        post_event=ApiEventPoster(memo.kube),
        serving=ServingPods(memo.kube),
        rules=PrometheusRuleWriter(memo.kube),
        wake_model=memo.rankingmodels.wake,
    )

    async def model_exists(namespace: str, name: str) -> bool:
        return await memo.kube.get(resource_path(api.RANKING_MODEL, namespace, name)) is not None

    memo.admission = AdmissionController(memo.kube)
    memo.quality = QualityRuntime(memo.qualityslos, ReceiverConfig.from_env(), model_exists)
    await memo.quality.start()
    if config.metrics_port is not None:
        from prometheus_client import start_http_server

        server, _thread = start_http_server(config.metrics_port, registry=memo.windows.metrics.registry)
        memo.metrics_server = server
        logger.info("operator metrics on port %s", server.server_port)
    logger.info(
        "rankops operator: prometheus %s, resync every %ss", config.prometheus_url, config.resync_interval
    )


@kopf.on.cleanup(registry=registry)
async def close(memo: Any, **_: Any) -> None:
    quality = memo.get("quality")
    if quality is not None:
        with contextlib.suppress(Exception):
            await quality.stop()
    server = memo.get("metrics_server")
    if server is not None:
        server.shutdown()
        server.server_close()
    for key in ("kube", "metrics"):
        client = memo.get(key)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def _namespace(namespace: str | None, name: str) -> str:
    if namespace is None:  # RankingModels are namespaced; kopf passes None only for cluster objects
        raise kopf.PermanentError(f"RankingModel {name} has no namespace")
    return namespace


async def _reconcile_and_wake(memo: Any, namespace: str | None, name: str, trigger: str) -> None:
    controller: RankingModelController = memo.rankingmodels
    ns = _namespace(namespace, name)
    await controller.reconcile(ns, name, trigger=trigger)
    controller.wake(ns, name)  # a new plan may change when the loop should look next
    memo.retrain.wake(ns, name)  # a spec change may end an automatic promotion or change triggers


@kopf.on.create(*RANKING_MODELS, registry=registry)
async def on_create(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    await _reconcile_and_wake(memo, namespace, name, "create")


@kopf.on.update(*RANKING_MODELS, field="spec", registry=registry)
async def on_spec_change(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    await _reconcile_and_wake(memo, namespace, name, "update")


@kopf.on.resume(*RANKING_MODELS, registry=registry)
async def on_resume(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    await _reconcile_and_wake(memo, namespace, name, "resume")


@kopf.on.field(*RANKING_MODELS, field="metadata.annotations", registry=registry)
async def on_annotations(name: str, namespace: str | None, old: Any, new: Any, memo: Any, **_: Any) -> None:
    old, new = old or {}, new or {}
    if any(old.get(k) != new.get(k) for k in (*api.ROLLOUT_ANNOTATIONS.values(), api.PAUSED_ANNOTATION)):
        await _reconcile_and_wake(memo, namespace, name, "annotation")


@kopf.on.delete(*RANKING_MODELS, optional=True, registry=registry)
async def on_delete(name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    # Children go with the owner (owner references); only the controller's memory needs cleaning.
    memo.rankingmodels.forget(namespace or "", name)
    memo.retrain.forget(namespace or "", name)
    logger.info(
        "RankingModel %s/%s deleted; children are garbage-collected by owner references", namespace, name
    )


@kopf.on.event(*api.resource("Deployment"), labels={api.LABEL_MANAGED_BY: api.MANAGED_BY}, registry=registry)
def on_child_deployment(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A child Deployment changed (the kubelet reported readiness): wake its model's loop.

    Watch-only: no write, no kopf state. The plan waits for canary readiness before analysing
    and for stable readiness after a promotion; without this it would notice only at resync.
    """
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == api.RANKING_MODEL and str(ref.get("apiVersion", "")).startswith(
            f"{api.GROUP}/"
        ):
            memo.rankingmodels.wake(namespace or "", ref.get("name", ""))


@kopf.daemon(*RANKING_MODELS, cancellation_timeout=5.0, registry=registry)
async def rollout_loop(
    name: str, namespace: str | None, memo: Any, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    config: OperatorConfig = memo.config
    timing = LoopTiming(config.resync_interval, config.min_requeue, config.settle_requeue)
    await memo.rankingmodels.run_daemon(_namespace(namespace, name), name, stopped, timing, logger)


@kopf.daemon(*RANKING_MODELS, cancellation_timeout=5.0, registry=registry)
async def retrain_loop(
    name: str, namespace: str | None, memo: Any, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    """spec.retrain: triggers, the retrain Job, the candidate's promotion (controllers.retrain)."""
    config: OperatorConfig = memo.config
    await memo.retrain.run_daemon(_namespace(namespace, name), name, stopped, config.resync_interval, logger)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_RETRAIN: kopf.PRESENT}, registry=registry)
def on_retrain_job(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A retrain Job changed (finished, failed): wake its model's retrain loop. Watch-only."""
    memo.retrain.wake(namespace or "", body.get("metadata", {}).get("labels", {}).get(LABEL_RETRAIN, ""))


@kopf.daemon(*QUALITY_SLOS, cancellation_timeout=5.0, registry=registry)
async def quality_watch(
    name: str, namespace: str | None, memo: Any, stopped: kopf.DaemonStopped, **_: Any
) -> None:
    """Evaluate the QualitySLO on its timer (alerts evaluate it in between)."""

    async def sleep(seconds: float) -> None:
        await stopped.wait(seconds)

    await memo.qualityslos.run_timer(_namespace(namespace, name), name, sleep, lambda: bool(stopped))


@kopf.on.update(*QUALITY_SLOS, field="spec", registry=registry)
def on_slo_spec_change(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    memo.qualityslos.wake(namespace or "", name)  # a new interval or objective counts at once


@kopf.on.delete(*QUALITY_SLOS, optional=True, registry=registry)
async def on_slo_delete(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    memo.qualityslos.forget(namespace or "", name)


# ------------------------------------------------------------------------ MaintenanceWindows


@kopf.on.create(*MAINTENANCE_WINDOWS, registry=registry)
@kopf.on.update(*MAINTENANCE_WINDOWS, field="spec", registry=registry)
@kopf.on.resume(*MAINTENANCE_WINDOWS, registry=registry)
def on_window_change(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    memo.windows.wake(namespace or "", name)


@kopf.on.delete(*MAINTENANCE_WINDOWS, optional=True, registry=registry)
def on_window_delete(name: str, namespace: str | None, memo: Any, **_: Any) -> None:
    memo.windows.forget(namespace or "", name)  # its Jobs go with it (owner references)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_WINDOW: kopf.PRESENT}, registry=registry)
def on_window_job(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A maintenance Job changed (started, completed, failed): wake its window. Watch-only."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == api.MAINTENANCE_WINDOW:
            memo.windows.wake(namespace or "", ref.get("name", ""))


@kopf.daemon(*MAINTENANCE_WINDOWS, cancellation_timeout=5.0, registry=registry)
async def window_timer(
    name: str, namespace: str | None, memo: Any, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    config: OperatorConfig = memo.config
    await memo.windows.run_daemon(namespace or "", name, stopped, config.resync_interval, logger)


# ------------------------------------------------------------------------ admission


def register_admission(target: kopf.OperatorRegistry = registry) -> None:
    """Add the validating handlers, one per resource, with the ids the chart's paths name.

    Separate from the registration above: kopf refuses to start with admission handlers and no
    webhook server, so they are added only when one is configured (``RANKOPS_WEBHOOK_PORT``).
    """
    if any(h.id in _ADMISSION_IDS for h in target._webhooks.get_all_handlers()):
        return  # already added (kopf would run them twice)
    for kind in (api.RANKING_MODEL, api.QUALITY_SLO, api.MAINTENANCE_WINDOW):
        kopf.on.validate(
            *api.resource(kind), id=api.plural(kind), operations=["CREATE", "UPDATE"], registry=target
        )(_validator(kind))


_ADMISSION_IDS = frozenset(
    api.plural(k) for k in (api.RANKING_MODEL, api.QUALITY_SLO, api.MAINTENANCE_WINDOW)
)


def _validator(kind: str) -> Any:
    async def validate(
        body: kopf.Body,
        old: Any,
        new: Any,
        operation: str | None,
        namespace: str | None,
        warnings: list[str],
        memo: Any,
        **_: Any,
    ) -> None:
        controller: AdmissionController = memo.admission
        if not controller.needs_review(operation, new, old):
            return
        review = await controller.review(kind, namespace or "", body)
        warnings.extend(review.warnings)
        if not review.allowed:
            # 422 as for the schema's own refusals: the object is invalid, the request well-formed
            raise kopf.AdmissionError(review.message, code=422)

    validate.__name__ = f"validate_{api.plural(kind)}"
    return validate

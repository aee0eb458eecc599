"""kopf handlers of the rankops operator (run them with ``rankops operator run``).

The handlers live in their own ``registry`` (not kopf's process-wide default one): run them
with ``kopf.run(registry=registry)`` or ``KopfRunner([...], registry=registry)``. Whatever
else in the process registers kopf handlers, or swaps kopf's default registry (kopf's CLI
does when it is given a registry), cannot add handlers to this operator or take its away.

Thin shell: every handler ends in :meth:`Reconciler.reconcile`, which reads the object fresh,
gathers observations through the adapters, calls the pure core and writes back children,
status (``/status`` subresource) and Events.

Triggers of one RankingModel, all serialised by a per-object lock:

- ``on.create`` / ``on.update(field="spec")`` / ``on.resume``: reconcile at once (first deploy,
  a new version, restart of the operator: the plan resumes from ``status``);
- ``on.field("metadata.annotations")``: ``rankops.dev/promote|abort|retry`` tokens act at once;
- ``on.event`` of the child Deployments (watch only): readiness changes wake the loop;
- a per-object ``daemon`` (the analysis loop): reconciles again when the plan asks for it
  (``Plan.requeue_after``: the next analysis look, the end of a step's pause, a deadline) and
  otherwise every ``RANKOPS_RESYNC_INTERVAL`` seconds to repair drifted children. The other
  handlers wake it, so a new plan is followed at once.

kopf's own footprint: progress and diff-base in annotations under ``kopf.rankops.dev/``, a finalizer
``rankops.dev/finalizer`` (kopf needs it for daemons; children need none: they carry owner
references and are garbage-collected), Events for warnings and errors only
(``settings.posting.level``); the rollout's own Events are posted explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any, cast

import kopf

from rankops.operator import api
from rankops.operator.adapters.kube import KubeClient
from rankops.operator.adapters.prometheus import PrometheusMetricsSource
from rankops.operator.core.planner import Event
from rankops.operator.reconciler import Reconciler, Result
from rankops.operator.settings import OperatorConfig

RANKING_MODELS = api.resource(api.RANKING_MODEL)

logger = logging.getLogger(__name__)

registry = kopf.OperatorRegistry()


class _Credentials:
    """The ConnectionInfo the login handler returned last, shared with our own API client."""

    info: kopf.ConnectionInfo | None = None


CREDENTIALS = _Credentials()


def connection_info(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """``RANKOPS_APISERVER_URL`` when set (emulator, ``kubectl proxy``), else in-cluster or kubeconfig."""
    url = os.environ.get("RANKOPS_APISERVER_URL")
    if url:
        return kopf.ConnectionInfo(
            server=url, insecure=True, default_namespace=os.environ.get("RANKOPS_NAMESPACE") or "default"
        )
    try:
        info = kopf.login_via_client(**kwargs)  # official client: in-cluster, kubeconfig, exec plugins
    except Exception:  # the client library is optional: fall back to kopf's minimal logins
        info = None
    return info or kopf.login_with_service_account(**kwargs) or kopf.login_with_kubeconfig(**kwargs)


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
    # Peering is for several operator replicas; it needs its own CRD, so stay standalone.
    settings.peering.standalone = True

    kube = KubeClient(lambda: CREDENTIALS.info or connection_info(settings=settings, logger=logger))
    metrics = PrometheusMetricsSource(config.prometheus_url, timeout=config.prometheus_timeout)
    memo.config = config
    memo.kube = kube
    memo.metrics = metrics
    memo.reconciler = Reconciler(
        kube, metrics, post_event=post_event, analysis_interval=config.analysis_interval
    )
    memo.wakeups = {}
    logger.info(
        "rankops operator: prometheus %s, resync every %ss", config.prometheus_url, config.resync_interval
    )


@kopf.on.cleanup(registry=registry)
async def close(memo: Any, **_: Any) -> None:
    for key in ("kube", "metrics"):
        client = memo.get(key)
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()


def post_event(obj: Mapping[str, Any], event: Event) -> None:
    kopf.event(cast(Any, dict(obj)), type=event.type, reason=event.reason, message=event.message[:1024])


def _wake(memo: Any, namespace: str | None, name: str) -> None:
    event = memo.wakeups.get((namespace, name))
    if event is not None:
        event.set()


async def _reconcile(
    memo: Any, namespace: str | None, name: str, trigger: str, logger: kopf.Logger, *, wake: bool = True
) -> Result:
    reconciler: Reconciler = memo.reconciler
    if namespace is None:  # RankingModels are namespaced; kopf passes None only for cluster objects
        raise kopf.PermanentError(f"RankingModel {name} has no namespace")
    result = await reconciler.reconcile(namespace, name, trigger=trigger)
    if result.plan is not None and (result.status_written or result.children_written):
        logger.info(
            "%s: phase %s, weight %s, %d child writes",
            trigger,
            result.phase,
            result.plan.status.get("canaryWeight"),
            result.children_written,
        )
    if wake:  # a new plan may change when the analysis loop should look next
        _wake(memo, namespace, name)
    return result


@kopf.on.create(*RANKING_MODELS, registry=registry)
async def on_create(name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await _reconcile(memo, namespace, name, "create", logger)


@kopf.on.update(*RANKING_MODELS, field="spec", registry=registry)
async def on_spec_change(name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await _reconcile(memo, namespace, name, "update", logger)


@kopf.on.resume(*RANKING_MODELS, registry=registry)
async def on_resume(name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    await _reconcile(memo, namespace, name, "resume", logger)


@kopf.on.field(*RANKING_MODELS, field="metadata.annotations", registry=registry)
async def on_annotations(
    name: str, namespace: str | None, old: Any, new: Any, memo: Any, logger: kopf.Logger, **_: Any
) -> None:
    keys = api.ROLLOUT_ANNOTATIONS.values()
    old, new = old or {}, new or {}
    if any(old.get(k) != new.get(k) for k in keys):
        await _reconcile(memo, namespace, name, "annotation", logger)


@kopf.on.delete(*RANKING_MODELS, optional=True, registry=registry)
async def on_delete(name: str, namespace: str | None, memo: Any, logger: kopf.Logger, **_: Any) -> None:
    # Children go with the owner (owner references); only our in-memory state needs cleaning.
    memo.reconciler.forget(namespace or "", name)
    memo.wakeups.pop((namespace, name), None)
    logger.info(
        "RankingModel %s/%s deleted; children are garbage-collected by owner references", namespace, name
    )


@kopf.on.event("apps", "v1", "deployments", labels={api.LABEL_MANAGED_BY: api.MANAGED_BY}, registry=registry)
def on_child_deployment(body: kopf.Body, namespace: str | None, memo: Any, **_: Any) -> None:
    """A child Deployment changed (the kubelet reported readiness): wake its model's loop.

    Watch-only: no write, no kopf state. The plan waits for canary readiness before analysing
    and for stable readiness after a promotion; without this it would notice only at resync.
    """
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("kind") == api.RANKING_MODEL and str(ref.get("apiVersion", "")).startswith(f"{api.GROUP}/"):
            _wake(memo, namespace, ref.get("name", ""))


async def _sleep(stopped: kopf.DaemonStopped, wake: asyncio.Event, delay: float) -> None:
    async def stop_waiter() -> None:
        await stopped.wait()

    tasks = {asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop_waiter())}
    try:
        await asyncio.wait(tasks, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@kopf.daemon(*RANKING_MODELS, cancellation_timeout=5.0, registry=registry)
async def rollout_loop(
    name: str, namespace: str | None, memo: Any, stopped: kopf.DaemonStopped, logger: kopf.Logger, **_: Any
) -> None:
    """Follow the plan's requeue times (analysis looks, pauses, deadlines); resync otherwise."""
    config: OperatorConfig = memo.config
    wake = memo.wakeups.setdefault((namespace, name), asyncio.Event())
    failures = 0
    while not stopped:
        try:
            wake.clear()  # wake-ups from before this reconcile are covered by it
            result = await _reconcile(memo, namespace, name, "loop", logger, wake=False)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # keep the loop alive: log, back off, retry
            failures += 1
            delay = min(config.resync_interval, 0.5 * 2 ** min(failures, 6))
            logger.warning("reconcile failed (%s: %s); retrying in %.1fs", type(exc).__name__, exc, delay)
        else:
            failures = 0
            requeue = result.requeue_after
            delay = config.resync_interval if requeue is None else min(requeue, config.resync_interval)
            if result.status_written:
                # Look once more right away: the new state may already be satisfied by what
                # is observed now (e.g. a step whose replica split did not change is ready at
                # once, and no Deployment event will announce it). The follow-up usually
                # finds nothing to change and writes nothing.
                delay = min(delay, config.settle_requeue)
            delay = max(delay, config.min_requeue)
            logger.debug("next reconcile in %.2fs (plan requeue %s)", delay, requeue)
        await _sleep(stopped, wake, delay)

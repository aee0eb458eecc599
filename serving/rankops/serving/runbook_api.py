"""The operations runbook's ``/api/v2`` endpoints, served from the same ranking service.

The runbook's scripts read these fields, so their names are a contract:

* ``POST /api/v2/search`` {query, max_results?, quality_threshold?}: at most ``max_results``
  (default 10; ``limit`` is its older name) ``recommendations``, leaving out those whose
  ``quality_metrics.relevance_score`` (the result's ``relevance``: the model's calibrated
  estimate of the item's graded relevance / 4, 0..1) is below ``quality_threshold``;
  ``recommendations[].source`` (publisher slug, ``data_gov_sg``; ``source_name`` holds the
  display name), ``routing_summary.singapore_first_applied``
  (local-first boosting applied for a query naming Singapore), ``quality_summary.overall_ndcg_at_3``
  (running NDCG@3 from feedback, or the golden-set NDCG@3 while there is no feedback;
  ``quality_summary.ndcg_source`` says which), ``total_results``, ``filtered_out``.
* ``GET /api/v2/health``: ``status`` (healthy, starting or unhealthy), ``components``,
  ``quality_metrics``; 200 when healthy, else 503.
* ``GET /api/v2/quality/metrics``: ``current_metrics.overall_ndcg_at_3``,
  ``relevance_accuracy``, ``domain_routing_accuracy``, ``singapore_first_accuracy`` (golden
  set, ``rankops.serving.golden``; also the ``rankops_golden_*`` gauges).
* ``GET /api/v2/cache/stats``: ``cache_statistics.hit_rate``, ``total_entries``,
  ``avg_quality_score``, ``quality_distribution {excellent >= 0.9, good 0.7-0.9, fair 0.5-0.7,
  poor < 0.5, total}`` over the cached rankings' quality scores (mean top-3 relevance).
* ``POST /api/v2/cache/invalidate`` {quality_threshold = 0.7, force_refresh = false}: drops
  the cached rankings below the threshold (all of them with force_refresh); returns
  ``invalidated``, ``remaining``, ``total_before``.
* ``POST /api/v2/quality/report`` {time_range = 7d, include_details, format = json}:
  ``report_summary``, ``domain_performance``, ``quality_improvements`` from the feedback log
  (``rankops.serving.quality_report``); 503 when the service has no feedback log.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from rankops.serving.feedback_log import read_feedback
from rankops.serving.openapi_errors import errors
from rankops.serving.quality_report import build_report
from rankops.serving.schemas import (
    CacheInvalidateRequest,
    QualityReportRequest,
    SearchRequest,
    time_range_hours,
)
from rankops.serving.service import RankingService
from rankops.serving.service_errors import ServiceError, State

SINGAPORE = "singapore"


def build_router(service: RankingService) -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["runbook"])

    @router.post("/search", responses=errors(200, 400, 413, 422, 503))
    async def search(body: SearchRequest) -> JSONResponse:
        served = await service.rank(body.query, body.k)
        threshold = body.quality_threshold
        routing = served.ranking.routing
        ident = service.identity
        recommendations = [
            {
                "rank": position,
                "id": r.id,
                "title": r.title,
                "source": r.source,
                "source_name": r.source_name,
                "region": r.region,
                "score": r.score,
                "quality_metrics": {"relevance_score": r.relevance, "model_score": r.model_score},
            }
            for position, r in enumerate(served.ranking.results, start=1)
            if threshold is None or r.relevance >= threshold
        ]
        return JSONResponse(
            {
                "request_id": served.request_id,
                "query": body.query,
                "model": {"name": ident.model, "version": ident.version, "track": ident.track},
                "recommendations": recommendations,
                "total_results": len(recommendations),
                "filtered_out": len(served.ranking.results) - len(recommendations),
                "quality_threshold": threshold,
                "cached": served.cached,
                "routing_summary": {
                    **routing.as_dict(),
                    "singapore_first_applied": routing.local_first_applied
                    and (routing.region or "").casefold() == SINGAPORE,
                },
                "quality_summary": service.quality_summary(),
            }
        )

    @router.get("/health", responses=errors(200, 503, readiness=True))
    async def health() -> JSONResponse:
        state = service.state
        status = {State.READY: "healthy", State.LOADING: "starting", State.FAILED: "unhealthy"}[state]
        artifact = service.artifact
        model: dict[str, Any] = {
            "status": state.value,
            "reason": service.reason,
            "uri": service.model_uri,
            "version": service.identity.version,
            "sha256": artifact.sha256 if artifact else None,
            "loaded_at": service.loaded_at.isoformat() if service.loaded_at else None,
        }
        if service.problems:
            model["problems"] = list(service.problems)
        body = {
            "status": status,
            "model": service.identity.model,
            "version": service.identity.version,
            "track": service.identity.track,
            "components": {
                "model": model,
                "cache": {"status": "ok", **service.cache_statistics()},
                "feedback_store": {"status": "ok", "size": len(service.feedback_desk.shown)},
                "feedback_log": feedback_log_component(service),
                "metrics": {"status": "ok" if service.metrics is not None else "starting"},
                "drift": {
                    "status": "ok"
                    if service.drift is not None and service.drift.report is not None
                    else "waiting"
                },
            },
            "quality_metrics": service.quality_summary(),
        }
        return JSONResponse(body, status_code=200 if state is State.READY else 503)

    @router.get("/quality/metrics", responses=errors(200))
    async def quality_metrics() -> JSONResponse:
        return JSONResponse(
            {
                "model": service.identity.model,
                "version": service.identity.version,
                "track": service.identity.track,
                "current_metrics": service.quality_summary(),
                "definitions": {
                    "overall_ndcg_at_3": "mean per-request NDCG@3 over feedback received by this pod; "
                    "the golden-set NDCG@3 while no feedback has arrived (see ndcg_source)",
                    "relevance_accuracy": "golden set: share of queries whose top-1 served item comes "
                    "from a source the training mappings name for them",
                    "domain_routing_accuracy": "golden set: share of queries routed to the domain of "
                    "their best-judged items",
                    "singapore_first_accuracy": "golden set: share of queries naming Singapore with a "
                    "Singapore item on top",
                    "feedback_top1_relevance": "feedback: share of judged requests whose top-1 item was "
                    "relevant (graded >= 2, or clicked)",
                },
                "golden_set": golden_counts(service),
            }
        )

    @router.get("/cache/stats", responses=errors(200))
    async def cache_stats() -> JSONResponse:
        return JSONResponse({"cache_statistics": service.cache_statistics()})

    @router.post("/cache/invalidate", responses=errors(200, 400, 413, 422))
    async def cache_invalidate(body: CacheInvalidateRequest | None = None) -> JSONResponse:
        request = body or CacheInvalidateRequest()
        return JSONResponse(service.invalidate_below(request.quality_threshold, request.force_refresh))

    @router.post("/quality/report", responses=errors(200, 400, 413, 422, 503))
    async def quality_report(body: QualityReportRequest | None = None) -> JSONResponse:
        request = body or QualityReportRequest()
        feedback_log = service.feedback_desk.log
        if feedback_log is None:
            raise NoFeedbackLog(
                "this service has no feedback log to report from: start it with --feedback-log URI "
                "or RANKOPS_FEEDBACK_LOG"
            )
        await feedback_log.flush()  # the report includes everything acknowledged so far
        end = time.time()
        start = end - time_range_hours(request.time_range) * 3600
        records = await run_in_threadpool(lambda: list(read_feedback(feedback_log.uri, start, end)))
        report = build_report(
            records,
            start=start,
            end=end,
            time_range=request.time_range,
            threshold=request.quality_threshold,
            include_details=request.include_details,
        )
        return JSONResponse(report)

    return router


class NoFeedbackLog(ServiceError):
    status_code = 503
    error = "no feedback log"


def feedback_log_component(service: RankingService) -> dict[str, Any]:
    feedback_log = service.feedback_desk.log
    if feedback_log is None:
        return {"status": "disabled"}
    stats = feedback_log.stats()
    problem = service.feedback_desk.log_problem or stats.last_error
    return {
        "status": "degraded" if problem else "ok",
        "uri": feedback_log.uri,
        "written": stats.written,
        "pending": stats.pending,
        "unflushed_feedback": stats.pending_feedback,
        "loss_bound_records": feedback_log.max_unflushed,
        "flush_s": feedback_log.flush_s,
        "dropped_served": stats.dropped_served,
        "write_errors": stats.write_errors,
        "problem": problem,
    }


def golden_counts(service: RankingService) -> dict[str, int | None]:
    golden = service.golden
    return {
        "judged_queries": golden.judged_queries if golden else None,
        "singapore_queries": golden.singapore_queries if golden else None,
    }

"""The operations runbook's ``/api/v2`` endpoints, served from the same ranking service.

The runbook's scripts read these fields, so their names are a contract:

* ``POST /api/v2/search`` {query, limit?}: ``recommendations[].source`` (publisher slug,
  ``data_gov_sg``; ``source_name`` holds the display name),
  ``recommendations[].quality_metrics.relevance_score`` (the model's calibrated estimate of
  the item's graded relevance / 4, 0..1), ``routing_summary.singapore_first_applied`` (local-first
  boosting applied for a query naming Singapore), ``quality_summary.overall_ndcg_at_3``
  (running NDCG@3 from feedback, or the golden-set NDCG@3 while there is no feedback;
  ``quality_summary.ndcg_source`` says which).
* ``GET /api/v2/health``: ``status`` (healthy, starting or unhealthy), ``components``,
  ``quality_metrics``; 200 when healthy, else 503.
* ``GET /api/v2/quality/metrics``: ``current_metrics.overall_ndcg_at_3`` and
  ``current_metrics.relevance_accuracy`` (fraction of feedback requests whose top-1 served
  item was relevant: judged >= 2, or clicked).
* ``GET /api/v2/cache/stats``: ``cache_statistics.hit_rate``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rankops.serving.schemas import SearchRequest
from rankops.serving.service import RankingService, State

SINGAPORE = "singapore"


def build_router(service: RankingService) -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["runbook"])

    @router.post("/search")
    async def search(body: SearchRequest) -> JSONResponse:
        served = await service.rank(body.query, body.limit)
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
        ]
        return JSONResponse(
            {
                "request_id": served.request_id,
                "query": body.query,
                "model": {"name": ident.model, "version": ident.version, "track": ident.track},
                "recommendations": recommendations,
                "total_results": len(recommendations),
                "cached": served.cached,
                "routing_summary": {
                    **routing.as_dict(),
                    "singapore_first_applied": routing.local_first_applied
                    and (routing.region or "").casefold() == SINGAPORE,
                },
                "quality_summary": service.quality_summary(),
            }
        )

    @router.get("/health")
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
                "feedback_store": {"status": "ok", "size": len(service.shown)},
                "metrics": {"status": "ok" if service.metrics is not None else "starting"},
                "drift": {"status": "ok" if service.drift_report is not None else "waiting"},
            },
            "quality_metrics": service.quality_summary(),
        }
        return JSONResponse(body, status_code=200 if state is State.READY else 503)

    @router.get("/quality/metrics")
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
                    "relevance_accuracy": "fraction of feedback requests whose top-1 served item was "
                    "relevant: judged >= 2, or clicked for click feedback",
                },
            }
        )

    @router.get("/cache/stats")
    async def cache_stats() -> JSONResponse:
        return JSONResponse({"cache_statistics": service.cache_statistics()})

    return router

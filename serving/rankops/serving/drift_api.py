"""``GET /v1/drift/window``: this pod's rolling window of live query features.

The drift Job (``rankops drift``) reads it from every serving pod and tests the union against
the artifact's reference statistics, so the check runs on real traffic. Only derived features
leave the pod (lengths, OOV share, best score, predicted domain, region), never query text;
``ids`` (one per row) are keyed digests of the normalised texts, the same on every pod of
the artifact, so the Job counts a query that several pods served once.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rankops.serving.service import RankingService


def build_drift_router(service: RankingService) -> APIRouter:
    router = APIRouter(prefix="/v1/drift", tags=["drift"])

    @router.get("/window")
    async def window() -> JSONResponse:
        ids, rows = service.drift_window()  # NotReady (503) before the model is loaded
        artifact = service.artifact
        ident = service.identity
        return JSONResponse(
            {
                "model": ident.model,
                "version": ident.version,
                "track": ident.track,
                "sha256": artifact.sha256 if artifact is not None else None,
                "capacity": service.settings.drift_window,
                "n": len(rows),  # distinct queries: a repeat moves its row to the newest end
                "observed": service.drift_observed(),
                "rows": rows,
                "ids": ids,
            }
        )

    return router

"""The ranking service's HTTP face: ``create_app(model_uri, settings)`` builds a FastAPI app.

Endpoints (all JSON; every error is ``{"error": ..., "detail": ...}`` with a 4xx/5xx code):

* ``GET /healthz`` 200 while the process lives; ``GET /readyz`` 200 once the artifact is
  loaded and verified, 503 with the reason before that and for good after a digest mismatch.
* ``POST /v1/rank``, ``POST /v1/feedback``, ``GET /v1/model``, ``GET /v1/cache/stats``,
  ``POST /v1/cache/invalidate``, ``GET /metrics``.
* The runbook's ``/api/v2`` endpoints (``rankops.serving.runbook_api``).

Request bodies are read at most ``max_body_bytes`` (1 MiB) into memory, whether the length
is declared or the body is chunked: a longer body is answered 413 and the connection closed.
The OpenAPI document declares every status each route answers, with the error model
``{error, detail, ...}``.

The artifact loads in the background once the app starts, so the port opens at once and
``/readyz`` tells the truth while it loads.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rankops.serving.drift_api import build_drift_router
from rankops.serving.openapi_errors import FEEDBACK_LINKS, errors
from rankops.serving.ranking import Served
from rankops.serving.runbook_api import build_router
from rankops.serving.schemas import FeedbackRequest, FeedbackResponse, RankRequest, RankResponse
from rankops.serving.service import RankingService, ServiceSettings
from rankops.serving.service_errors import ServiceError, State
from rankops.serving.telemetry import CONTENT_TYPE_LATEST

log = logging.getLogger(__name__)

# Requests that count as ranking requests in rankops_requests_total and the latency histogram.
RANKING_PATHS = frozenset({"/v1/rank", "/api/v2/search"})


def error_response(
    status_code: int, error: str, detail: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail, **extra}, status_code=status_code, headers=headers)


def too_large(detail: str) -> JSONResponse:
    # The rest of the body is never read: close the connection rather than drain it.
    return error_response(413, "request too large", detail, headers={"connection": "close"})


async def read_body(receive: Receive, limit: int) -> tuple[list[Message], bool]:
    """The request's messages up to the end of its body, or up to ``limit`` body bytes.

    Returns (messages, within the limit). Memory stays bounded by the limit whatever the
    client declares (a chunked body declares nothing).
    """
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, True
        size += len(message.get("body", b""))
        if size > limit:
            return messages, False
        if not message.get("more_body", False):
            return messages, True


def describe_validation_errors(errors: Any) -> tuple[int, str, str]:
    """(status, error, detail) for pydantic errors: 400 for unparsable JSON, else 422."""
    errors = list(errors)
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {})
        return 400, "malformed JSON", f"the request body is not valid JSON: {ctx.get('error', 'parse error')}"
    parts = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        where = ".".join(loc) if loc else "body"
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        if e.get("type") == "missing":
            msg = "field required"
        elif e.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif e.get("type") in {"dict_type", "model_attributes_type"} and where == "body":
            msg = "the body must be a JSON object"
        parts.append(f"{where}: {msg}")
    return 422, "invalid request", "; ".join(parts)


def rank_body(service: RankingService, served: Served) -> bytes:
    """The /v1/rank response body: the request's own fields around the pre-rendered ranking."""
    head = f'{{"request_id":"{served.request_id}",{service.identity.json_fields},"cached":'
    return b"".join(
        (head.encode(), b"true," if served.cached else b"false,", served.ranking.json_fields, b"}")
    )


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out ``messages`` again, then defers to ``receive``."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


class RankingTelemetryMiddleware:
    """Pure ASGI middleware: times and counts ranking requests, refuses oversized bodies.

    Counts every response of a ranking path by status code (4xx included, the 422s of the
    validation handler too) into ``rankops_requests_total`` and the latency histogram.

    It also serves a well-formed ``POST /v1/rank`` itself, without FastAPI's routing and
    dependency machinery (which cost more CPU than ranking a cached query): the body is
    validated by the same pydantic model, and any body that is not a valid request, or a
    request while the model is not ready, goes on to the FastAPI route, which gives every
    error its usual answer.
    """

    def __init__(self, app: ASGIApp, service: RankingService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        limit = self.service.settings.max_body_bytes

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > limit:
                response = too_large(f"the body has {length} bytes; the limit is {limit}")
                await response(scope, receive, send_wrapper)
                return
            messages, within = await read_body(receive, limit)
            if not within:
                await too_large(f"the body is longer than the limit of {limit} bytes")(
                    scope, receive, send_wrapper
                )
            elif scope["path"] == "/v1/rank" and scope["method"] == "POST" and self.service.ready:
                await self._rank(scope, messages, receive, send_wrapper)
            else:
                await self.app(scope, _replay(messages, receive), send_wrapper)
        finally:
            metrics = self.service.metrics
            if metrics is not None and scope["path"] in RANKING_PATHS:
                metrics.observe_request(status, time.perf_counter() - started)

    async def _rank(self, scope: Scope, messages: list[Message], receive: Receive, send: Send) -> None:
        body = (
            messages[0].get("body", b"")
            if len(messages) == 1
            else b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        )
        request = _parse_rank_request(scope, messages, body)
        if request is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        try:
            served = await self.service.rank(request.query, request.k)
        except ServiceError as exc:
            await error_response(exc.status_code, exc.error, exc.detail, **exc.extra)(scope, receive, send)
            return
        content = rank_body(self.service, served)
        headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def _parse_rank_request(scope: Scope, messages: list[Message], body: bytes) -> RankRequest | None:
    """The request in ``body`` when it is a plain valid one, else None (FastAPI then answers).

    Accepts only what the FastAPI route accepts too, with the same result: a JSON body
    declared ``application/json`` that orjson parses (orjson is stricter than ``json``, so
    anything it refuses is left to the route) and that ``RankRequest`` validates.
    """
    if messages[-1]["type"] != "http.request" or _header(scope, b"content-type") != b"application/json":
        return None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(payload, dict):
        return None
    try:
        return RankRequest.model_validate(payload)
    except ValidationError:
        return None


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def create_app(
    model_uri: str,
    settings: ServiceSettings | None = None,
    *,
    env: Mapping[str, str] | None = None,
) -> FastAPI:
    """Build the service for the artifact at ``model_uri``.

    ``settings`` default to ``ServiceSettings.from_env(env or os.environ)``, which takes the
    pod's identity from ``RANKOPS_MODEL``, ``RANKOPS_VERSION`` and ``RANKOPS_TRACK``.
    """
    if not model_uri:
        raise ValueError("no model URI: pass --model or set RANKOPS_MODEL_URI")
    if settings is None:
        settings = ServiceSettings.from_env(os.environ if env is None else env)
    service = RankingService(model_uri, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(
        title="rankops ranking service",
        version="1",
        lifespan=lifespan,
        description=__doc__,
    )
    app.state.service = service
    app.add_middleware(RankingTelemetryMiddleware, service=service)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, error, detail = describe_validation_errors(exc.errors())
        if request.url.path == "/v1/feedback" and service.metrics is not None:
            service.metrics.count_feedback(status)
        return error_response(status, error, detail)

    @app.exception_handler(ServiceError)
    async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
        if request.url.path == "/v1/feedback" and service.metrics is not None:
            service.metrics.count_feedback(exc.status_code)
        return error_response(exc.status_code, exc.error, exc.detail, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        names = {404: "not found", 405: "method not allowed"}
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"no endpoint {request.method} {request.url.path}"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        # 405 keeps Starlette's Allow header (RFC 9110: a 405 must list the allowed methods).
        return error_response(exc.status_code, names.get(exc.status_code, "http error"), detail, exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error", f"{type(exc).__name__}: {exc}")

    @app.get("/healthz", tags=["probes"], responses=errors(200))
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "alive"})

    @app.get("/readyz", tags=["probes"], responses=errors(200, 503, readiness=True))
    async def readyz() -> JSONResponse:
        return JSONResponse(service.readiness(), status_code=200 if service.ready else 503)

    @app.get("/metrics", tags=["probes"], response_class=Response, responses=errors(200, 503, text=True))
    async def metrics() -> Response:
        if service.metrics is None:
            return error_response(503, "starting", "metrics are created when the app starts")
        if service.feedback_desk.log is not None:
            service.metrics.count_log_records(service.feedback_desk.log.written)
        batcher = service.artifact.query_batcher if service.artifact is not None else None
        if batcher is not None:
            service.metrics.count_encoder_passes(batcher, batcher.totals)
        return Response(service.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        "/v1/rank",
        tags=["ranking"],
        operation_id="rank",
        responses=errors(200, 400, 413, 422, 503, ok=RankResponse, links=FEEDBACK_LINKS),
    )
    async def rank(body: RankRequest) -> Response:
        """Rank the catalog for ``query``; local-first when the query names a region.

        Returns ``{request_id, model, version, track, cached, results: [{id, title, source,
        source_name, score, relevance}], routing: {predicted_domain, domain_confidence, region,
        local_first_applied}}``.
        """
        served = await service.rank(body.query, body.k)
        return Response(rank_body(service, served), media_type="application/json")

    @app.post(
        "/v1/feedback",
        tags=["ranking"],
        operation_id="feedback",
        responses=errors(200, 400, 404, 409, 413, 422, 503, ok=FeedbackResponse),
    )
    async def feedback(body: FeedbackRequest) -> JSONResponse:
        """Judge a served ranking: ``judgments``, ``clicks``, ``ratings`` or ``thumbs``; returns its
        NDCG@3. 404: unknown request; 409: feedback already given; 422: ids that are not catalogue
        items (or clicks on items not shown); 503: model not ready, or the feedback log behind."""
        ndcg = service.feedback(body.request_id, body.judgments, body.clicks, body.ratings, body.thumbs)
        assert service.metrics is not None
        service.metrics.count_feedback(200)
        return JSONResponse({"request_id": body.request_id, "ndcg_at_3": round(ndcg, 6)})

    @app.get("/v1/model", tags=["model"], responses=errors(200, 503))
    async def model() -> JSONResponse:
        artifact = service.artifact
        if artifact is None or service.state is not State.READY:
            return error_response(503, "model not ready", service.reason, **service.readiness())
        ident = service.identity
        manifest = artifact.manifest
        return JSONResponse(
            {
                "model": ident.model,
                "version": ident.version,
                "artifact_version": artifact.version,
                "parent_version": manifest.get("parent_version"),
                "track": ident.track,
                "uri": service.model_uri,
                "sha256": artifact.sha256,
                "metrics": manifest.get("metrics", {}),
                "golden_ndcg_at_3": service.golden_ndcg,
                "catalog_size": len(artifact.catalog),
                "golden_queries": len(artifact.golden),
                "loaded_at": service.loaded_at.isoformat() if service.loaded_at else None,
            }
        )

    @app.get("/v1/cache/stats", tags=["cache"], responses=errors(200))
    async def cache_stats() -> JSONResponse:
        return JSONResponse(service.cache_statistics())

    @app.post("/v1/cache/invalidate", tags=["cache"], responses=errors(200, 413))
    async def cache_invalidate() -> JSONResponse:
        return JSONResponse({"invalidated": service.invalidate_cache()})

    app.include_router(build_router(service))
    app.include_router(build_drift_router(service))
    return app

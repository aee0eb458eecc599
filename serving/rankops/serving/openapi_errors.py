"""The OpenAPI ``responses`` of each route: every status it answers, with the real error model.

FastAPI documents only 200 and its own ``HTTPValidationError`` for 422; this service answers
every error as ``{error, detail, ...}`` (``schemas.ErrorBody``) and with more codes than that.
Declaring 422 here also replaces FastAPI's default 422 schema, which the service never sends.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from rankops.serving.schemas import ErrorBody

# /v1/rank -> /v1/feedback: a served ranking's request_id is what feedback names.
FEEDBACK_LINKS = {
    "JudgeThisRanking": {
        "operationId": "feedback",
        "requestBody": {"request_id": "$response.body#/request_id", "clicks": []},
        "description": "Feedback on the ranking just served (its request_id)",
    }
}

DESCRIPTIONS = {
    200: "Success",
    400: "The body is not valid JSON",
    404: "Not found (for feedback: no served ranking with that request_id)",
    409: "Feedback for that request was already recorded",
    413: "The body is longer than the limit (declared or chunked); the connection is closed",
    422: "The body is JSON but not a valid request (the detail names each field)",
    503: "Not ready (the model is loading or failed), or a dependency is behind",
}


def errors(
    *codes: int,
    readiness: bool = False,
    text: bool = False,
    ok: type[BaseModel] | None = None,
    links: dict[str, Any] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route answering ``codes``.

    ``readiness``: the 503 body is the readiness object, not an error. ``text``: the 200 body
    is Prometheus text exposition. ``ok``: the 200 body's model; ``links``: its OpenAPI links
    (what a client, or schemathesis's stateful phase, can do next with it).
    """
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        if code == 200:
            if text:
                out[200] = {"description": "Prometheus text exposition", "content": {"text/plain": {}}}
            elif ok is not None:
                out[200] = {"description": "Success", "model": ok, **({"links": links} if links else {})}
            continue  # otherwise FastAPI's own 200 entry (application/json)
        if code == 503 and readiness:
            out[503] = {
                "description": "Not ready: the readiness object says why",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
            continue
        out[code] = {"model": ErrorBody, "description": DESCRIPTIONS[code]}
    return out

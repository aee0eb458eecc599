"""Run the ranking service under uvicorn (``rankops serve``).

uvicorn builds the app through the factory ``app_from_env`` so that ``--workers N`` works
(each worker process imports and builds its own app); the model URI and the command-line
settings travel to the workers in the environment.

One worker per pod is the intended set-up (scale with replicas): every worker keeps its own
metrics registry, cache and feedback store, so with several workers a scrape sees one
worker's counters and feedback must reach the worker that served the ranking.
"""

from __future__ import annotations

import logging
import os

import prometheus_client
import uvicorn
from fastapi import FastAPI

from rankops.serving.app import create_app
from rankops.serving.http_protocol import CoalescingHttpToolsProtocol
from rankops.serving.service import ServiceSettings

log = logging.getLogger(__name__)


def app_from_env() -> FastAPI:
    """The app for ``$RANKOPS_MODEL_URI`` with settings from the environment."""
    uri = os.environ.get("RANKOPS_MODEL_URI", "")
    return create_app(uri, ServiceSettings.from_env(os.environ))


def serve(
    model_uri: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    workers: int = 1,
    log_level: str = "info",
    cache: bool = True,
    feedback_log: str | None = None,
) -> int:
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if port < 0 or port > 65535:
        raise ValueError(f"--port must be 0..65535, got {port}")
    os.environ["RANKOPS_MODEL_URI"] = model_uri
    if not cache:
        os.environ["RANKOPS_CACHE_ENTRIES"] = "0"
    if feedback_log:
        os.environ["RANKOPS_FEEDBACK_LOG"] = feedback_log
    # One service per process here: freeze the loaded model out of the collector's full
    # collections (ServiceSettings.gc_freeze) unless the environment says otherwise.
    os.environ.setdefault("RANKOPS_GC_FREEZE", "1")
    # and hand the GIL over every 0.5 ms (ServiceSettings.gil_switch_interval_s says why)
    os.environ.setdefault("RANKOPS_GIL_SWITCH_INTERVAL_S", "0.0005")
    # The *_created series double the series count and nothing reads them (process-wide switch).
    prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if workers > 1:
        log.warning(
            "%d workers: each keeps its own metrics, cache and feedback store; prefer one worker per pod",
            workers,
        )
    uvicorn.run(
        "rankops.serving.server:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        access_log=False,  # per-request logging costs more than the ranking of a cached query
        lifespan="on",
        http=CoalescingHttpToolsProtocol,  # a response's head and body in one send (http_protocol.py)
    )
    return 0

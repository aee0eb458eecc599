"""The Alertmanager receiver: ``POST /v1/alerts`` in the operator process.

Alertmanager's webhook (payload ``version`` ``"4"``) wakes the QualitySLO controller at once
instead of at its next timer tick. The receiver only decides *which model to look at*: a
firing alert labelled ``rankingmodel`` and ``namespace`` (what the rules rankops compiles carry)
becomes an :class:`AlertTrigger` on a queue the controller consumes; the controller then
evaluates that model itself and acts only on a breach it confirms. An alert is never trusted
as a verdict on its own.

- **Authentication**: ``Authorization: Bearer <token>``, compared in constant time
  (``hmac.compare_digest``) with the token read from a file (a mounted Secret; re-read when it
  changes). Missing or wrong: 401, before the body is read.
- **Bounds**: a body over ``max_body_bytes`` is refused with 413 while it is read (aiohttp's
  ``client_max_size``), declared or chunked alike.
- **Validation**: not JSON, not version 4, or alerts without ``status``, ``labels``,
  ``startsAt`` and ``fingerprint``: 400 with a message naming the problem.
- **Unknown models**: when the firing alerts name only models that do not exist: 404, logged;
  mixed payloads answer 200 and list the unknown ones.
- **Idempotent**: an alert is handled once per ``(fingerprint, startsAt, status)``; repeated
  deliveries (Alertmanager's ``repeat_interval``, retries, several replicas) are counted as
  duplicates and do nothing. Triggers for a model already waiting on the queue coalesce.
- **Resolved** alerts are recorded (``resolved``, bounded) and trigger nothing.
- **TLS** when a certificate and key are given (:func:`tls_context`).

Alertmanager retries 5xx but not 4xx, so every client error above is final for it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import ssl
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = [
    "AlertReceiver",
    "AlertTrigger",
    "ResolvedAlert",
    "TokenFile",
    "start_receiver",
    "tls_context",
]

logger = logging.getLogger(__name__)

MODEL_LABEL = "rankingmodel"
NAMESPACE_LABEL = "namespace"
DEFAULT_MAX_BODY = 256 * 1024
ModelExists = Callable[[str, str], Awaitable[bool]]


class _Alert(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: str = Field(min_length=1)  # Alertmanager's field names
    endsAt: str | None = None
    fingerprint: str = Field(min_length=1)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="allow")
    version: Literal["4"]
    status: Literal["firing", "resolved"]
    alerts: list[_Alert] = Field(max_length=10_000)


@dataclass(frozen=True)
class AlertTrigger:
    """Evaluate ``namespace/model`` now: a firing alert said it breaches."""

    namespace: str
    model: str
    alertname: str
    severity: str | None
    fingerprint: str
    starts_at: str
    received_at: datetime
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ResolvedAlert:
    namespace: str
    model: str
    alertname: str
    fingerprint: str
    starts_at: str
    ends_at: str | None
    received_at: datetime


class TokenFile:
    """The bearer token in a file (a mounted Secret), re-read when the file changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[float, int] | None = None
        self._token = b""
        self.read()  # fail at start-up, not on the first alert

    def read(self) -> bytes:
        stat = self.path.stat()
        stamp = (stat.st_mtime, stat.st_size)
        if stamp != self._stamp:
            token = self.path.read_text().strip().encode()
            if not token:
                raise ValueError(f"alert receiver token file {self.path} is empty")
            self._token, self._stamp = token, stamp
        return self._token


class AlertReceiver:
    """The receiver's state and its aiohttp application (:meth:`app`)."""

    def __init__(
        self,
        token: Callable[[], bytes],
        model_exists: ModelExists,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY,
        remember: int = 8192,
        resolved_limit: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._token = token
        self._model_exists = model_exists
        self.max_body_bytes = max_body_bytes
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._remember = remember
        self._pending: set[tuple[str, str]] = set()
        self._unknown_logged: set[str] = set()
        self._queue: asyncio.Queue[AlertTrigger] = asyncio.Queue()
        self.resolved: deque[ResolvedAlert] = deque(maxlen=resolved_limit)
        self.stats = {"accepted": 0, "duplicates": 0, "resolved": 0, "unknown": 0, "unauthorized": 0}

    # ------------------------------------------------------------------ consumer side

    async def next_trigger(self) -> AlertTrigger:
        """The next model to evaluate; a model is queued at most once until taken."""
        trigger = await self._queue.get()
        self._pending.discard((trigger.namespace, trigger.model))
        return trigger

    def pending(self) -> int:
        return self._queue.qsize()

    # ------------------------------------------------------------------ HTTP side

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_post("/v1/alerts", self.handle)
        return app

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not given:
            return False
        try:
            expected = self._token()
        except (OSError, ValueError):
            logger.exception("alert receiver: cannot read the token; refusing deliveries")
            return False
        return hmac.compare_digest(given.strip().encode(), expected)

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            self.stats["unauthorized"] += 1
            return _error(
                401, "missing or wrong bearer token", {"WWW-Authenticate": 'Bearer realm="rankops"'}
            )
        declared = request.content_length
        if declared is not None and declared > self.max_body_bytes:
            return _error(413, f"body of {declared} bytes is over the {self.max_body_bytes}-byte limit")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body is over the {self.max_body_bytes}-byte limit")
        try:
            payload = _Payload.model_validate(json.loads(body))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"body is not JSON: {exc}")
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()[:5]
            )
            return _error(400, f"not an Alertmanager webhook payload (version 4): {problems}")
        return await self._accept(payload)

    async def _accept(self, payload: _Payload) -> web.Response:
        now = self._clock()
        counts = {"accepted": 0, "duplicates": 0, "resolved": 0, "ignored": 0}
        unknown: set[str] = set()
        for alert in payload.alerts:
            model, namespace = alert.labels.get(MODEL_LABEL), alert.labels.get(NAMESPACE_LABEL)
            if not model or not namespace:
                counts["ignored"] += 1  # not one of ours: other rules share the receiver
                continue
            key = (alert.fingerprint, alert.startsAt, alert.status)
            if key in self._seen:
                counts["duplicates"] += 1
                continue
            # remembered before the lookup awaits, so concurrent duplicate deliveries see it
            self._remember_key(key)
            if not await self._model_exists(namespace, model):
                self._seen.pop(key, None)  # forgotten: the model may exist by the next delivery
                unknown.add(f"{namespace}/{model}")
                continue
            if alert.status == "resolved":
                self.resolved.append(
                    ResolvedAlert(
                        namespace,
                        model,
                        alert.labels.get("alertname", ""),
                        alert.fingerprint,
                        alert.startsAt,
                        alert.endsAt,
                        now,
                    )
                )
                counts["resolved"] += 1
                logger.info("alert resolved: %s for %s/%s", alert.labels.get("alertname"), namespace, model)
                continue
            counts["accepted"] += 1
            if (namespace, model) not in self._pending:
                self._pending.add((namespace, model))
                self._queue.put_nowait(
                    AlertTrigger(
                        namespace,
                        model,
                        alert.labels.get("alertname", ""),
                        alert.labels.get("severity"),
                        alert.fingerprint,
                        alert.startsAt,
                        now,
                        dict(alert.labels),
                    )
                )
        for name in ("accepted", "duplicates", "resolved"):
            self.stats[name] += counts[name]
        self.stats["unknown"] += len(unknown)
        new = unknown - self._unknown_logged
        if new:  # once per model: Alertmanager re-sends a group every group_interval
            logger.warning("alerts for unknown RankingModels: %s", ", ".join(sorted(new)))
            self._unknown_logged |= new
            if len(self._unknown_logged) > self._remember:
                self._unknown_logged.clear()
        body: dict[str, Any] = {**counts, "unknownModels": sorted(unknown)}
        if unknown and not (counts["accepted"] or counts["resolved"] or counts["duplicates"]):
            return _error(404, f"no such RankingModel: {', '.join(sorted(unknown))}", body=body)
        return web.json_response(body)

    def _remember_key(self, key: tuple[str, str, str]) -> None:
        self._seen[key] = None
        while len(self._seen) > self._remember:
            self._seen.popitem(last=False)


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, body: dict[str, Any] | None = None
) -> web.Response:
    return web.json_response({**(body or {}), "error": message}, status=status, headers=headers)


def tls_context(cert_file: str | Path, key_file: str | Path) -> ssl.SSLContext:
    """A server TLS context from a mounted certificate and key (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


async def start_receiver(
    receiver: AlertReceiver, host: str, port: int, ssl_context: ssl.SSLContext | None = None
) -> web.AppRunner:
    """Serve ``receiver`` on ``host:port``; the caller awaits ``runner.cleanup()`` to stop."""
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    return runner

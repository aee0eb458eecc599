"""Notifications to Slack-compatible webhooks: breach, rollback and remediation steps.

The controller never waits on a webhook: :meth:`WebhookNotifier.submit` puts the message on a
bounded queue and returns at once (``False`` when the queue is full: the message is dropped
and logged, the controller carries on). One worker task posts them in order:

- JSON ``{"text": ..., "attachments": [{"color", "title", "fields"}]}``, which Slack, Mattermost
  and Rocket.Chat incoming webhooks accept;
- retries on connection errors, timeouts, 429 and 5xx with exponential back-off (doubling from
  ``backoff_s`` up to ``max_backoff_s``, honouring ``Retry-After``), at most ``attempts`` tries;
  other 4xx are final (a wrong URL does not get better);
- the URL is resolved when the message is sent (a callable reading the Secret), so a rotated
  Secret is picked up and the URL never sits in status or logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import aiohttp

__all__ = ["Notification", "WebhookNotifier", "slack_payload"]

logger = logging.getLogger(__name__)

Event = Literal["Breach", "Rollback", "Remediation"]
UrlSource = str | Callable[[], Awaitable[str]]
_COLOURS = {"Breach": "#d9534f", "Rollback": "#f0ad4e", "Remediation": "#5bc0de"}


@dataclass(frozen=True)
class Notification:
    event: Event
    namespace: str
    model: str
    text: str
    fields: Mapping[str, str] = field(default_factory=dict)


def slack_payload(n: Notification) -> dict[str, object]:
    return {
        "text": f"[rankops] {n.event}: {n.namespace}/{n.model}: {n.text}",
        "attachments": [
            {
                "color": _COLOURS[n.event],
                "title": f"{n.event} {n.namespace}/{n.model}",
                "fields": [{"title": k, "value": v, "short": True} for k, v in n.fields.items()],
            }
        ],
    }


@dataclass
class _Stats:
    delivered: int = 0
    failed: int = 0
    dropped: int = 0
    retries: int = 0


class WebhookNotifier:
    def __init__(
        self,
        *,
        queue_size: int = 1000,
        attempts: int = 5,
        backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._queue: asyncio.Queue[tuple[UrlSource, Notification]] = asyncio.Queue(queue_size)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.stats = _Stats()
        self._worker: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def submit(self, url: UrlSource, notification: Notification) -> bool:
        """Queue ``notification`` for ``url``; never blocks. ``False``: queue full, dropped."""
        try:
            self._queue.put_nowait((url, notification))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            logger.warning("notification queue full; dropped %s for %s/%s", notification.event,
                           notification.namespace, notification.model)  # fmt: skip
            return False
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._run(), name="rankops-notify")
        return True

    async def drain(self) -> None:
        """Until every queued message is delivered or given up (tests, shutdown)."""
        await self._queue.join()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            url, notification = await self._queue.get()
            try:
                await self._deliver(url, notification)
            except Exception:  # a notifier bug must not kill the worker
                logger.exception("notification %s failed", notification.event)
                self.stats.failed += 1
            finally:
                self._queue.task_done()

    async def _deliver(self, source: UrlSource, notification: Notification) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        delay = self.backoff_s
        what = f"{notification.event} for {notification.namespace}/{notification.model}"
        for attempt in range(1, self.attempts + 1):
            retry_after: float | None = None
            try:
                url = source if isinstance(source, str) else await source()
                async with self._session.post(url, json=slack_payload(notification)) as response:
                    if response.status < 300:
                        self.stats.delivered += 1
                        return
                    if response.status != 429 and response.status < 500:
                        logger.error("webhook refused %s: HTTP %s; not retried", what, response.status)
                        self.stats.failed += 1
                        return
                    problem = f"HTTP {response.status}"
                    with contextlib.suppress(ValueError):
                        retry_after = float(response.headers.get("Retry-After", ""))
            except (aiohttp.ClientError, TimeoutError, OSError, LookupError, ValueError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if attempt == self.attempts:
                break
            self.stats.retries += 1
            wait = min(self.max_backoff_s, max(delay, retry_after or 0.0))
            logger.warning("webhook %s failed (%s); retry %d in %.1fs", what, problem, attempt, wait)
            await asyncio.sleep(wait)
            delay = min(self.max_backoff_s, delay * 2)
        logger.error("webhook %s failed %d times (%s); given up", what, self.attempts, problem)
        self.stats.failed += 1

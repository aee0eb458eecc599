"""Webhook notifications: Slack-compatible body, retries with back-off, never blocking the caller."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rankops.operator.adapters.notify import Notification, WebhookNotifier, slack_payload

ROLLBACK = Notification(
    "Rollback", "prod", "search", "ndcg 0.41 < 0.65: rolled back to 1.0.0", {"objective": "ndcg"}
)


class Hook:
    """A webhook answering the statuses in ``script`` in turn, then 200."""

    def __init__(self, *script: int) -> None:
        self.script = list(script)
        self.bodies: list[Any] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def handle(self, request: web.Request) -> web.Response:
        await self.gate.wait()
        self.bodies.append(await request.json())
        status = self.script.pop(0) if self.script else 200
        return web.Response(status=status, headers={"Retry-After": "0"} if status == 429 else None)


@pytest.fixture
async def notifier() -> AsyncIterator[WebhookNotifier]:
    n = WebhookNotifier(attempts=4, backoff_s=0.01, max_backoff_s=0.05, timeout_s=2)
    yield n
    await n.close()


async def serve(hook: Hook) -> TestServer:
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    server = TestServer(app)
    await server.start_server()
    return server


def test_slack_payload() -> None:
    body = slack_payload(ROLLBACK)
    assert body["text"] == "[rankops] Rollback: prod/search: ndcg 0.41 < 0.65: rolled back to 1.0.0"
    assert body["attachments"] == [
        {
            "color": "#f0ad4e",
            "title": "Rollback prod/search",
            "fields": [{"title": "objective", "value": "ndcg", "short": True}],
        }
    ]


async def test_retries_5xx_and_429_then_delivers_once(notifier: WebhookNotifier) -> None:
    hook = Hook(500, 503, 429)
    server = await serve(hook)
    try:
        assert notifier.submit(str(server.make_url("/hook")), ROLLBACK)
        await asyncio.wait_for(notifier.drain(), 10)
    finally:
        await server.close()
    assert len(hook.bodies) == 4 and hook.bodies[-1] == slack_payload(ROLLBACK)
    assert (notifier.stats.delivered, notifier.stats.retries, notifier.stats.failed) == (1, 3, 0)


async def test_a_4xx_is_final_and_a_dead_endpoint_is_given_up(
    notifier: WebhookNotifier, unused_tcp_port: int
) -> None:
    hook = Hook(404)
    server = await serve(hook)
    try:
        notifier.submit(str(server.make_url("/hook")), ROLLBACK)
        notifier.submit(f"http://127.0.0.1:{unused_tcp_port}/nothing-listens", ROLLBACK)
        await asyncio.wait_for(notifier.drain(), 10)
    finally:
        await server.close()
    assert len(hook.bodies) == 1
    assert notifier.stats.failed == 2 and notifier.stats.retries == 3  # the dead one: 4 tries


async def test_submit_never_waits_for_the_webhook(notifier: WebhookNotifier) -> None:
    hook = Hook()
    hook.gate.clear()  # the webhook hangs until released
    server = await serve(hook)
    try:
        for i in range(5):
            assert notifier.submit(
                str(server.make_url("/hook")), Notification("Breach", "prod", f"m{i}", "low")
            )
        await asyncio.sleep(0.3)  # the worker is now stuck in the first post
        assert hook.bodies == [] and notifier.stats.delivered == 0  # yet all five submits returned
        hook.gate.set()
        await asyncio.wait_for(notifier.drain(), 10)
    finally:
        await server.close()
    assert [b["attachments"][0]["title"] for b in hook.bodies] == [f"Breach prod/m{i}" for i in range(5)]


async def test_url_is_read_when_sending_and_a_full_queue_drops() -> None:
    small = WebhookNotifier(queue_size=1, attempts=1)
    hook = Hook()
    server = await serve(hook)
    reads = 0

    async def from_secret() -> str:
        nonlocal reads
        reads += 1
        return str(server.make_url("/hook"))

    try:
        assert small.submit(from_secret, ROLLBACK)
        assert not small.submit(from_secret, ROLLBACK)  # full: dropped, not blocking
        await asyncio.wait_for(small.drain(), 10)
    finally:
        await small.close()
        await server.close()
    assert reads == 1 and small.stats.dropped == 1 and small.stats.delivered == 1

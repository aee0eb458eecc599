"""A real Alertmanager delivering to the operator's receiver: alerts posted to Alertmanager's
API reach ``POST /v1/alerts`` with the bearer token, one trigger per alert however often it is
posted; a wrong token is refused; resolved alerts are recorded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from rankops.operator.controllers.alerts import AlertReceiver, TokenFile, start_receiver
from tests.integration.alerting_harness import Alertmanager, alertmanager_available

pytestmark = [
    pytest.mark.skipif(
        not alertmanager_available(),
        reason="prometheus-alertmanager not installed (Debian package, installed by `make prometheus`)",
    ),
    pytest.mark.timeout(120),
]


async def exists(namespace: str, name: str) -> bool:
    return (namespace, name) == ("default", "search")


def breach(model: str = "search", **labels: str) -> dict[str, Any]:
    return {
        "labels": {
            "alertname": "RankopsSLOBreach",
            "rankingmodel": model,
            "namespace": "default",
            "severity": "P1",
            **labels,
        },
        "annotations": {"summary": "NDCG@3 0.41 below 0.65"},
        "startsAt": (datetime.now(UTC) - timedelta(seconds=5)).isoformat(),
    }


async def wait_until(predicate: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds}s waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def served(tmp_path: Path, unused_tcp_port: int) -> AsyncIterator[tuple[AlertReceiver, str, Path]]:
    token = tmp_path / "token"
    token.write_text("am-token")
    receiver = AlertReceiver(TokenFile(token).read, exists)
    runner = await start_receiver(receiver, "127.0.0.1", unused_tcp_port)
    try:
        yield receiver, f"http://127.0.0.1:{unused_tcp_port}/v1/alerts", token
    finally:
        await runner.cleanup()


async def test_alertmanager_delivers_one_trigger_for_a_flood_of_100(
    served: tuple[AlertReceiver, str, Path],
) -> None:
    receiver, url, token = served
    am = await asyncio.to_thread(Alertmanager, url, token, repeat_interval="2s")
    try:
        alert = breach()
        # 100 posts of the same alert (Prometheus re-sends every evaluation) plus one unknown model
        for _ in range(100):
            await asyncio.to_thread(am.post_alerts, [alert])
        await asyncio.to_thread(am.post_alerts, [breach("ghost")])
        trigger = await asyncio.wait_for(receiver.next_trigger(), 30)
        assert (trigger.namespace, trigger.model, trigger.severity) == ("default", "search", "P1")
        # Alertmanager's repeat_interval (2 s) re-delivers the same alert: duplicates, no new trigger
        await wait_until(lambda: receiver.stats["duplicates"] >= 1, 20, "a repeated delivery")
        await wait_until(lambda: receiver.stats["unknown"] >= 1, 20, "the unknown model's delivery")
        assert receiver.stats["accepted"] == 1 and receiver.pending() == 0

        resolved = {**alert, "endsAt": datetime.now(UTC).isoformat()}
        await asyncio.to_thread(am.post_alerts, [resolved])
        await wait_until(lambda: len(receiver.resolved) == 1, 30, "the resolved delivery")
        assert receiver.resolved[0].model == "search" and receiver.pending() == 0
    finally:
        await asyncio.to_thread(am.stop)


async def test_alertmanager_with_a_wrong_token_is_refused(
    served: tuple[AlertReceiver, str, Path], tmp_path: Path
) -> None:
    receiver, url, _ = served
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token")
    am = await asyncio.to_thread(Alertmanager, url, wrong)
    try:
        await asyncio.to_thread(am.post_alerts, [breach()])
        await wait_until(lambda: receiver.stats["unauthorized"] >= 1, 30, "the refused delivery")
        assert receiver.pending() == 0 and receiver.stats["accepted"] == 0
    finally:
        await asyncio.to_thread(am.stop)

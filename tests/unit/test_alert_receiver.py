"""The Alertmanager receiver over HTTP (aiohttp test server): auth, bounds, validation,
unknown models, idempotency, coalescing, resolved alerts, TLS."""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from rankops.operator.controllers.alerts import AlertReceiver, TokenFile, start_receiver, tls_context

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODELS = {("prod", "search"), ("prod", "news")}


async def exists(namespace: str, name: str) -> bool:
    return (namespace, name) in MODELS


def alert(
    model: str = "search", *, status: str = "firing", fp: str = "fp1", starts: str = "2026-03-01T12:00:00Z"
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {
            "alertname": "RankopsSLOBreach",
            "rankingmodel": model,
            "namespace": "prod",
            "severity": "P1",
        },
        "annotations": {"summary": "ndcg low"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="RankopsSLOBreach"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "rankops",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


@pytest.fixture
async def receiver(tmp_path: Path) -> AlertReceiver:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return AlertReceiver(TokenFile(token).read, exists, max_body_bytes=4096)


@pytest.fixture
async def client(receiver: AlertReceiver) -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(receiver.app())) as c:
        yield c


async def test_firing_alert_triggers_an_evaluation(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    r = await client.post("/v1/alerts", json=payload(alert()), headers=AUTH)
    assert r.status == 200
    assert (await r.json())["accepted"] == 1
    trigger = await asyncio.wait_for(receiver.next_trigger(), 1)
    assert (trigger.namespace, trigger.model, trigger.severity) == ("prod", "search", "P1")
    assert trigger.alertname == "RankopsSLOBreach" and trigger.fingerprint == "fp1"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}, {"Authorization": "Basic czNjcmV0"}],
)
async def test_without_the_token_401(
    client: TestClient[Any, Any], receiver: AlertReceiver, headers: dict[str, str]
) -> None:
    r = await client.post("/v1/alerts", json=payload(alert()), headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert "token" in (await r.json())["error"]
    assert receiver.pending() == 0


async def test_token_file_is_reread_when_the_secret_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("one")
    source = TokenFile(path)
    assert source.read() == b"one"
    path.write_text("two-longer")
    assert source.read() == b"two-longer"
    path.write_text("")
    with pytest.raises(ValueError, match="empty"):
        TokenFile(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not JSON"),
        (json.dumps({"version": "3", "status": "firing", "alerts": []}).encode(), "version"),
        (json.dumps(payload({"labels": {}, "status": "firing"})).encode(), "alerts.0.startsAt"),
        (json.dumps(payload(alert(status="exploding"))).encode(), "alerts.0.status"),
        (json.dumps([1, 2]).encode(), "version 4"),
    ],
)
async def test_malformed_400_with_a_message(client: TestClient[Any, Any], body: bytes, message: str) -> None:
    r = await client.post("/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status == 400
    assert message in (await r.json())["error"]


async def test_over_the_size_bound_413_declared_or_chunked(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    big = json.dumps(payload(*[alert(fp=f"f{i}") for i in range(100)])).encode()
    assert len(big) > 4096
    r = await client.post("/v1/alerts", data=big, headers=AUTH)
    assert r.status == 413

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    r = await client.post("/v1/alerts", data=chunks(), headers=AUTH)  # no Content-Length
    assert r.status == 413
    assert "limit" in (await r.json())["error"]
    assert receiver.pending() == 0


async def test_unknown_model_404_and_logged(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    r = await client.post("/v1/alerts", json=payload(alert("ghost")), headers=AUTH)
    assert r.status == 404
    body = await r.json()
    assert body["unknownModels"] == ["prod/ghost"] and "prod/ghost" in body["error"]
    assert "prod/ghost" in caplog.text
    # mixed: the known one is taken, the unknown one listed
    r = await client.post(
        "/v1/alerts", json=payload(alert("ghost", fp="g"), alert("news", fp="n")), headers=AUTH
    )
    assert r.status == 200 and (await r.json())["unknownModels"] == ["prod/ghost"]


async def test_alerts_without_our_labels_are_ignored(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    other = {**alert(), "labels": {"alertname": "DiskFull"}}
    r = await client.post("/v1/alerts", json=payload(other), headers=AUTH)
    assert r.status == 200 and (await r.json())["ignored"] == 1 and receiver.pending() == 0


async def test_flood_of_100_duplicate_deliveries_queues_exactly_one_trigger(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    body = payload(alert())
    responses = await asyncio.gather(
        *(client.post("/v1/alerts", json=body, headers=AUTH) for _ in range(100))
    )
    assert all(r.status == 200 for r in responses)
    assert receiver.stats["accepted"] == 1 and receiver.stats["duplicates"] == 99
    assert receiver.pending() == 1
    await receiver.next_trigger()
    assert receiver.pending() == 0
    # a new firing (new startsAt) of the same alert is a new trigger
    await client.post("/v1/alerts", json=payload(alert(starts="2026-03-01T13:00:00Z")), headers=AUTH)
    assert receiver.pending() == 1


async def test_triggers_for_a_waiting_model_coalesce(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    body = payload(alert(fp="breach"), alert(fp="p1"), alert("news", fp="n"))
    assert (await (await client.post("/v1/alerts", json=body, headers=AUTH)).json())["accepted"] == 3
    assert receiver.pending() == 2  # search once, news once


async def test_resolved_alerts_are_recorded_not_acted_on(
    client: TestClient[Any, Any], receiver: AlertReceiver
) -> None:
    await client.post("/v1/alerts", json=payload(alert()), headers=AUTH)
    await receiver.next_trigger()
    resolved = alert(status="resolved")
    resolved["endsAt"] = "2026-03-01T12:05:00Z"
    for _ in range(3):
        r = await client.post("/v1/alerts", json=payload(resolved, status="resolved"), headers=AUTH)
        assert r.status == 200
    assert receiver.pending() == 0
    assert [(a.model, a.ends_at) for a in receiver.resolved] == [("search", "2026-03-01T12:05:00Z")]


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


async def test_served_over_tls_when_a_certificate_is_mounted(
    receiver: AlertReceiver, certificate: tuple[Path, Path], unused_tcp_port: int
) -> None:
    cert, key = certificate
    runner = await start_receiver(receiver, "127.0.0.1", unused_tcp_port, tls_context(cert, key))
    try:
        trust = ssl.create_default_context(cafile=str(cert))
        url = f"https://127.0.0.1:{unused_tcp_port}/v1/alerts"
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=payload(alert()), headers=AUTH, ssl=trust) as r:
                assert r.status == 200
            with pytest.raises(aiohttp.ClientError):  # plain HTTP is not served
                async with session.post(url.replace("https", "http"), json=payload(alert()), headers=AUTH):
                    pass
    finally:
        await runner.cleanup()
    assert receiver.pending() == 1

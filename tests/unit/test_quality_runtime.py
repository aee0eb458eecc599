"""The receiver's configuration from the environment and its start/stop in the operator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import kopf
import pytest

from rankops.operator.adapters.kube import KubeClient
from rankops.operator.adapters.prometheus import PrometheusMetricsSource
from rankops.operator.controllers.quality_runtime import QualityRuntime, ReceiverConfig
from rankops.operator.controllers.qualityslo import QualitySLOController


def test_config_from_env(tmp_path: Path) -> None:
    assert ReceiverConfig.from_env({}) == ReceiverConfig()
    config = ReceiverConfig.from_env(
        {
            "RANKOPS_ALERTS_PORT": "8081",
            "RANKOPS_ALERTS_TOKEN_FILE": "/etc/t",
            "RANKOPS_ALERTS_CERT_DIR": "/etc/c",
        }
    )
    assert (config.port, config.host, config.token_file, config.cert_dir) == (
        8081,
        "0.0.0.0",
        Path("/etc/t"),
        Path("/etc/c"),
    )
    with pytest.raises(ValueError, match="never runs without a bearer token"):
        ReceiverConfig.from_env({"RANKOPS_ALERTS_PORT": "8081"})
    with pytest.raises(ValueError, match="integers"):
        ReceiverConfig.from_env({"RANKOPS_ALERTS_PORT": "http", "RANKOPS_ALERTS_TOKEN_FILE": "/t"})
    with pytest.raises(ValueError, match="out of range"):
        ReceiverConfig.from_env({"RANKOPS_ALERTS_PORT": "70000", "RANKOPS_ALERTS_TOKEN_FILE": "/t"})


async def exists(namespace: str, name: str) -> bool:
    return False


def controller() -> QualitySLOController:
    client = KubeClient(lambda: kopf.ConnectionInfo(server="http://127.0.0.1:9"))
    return QualitySLOController(
        client, PrometheusMetricsSource("http://127.0.0.1:9"), post_event=lambda *a: None
    )


async def test_start_serves_with_the_token_and_stops(tmp_path: Path, unused_tcp_port: int) -> None:
    token = tmp_path / "token"
    token.write_text("t0ken")
    runtime = QualityRuntime(
        controller(), ReceiverConfig(port=unused_tcp_port, host="127.0.0.1", token_file=token), exists
    )
    await runtime.start()
    try:
        url = f"http://127.0.0.1:{unused_tcp_port}/v1/alerts"
        body: dict[str, Any] = {"version": "4", "status": "firing", "alerts": []}
        async with aiohttp.ClientSession() as session:
            async with session.post(url, json=body) as r:
                assert r.status == 401
            async with session.post(url, json=body, headers={"Authorization": "Bearer t0ken"}) as r:
                assert r.status == 200
    finally:
        await runtime.stop()
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(f"http://127.0.0.1:{unused_tcp_port}/v1/alerts", json={}):
                pass


async def test_no_port_no_receiver_and_a_missing_token_fails_start_up(tmp_path: Path) -> None:
    runtime = QualityRuntime(controller(), ReceiverConfig(), exists)
    await runtime.start()
    assert runtime.receiver is None
    await runtime.stop()
    broken = QualityRuntime(controller(), ReceiverConfig(port=0, token_file=tmp_path / "absent"), exists)
    with pytest.raises(FileNotFoundError):
        await broken.start()


def test_operator_run_refuses_a_receiver_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rankops.cli.main import main

    for name in ("RANKOPS_ALERTS_PORT", "RANKOPS_ALERTS_TOKEN_FILE", "RANKOPS_ALERTS_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.environ", dict(__import__("os").environ))  # flags write the environment
    assert main(["operator", "run", "--alerts-port", "8081"]) == 2
    assert "never runs without a bearer token" in capsys.readouterr().err

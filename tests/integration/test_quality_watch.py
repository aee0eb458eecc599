"""The live quality watch end to end: the real operator (RankingModel controller) on the sandbox
API server, stand-in serving pods, a real Prometheus evaluating the alert rules rankops
generated, a real Alertmanager delivering to the receiver, and the QualitySLO controller.

- a breach right after a promotion: Prometheus fires, Alertmanager delivers, the model is rolled
  back to the previous revision (status, history, Event, the stable Deployment), spec untouched;
- the same breach without a recent promotion: invalidate (every pod) -> rolling restart ->
  verify, and a flood of 100 duplicate alerts on top causes exactly one action;
- Prometheus down during an evaluation: NoData, no action.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.alerting_harness import alertmanager_available
from tests.integration.conftest import (
    NAMESPACE,
    event_reasons,
    get_model,
    ranking_model,
    status_of,
    wait_status,
)
from tests.integration.harness import Exporter, free_port, wait_for
from tests.integration.quality_stack import endpoint_slice, quality_stack, slo_manifest
from tests.unit.test_prometheus_rule_writer import PROMETHEUS_RULE_CRD

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.slow,
    pytest.mark.timeout(240),
    pytest.mark.skipif(not alertmanager_available(), reason="prometheus-alertmanager not installed"),
]


def model_manifest(name: str, *, post_promotion: bool) -> dict[str, Any]:
    obj = ranking_model(name, "1.0.0", steps=[{"weight": 100}], slo="watch")
    if post_promotion:
        obj["spec"]["rollout"]["postPromotion"] = {"window": "1h", "action": "Rollback"}
    return obj


@pytest.fixture
def pod() -> Iterator[Exporter]:
    exporter = Exporter("unset", "1.0.0", "stable", mean=0.8, sd=0.03, rate=40, seed=7)
    try:
        yield exporter
    finally:
        exporter.stop()


async def wait(api: Any, name: str, predicate: Any, seconds: float, what: str) -> dict[str, Any]:
    return await asyncio.to_thread(wait_status, api, name, predicate, seconds, what)


async def until(predicate: Any, seconds: float, what: str) -> Any:
    return await asyncio.to_thread(wait_for, predicate, seconds, 0.2, what)


def deployment(api: Any, name: str) -> dict[str, Any]:
    obj = api.get_object("deployments", name, NAMESPACE)
    assert obj is not None
    return dict(obj)


async def test_breach_after_promotion_rolls_back_through_alertmanager(
    api: Any, operator: Any, pod: Exporter, tmp_path: Path
) -> None:
    """All in the operator: its QualitySLO timer, its receiver; this test only changes the world."""
    name = "watched"
    api.create(PROMETHEUS_RULE_CRD)  # the Prometheus Operator's API is served here
    async with quality_stack(api, [pod], tmp_path) as stack:
        handle = operator(stack.prometheus.url, **stack.operator_env())
        slo = slo_manifest("watch")
        slo["spec"]["evaluation"]["interval"] = "1s"  # until 1.0.0 is seen healthy
        api.create(slo)
        stack.install_rules(slo, [name])
        pod.set(model=name, version="1.0.0", mean=0.8)
        api.create(model_manifest(name, post_promotion=True))
        status = await wait(
            api,
            name,
            lambda s: ((s.get("quality") or {}).get("stable") or {}).get("healthy") is True,
            60,
            "v1 healthy",
        )
        assert status["quality"]["stable"]["version"] == "1.0.0" and status["phase"] == "Healthy"
        met = next(c for c in status["conditions"] if c["type"] == "QualityMet")
        assert (met["status"], met["observedGeneration"]) == ("True", 1)
        # from now on the timer waits an hour: only an alert can make the operator look again
        rule = await until(
            lambda: api.get_object("prometheusrules", "rankops-slo-watch", NAMESPACE), 10, "rules"
        )
        assert rule["spec"]["groups"][0]["rules"][0]["for"] == "2s"
        assert 'model=~"watched"' in rule["spec"]["groups"][0]["rules"][0]["expr"]
        slo_obj = api.get_object("qualityslos", "watch", NAMESPACE)
        slo_obj["spec"]["evaluation"]["interval"] = "1h"
        slo_obj["spec"]["alerting"]["for"] = "3s"  # the PrometheusRule follows the SLO
        api.apply_object(slo_obj)
        await asyncio.sleep(2.5)
        rule = api.get_object("prometheusrules", "rankops-slo-watch", NAMESPACE)
        assert rule["spec"]["groups"][0]["rules"][0]["for"] == "3s"

        # promote 1.1.0 (steps [100], no analysis at 100 %): the pods now report 1.1.0, and it is bad
        obj = get_model(api, name)
        obj["spec"]["model"].update(version="1.1.0", uri=f"file:///models/{name}/1.1.0")
        api.apply_object(obj)
        await wait(
            api,
            name,
            lambda s: s.get("stableVersion") == "1.1.0" and s.get("phase") == "Healthy",
            60,
            "promoted",
        )
        pod.set(version="1.1.0", mean=0.3)

        # Prometheus fires, Alertmanager delivers to the operator, the operator rolls back
        status = await wait(
            api, name, lambda s: s.get("phase") == "RolledBack", 90, "rolled back by the alert"
        )
        assert status["stableVersion"] == "1.0.0" and status["abortedVersion"] == "1.1.0"
        assert (
            status["history"][-1]["outcome"] == "RolledBack"
            and status["history"][-1]["reason"] == "PostPromotionBreach"
        )
        expected = (
            r"ndcg Breached at 0\.[0-3]\d* \(P0\) \d+s after promoting 1\.1\.0 \(window 1h\): "
            r"rolling back to 1\.0\.0$"
        )
        assert re.match(expected, status["message"]), status["message"]
        assert status["quality"]["rollback"]["fromVersion"] == "1.1.0"
        assert get_model(api, name)["spec"]["model"]["version"] == "1.1.0"  # the spec is never edited

        # the operator applies it: the stable Deployment serves the previous revision again
        def stable_version() -> str | None:
            return deployment(api, f"{name}-stable")["metadata"]["labels"].get("rankops.dev/version")

        await until(lambda: stable_version() == "1.0.0", 30, "stable Deployment back on 1.0.0")
        assert "RolledBack" in await asyncio.to_thread(event_reasons, api, name)
        slo_status = api.get_object("qualityslos", "watch", NAMESPACE)["status"]
        ready = next(c for c in slo_status["conditions"] if c["type"] == "Ready")
        assert (
            ready["status"] == "True" and ready["observedGeneration"] == slo_obj["metadata"]["generation"] + 1
        )
        log = handle.stop()
    assert "alert RankopsSLO" in log and f"for default/{name}: evaluating now" in log
    assert "Alertmanager receiver on http://127.0.0.1:" in log


async def webhook() -> tuple[TestServer, list[Any]]:
    """A Slack-compatible incoming webhook on loopback, keeping what it receives."""
    received: list[Any] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app)
    await server.start_server()
    return server, received


def _webhook(port_url: str, token: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        port_url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


async def test_breach_without_promotion_runs_the_ladder_and_a_flood_acts_once(
    api: Any, operator: Any, pod: Exporter, tmp_path: Path
) -> None:
    """All in the operator: a flood of 100 duplicate alerts to its receiver, its timer after that."""
    name = "laddered"
    hook, received = await webhook()
    async with quality_stack(api, [pod], tmp_path) as stack:
        handle = operator(stack.prometheus.url, **stack.operator_env())
        slo = slo_manifest("watch", settle="3s")
        slo["spec"]["notifications"] = [{"name": "chat", "secretRef": {"name": "chat-hook"}}]
        hook_url = str(hook.make_url("/hook")).encode()
        secret_meta = {"name": "chat-hook", "namespace": NAMESPACE}
        secret = {"apiVersion": "v1", "kind": "Secret", "metadata": secret_meta}
        api.create({**secret, "data": {"url": base64.b64encode(hook_url).decode()}})
        api.create(slo)
        stack.install_rules(slo, [name])
        pod.set(model=name, version="1.0.0", mean=0.8)
        api.create(model_manifest(name, post_promotion=False))
        await wait(api, name, lambda s: s.get("phase") == "Healthy", 30, "Healthy")
        api.create(endpoint_slice(f"{name}-stable", pod, f"{name}-stable-0"))
        before = pod.get()["invalidations"]

        # a flood of 100 duplicate deliveries of one alert to the operator's receiver as soon as it
        # breaches (the SLO's timer waits an hour): one trigger, one evaluation, one InvalidateCaches
        pod.set(mean=0.3)
        firing = await until(
            lambda: [a for a in stack.prometheus.firing() if a["labels"].get("severity") == "breach"],
            60,
            "firing",
        )
        alert = firing[0]
        payload = {
            "version": "4", "status": "firing", "receiver": "rankops", "groupLabels": {}, "commonLabels": {},
            "commonAnnotations": {}, "externalURL": "", "groupKey": "flood", "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "labels": alert["labels"], "annotations": alert["annotations"],
                        "startsAt": alert["activeAt"], "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
                        "fingerprint": "flood-fingerprint"}],
        }  # fmt: skip
        url = f"http://127.0.0.1:{stack.receiver_port}/v1/alerts"
        codes = await asyncio.gather(
            *(asyncio.to_thread(_webhook, url, "integration-token", payload) for _ in range(100))
        )
        assert codes == [200] * 100
        status = await wait(
            api,
            name,
            lambda s: (s.get("quality") or {}).get("remediation", {}).get("attempts") == 1,
            60,
            "ladder started",
        )
        await until(lambda: pod.get()["invalidations"] == before + 1, 10, "the pod's cache invalidated")
        assert pod.get()["last_invalidation"] == {"quality_threshold": 0.65, "force_refresh": True}
        steps = status["quality"]["remediation"]["steps"]
        assert steps[0]["step"] == "InvalidateCaches"

        # the polling path carries on: restart after the settle time, then verify
        slo_obj = api.get_object("qualityslos", "watch", NAMESPACE)
        slo_obj["spec"]["evaluation"]["interval"] = "1s"
        api.apply_object(slo_obj)
        status = await wait(
            api,
            name,
            lambda s: (s.get("quality") or {}).get("remediation", {}).get("lastOutcome") == "StillBreaching",
            60,
            "verified",
        )
        steps = status["quality"]["remediation"]["steps"]
        assert [s["step"] for s in steps] == ["InvalidateCaches", "RollingRestart", "Verify"]
        assert steps[0]["outcome"] == "1/1 pods invalidated"
        restarted = deployment(api, f"{name}-stable")["spec"]["template"]["metadata"]["annotations"][
            "rankops.dev/restartedAt"
        ]
        assert restarted == status["quality"]["restartedAt"]
        assert status["phase"] == "Healthy"  # the ladder never rolls back nor touches the rollout
        await asyncio.sleep(3)  # more evaluations: nothing more to do (one run, maxAttempts 1)
        assert pod.get()["invalidations"] == before + 1  # exactly one action per step, flood or not
        reasons = await asyncio.to_thread(event_reasons, api, name)
        assert reasons.count("InvalidateCaches") == 1 and reasons.count("RollingRestart") == 1
        assert "StillBreaching" in reasons
        log = handle.stop()
        await hook.close()
    # alerts woke the operator (the flood once, Alertmanager's own breach and tier alerts at most
    # once each: distinct fingerprints), and all of them together made one invalidation (above)
    assert 1 <= log.count(f"for default/{name}: evaluating now") <= 5
    # the chat webhook heard of the breach and of each remediation step (URL from the Secret)
    texts = [body["text"] for body in received]
    assert any(t.startswith(f"[rankops] Breach: default/{name}: ndcg Breached") for t in texts), texts
    assert any("Remediation" in t and "InvalidateCaches" in t for t in texts), texts
    assert any("Remediation" in t and "RollingRestart" in t for t in texts), texts
    assert any("StillBreaching" in t for t in texts), texts


async def test_prometheus_down_is_no_data_and_no_action(
    api: Any, operator: Any, pod: Exporter, tmp_path: Path
) -> None:
    """The operator's Prometheus does not answer: every evaluation is NoData and nothing acts,
    although the pod's stream would breach."""
    name = "blind"
    dead = f"http://127.0.0.1:{free_port()}"
    operator(dead)
    slo = slo_manifest("watch")
    slo["spec"]["evaluation"]["interval"] = "1s"
    api.create(slo)
    pod.set(model=name, version="1.0.0", mean=0.3)
    api.create(model_manifest(name, post_promotion=True))
    api.create(endpoint_slice(f"{name}-stable", pod, f"{name}-stable-0"))
    await wait(api, name, lambda s: s.get("phase") == "Healthy", 30, "Healthy")
    await wait(api, name, lambda s: (s.get("quality") or {}).get("state") == "NoData", 30, "NoData")
    await asyncio.sleep(3)  # several evaluations
    slo_status = api.get_object("qualityslos", "watch", NAMESPACE)["status"]
    assert slo_status["state"] == "NoData" and "cannot connect to Prometheus" in slo_status["message"]
    ready = next(c for c in slo_status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "MetricsUnavailable")
    quality = status_of(api, name)["quality"]
    assert quality["state"] == "NoData" and (quality.get("remediation") or {}).get("attempts", 0) == 0
    assert "rollback" not in quality and status_of(api, name)["phase"] == "Healthy"
    assert pod.get()["invalidations"] == 0
    met = next(c for c in status_of(api, name)["conditions"] if c["type"] == "QualityMet")
    assert met["status"] == "Unknown"

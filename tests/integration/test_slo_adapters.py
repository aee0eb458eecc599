"""The QualitySLO watch's adapters against real parts: grouped queries on a real Prometheus
(one answer per model series; Prometheus down raises, never "no data"), cache invalidation on
every ready endpoint of a Service (EndpointSlices in the sandbox API server, stand-in pods on
loopback), the rolling-restart annotation."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import kopf
import pytest

from rankops.operator.adapters.kube import KubeClient, resource_path
from rankops.operator.adapters.prometheus import MetricsUnavailable, PrometheusMetricsSource
from rankops.operator.adapters.serving_pods import RESTARTED_AT, ServingPods
from rankops.operator.adapters.slo_metrics import objective_series
from rankops.operator.core.slo.objectives import default_objective, grouped_queries
from rankops.sandbox.apiserver import SandboxAPIServer
from tests.integration.harness import Exporter, Prometheus, free_port
from tests.integration.quality_stack import serve_endpoint_slices

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(120)]


@pytest.fixture(scope="module")
def pods() -> Iterator[tuple[Exporter, Exporter, Prometheus]]:
    good = Exporter("alpha", "1.0.0", "stable", mean=0.8, sd=0.02, rate=40, seed=1)
    bad = Exporter("beta", "2.0.0", "stable", mean=0.4, sd=0.02, rate=40, seed=2)
    prometheus = Prometheus([good.address, bad.address])
    try:
        prometheus.wait_scraped(good.address, bad.address, timeout=30)
        yield good, bad, prometheus
    finally:
        prometheus.stop()
        good.stop()
        bad.stop()


async def test_one_grouped_query_answers_every_model(pods: tuple[Exporter, Exporter, Prometheus]) -> None:
    _, _, prometheus = pods
    queries = grouped_queries(default_objective("ndcg_at_3"), ["alpha", "beta", "gamma"], 30)

    async def both_counted() -> dict[Any, Any]:
        async with PrometheusMetricsSource(prometheus.url) as source:
            return await objective_series(source, queries)

    deadline = asyncio.get_running_loop().time() + 30
    while True:
        series = await both_counted()
        if all(
            ((series.get((m, v, "stable")) or (None, 0.0))[1] or 0.0) >= 40
            for m, v in (("alpha", "1.0.0"), ("beta", "2.0.0"))
        ):
            break
        assert asyncio.get_running_loop().time() < deadline, series
        await asyncio.sleep(0.5)
    alpha, beta = series[("alpha", "1.0.0", "stable")], series[("beta", "2.0.0", "stable")]
    assert alpha[0] is not None and abs(alpha[0] - 0.8) < 0.05
    assert beta[0] is not None and abs(beta[0] - 0.4) < 0.05
    assert ("gamma", "1.0.0", "stable") not in series  # no series, no data: never a value of 0


async def test_prometheus_down_raises() -> None:
    queries = grouped_queries(default_objective("ndcg_at_3"), ["alpha"], 30)
    async with PrometheusMetricsSource(f"http://127.0.0.1:{free_port()}", timeout=2) as source:
        with pytest.raises(MetricsUnavailable) as info:
            await objective_series(source, queries)
    assert info.value.cause == "connection"


def _slice(name: str, service: str, port: int, endpoints: list[tuple[str, bool]]) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
        "endpoints": [
            {
                "addresses": ["127.0.0.1"],
                "conditions": {"ready": ready},
                "targetRef": {"kind": "Pod", "name": pod},
            }
            for pod, ready in endpoints
        ],
    }


async def test_invalidate_every_ready_pod_and_restart(pods: tuple[Exporter, Exporter, Prometheus]) -> None:
    good, bad, _ = pods
    before = good.get()["invalidations"], bad.get()["invalidations"]
    async with SandboxAPIServer(crds=[]) as api:
        serve_endpoint_slices(api)
        client = KubeClient(lambda: kopf.ConnectionInfo(server=api.url))
        serving = ServingPods(client, timeout_s=2)
        try:
            # one slice per resolved port (as the EndpointSlice controller groups them); one pod not ready,
            # one dead (nothing listens)
            slices = [
                (good.port, [("m-stable-a", True)]),
                (bad.port, [("m-stable-b", True), ("m-stable-c", False)]),
                (free_port(), [("m-stable-dead", True)]),
            ]
            for i, (port, eps) in enumerate(slices):
                await client.create(
                    "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                    _slice(f"m-stable-{i}", "m-stable", port, eps),
                )
            await client.create(
                "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices",
                _slice("other", "other", good.port, [("o", True)]),
            )
            outcome = await serving.invalidate_caches("default", "m-stable", 0.65)
            assert (outcome.total, outcome.succeeded) == (3, 2)
            assert len(outcome.errors) == 1 and outcome.errors[0].startswith("m-stable-dead:")
            assert outcome.describe().startswith("2/3 pods invalidated; failed: m-stable-dead")
            assert (
                good.get()["invalidations"] == before[0] + 1 and bad.get()["invalidations"] == before[1] + 1
            )
            assert good.get()["last_invalidation"] == {"quality_threshold": 0.65, "force_refresh": True}

            deployment = {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "m-stable", "namespace": "default"},
                "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}},
            }
            await client.create(resource_path("Deployment", "default"), deployment)
            at = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
            await serving.rolling_restart("default", "m-stable", at)
            stored = await client.get(resource_path("Deployment", "default", "m-stable"))
            assert stored is not None
            assert stored["spec"]["template"]["metadata"] == {
                "labels": {"a": "b"},
                "annotations": {RESTARTED_AT: "2026-03-01T12:00:00Z"},
            }
        finally:
            await client.close()

"""PrometheusMetricsSource against a tiny aiohttp server serving canned Prometheus answers."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from rankops.operator.adapters.prometheus import (
    MetricsSource,
    MetricsUnavailable,
    PrometheusMetricsSource,
    name_union,
    parse_scalar_response,
)
from rankops.operator.core.verdict import TrackSummary
from tests.operator_support import StaticMetricsSource, summary_from_sums, summary_queries, track_summary


def vector(*values: float, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": labels or {}, "value": [1700000000.0, str(v)]} for v in values],
        },
    }


Responder = Callable[[web.Request], Any]


@pytest.fixture
async def prom() -> AsyncIterator[tuple[str, list[Responder], list[dict[str, str]]]]:
    """A fake Prometheus: the test pushes responders; each request is recorded."""
    responders: list[Responder] = []
    seen: list[dict[str, str]] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(dict(request.query))
        responder = responders[0] if len(responders) == 1 else responders.pop(0)
        result = responder(request)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.StreamResponse):
            return result
        return web.json_response(result)

    app = web.Application()
    app.router.add_get("/api/v1/query", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), responders, seen
    finally:
        await server.close()


async def test_scalar_from_single_series_vector(prom: Any) -> None:
    url, responders, seen = prom
    responders.append(lambda r: vector(0.75))
    async with PrometheusMetricsSource(url, timeout=2) as source:
        assert await source.query("up") == 0.75
    assert seen[0]["query"] == "up"


async def test_empty_vector_is_no_data(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: vector())
    async with PrometheusMetricsSource(url) as source:
        assert await source.query("absent_metric") is None


async def test_nan_is_no_data(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: vector(float("nan")))
    async with PrometheusMetricsSource(url) as source:
        assert await source.query("0/0") is None


async def test_scalar_result_type(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}})
    async with PrometheusMetricsSource(url) as source:
        assert await source.query("3") == 3.0


async def test_prometheus_error_status_keeps_error_type(prom: Any) -> None:
    url, responders, _ = prom
    body = {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}
    responders.append(lambda r: web.json_response(body, status=400))
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="bad_data: parse error at char 5") as info:
            await source.query("sum(")
    assert info.value.cause == "prometheus"


async def test_http_error_without_prometheus_body(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: web.Response(status=502, text="bad gateway"))
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="HTTP 502") as info:
            await source.query("up")
    assert info.value.cause == "http"


async def test_non_json_success_is_an_error(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: web.Response(status=200, text="<html>login</html>"))
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="non-JSON"):
            await source.query("up")


async def test_multiple_series_is_an_error(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: vector(1, 2))
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="expected one series, got 2") as info:
            await source.query("up")
    assert info.value.cause == "result"


async def test_matrix_is_an_error(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: {"status": "success", "data": {"resultType": "matrix", "result": []}})
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="result type 'matrix'"):
            await source.query("up[5m]")


async def test_timeout(prom: Any) -> None:
    url, responders, _ = prom

    async def slow(request: web.Request) -> dict[str, Any]:
        await asyncio.sleep(2)
        return vector(1)

    responders.append(slow)
    async with PrometheusMetricsSource(url, timeout=0.2) as source:
        with pytest.raises(MetricsUnavailable, match=r"did not answer within 0.2s") as info:
            await source.query("up")
    assert info.value.cause == "timeout"


async def test_connection_refused() -> None:
    with socket.socket() as sock:  # a port that nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with PrometheusMetricsSource(f"http://127.0.0.1:{port}", timeout=2) as source:
        with pytest.raises(MetricsUnavailable, match="cannot connect to Prometheus") as info:
            await source.query("up")
    assert info.value.cause == "connection"


async def test_evaluation_time_is_passed(prom: Any) -> None:
    from datetime import UTC, datetime

    url, responders, seen = prom
    responders.append(lambda r: vector(1))
    async with PrometheusMetricsSource(url) as source:
        await source.query("up", at=datetime(2026, 1, 1, tzinfo=UTC))
    assert float(seen[0]["time"]) == datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def matrix(*series: list[tuple[float, float]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"pod": f"p{i}"}, "values": [[t, str(v)] for t, v in samples]}
                for i, samples in enumerate(series)
            ],
        },
    }


async def test_track_summary_from_exact_increases_of_raw_samples(prom: Any) -> None:
    url, responders, seen = prom
    # Series p0 starts inside the window (counted from 0): n=4 samples 0.5, 0.7, 0.9, 0.7: sum 2.8,
    # squares 2.04 -> mean 0.7, variance 0.02667. Series p1 has a baseline before the window and does
    # not move inside it: it adds nothing.
    answers = {
        "rankops_ndcg_at_3_count": ((2.0, 4.0), 10.0),
        "rankops_ndcg_at_3_sum": ((1.2, 2.8), 7.0),
        "rankops_ndcg_at_3_squares_sum_total": ((0.74, 2.04), 5.0),
    }

    def union(request: web.Request) -> dict[str, Any]:
        query, at = request.query["query"], float(request.query["time"])
        assert query.startswith('{__name__=~"' + "|".join(answers) + '",'), query
        assert query.endswith("}[310s]"), query  # the window plus the lookback for a baseline
        result = [
            {"metric": {"__name__": metric, "pod": pod}, "values": [[t, str(v)] for t, v in samples]}
            for metric, ((first, last), idle) in answers.items()
            for pod, samples in (
                ("p0", [(at - 5, first), (at - 1, last)]),
                ("p1", [(at - 20, idle), (at - 2, idle)]),
            )
        ]
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    responders.append(union)
    async with PrometheusMetricsSource(url) as source:
        summary = await track_summary(source, "m", "canary", "1.1.0", 10)
    assert summary is not None
    assert summary.n == 4
    assert summary.mean == pytest.approx(0.7)
    assert summary.variance == pytest.approx(0.08 / 3)
    assert summary.total == pytest.approx(2.8) and summary.squares_total == pytest.approx(2.04)
    # one query, so Prometheus shows the three counters from the same scrapes (module docstring)
    assert len(seen) == 1
    assert 'model="m"' in seen[0]["query"] and 'track="canary"' in seen[0]["query"]


def test_only_selectors_with_the_same_matchers_share_a_query() -> None:
    assert name_union(['a{x="1",y="2"}', 'b{x="1",y="2"}', 'a{x="1",y="2"}']) == (
        '{__name__=~"a|b",x="1",y="2"}',
        ["a", "b", "a"],
    )
    assert name_union(["up", "down"]) == ('{__name__=~"up|down"}', ["up", "down"])
    assert name_union(['r{m="1"}', 'r{m="1",code=~"5.."}']) is None  # the error rate: two queries
    assert name_union(['a{m="1"}']) is None
    assert name_union(["sum(a)", "b"]) is None


async def test_selectors_with_different_matchers_are_separate_queries_at_one_time(prom: Any) -> None:
    url, responders, seen = prom
    responders.append(lambda r: matrix([(float(r.query["time"]) - 1, 3.0)]))
    async with PrometheusMetricsSource(url) as source:
        assert await source.increases(['r{m="1"}', 'r{m="1",code=~"5.."}'], 10) == [3.0, 3.0]
    assert [s["query"] for s in seen] == ['r{m="1"}[310s]', 'r{m="1",code=~"5.."}[310s]']
    assert len({s["time"] for s in seen}) == 1


async def test_track_summary_no_data(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: matrix())
    async with PrometheusMetricsSource(url) as source:
        assert await track_summary(source, "m", "canary", "1.1.0", 10) is None


async def test_increases_reject_a_non_matrix_answer(prom: Any) -> None:
    url, responders, _ = prom
    responders.append(lambda r: vector(1))
    async with PrometheusMetricsSource(url) as source:
        with pytest.raises(MetricsUnavailable, match="expected a range vector") as info:
            await source.increases(["x"], 10)
    assert info.value.cause == "result"


def test_summary_queries_escape_and_window() -> None:
    q = summary_queries('m"x', "stable", "1.0.0", 7.5)
    assert (
        q["count"]
        == 'sum(increase(rankops_ndcg_at_3_count{model="m\\"x",track="stable",version="1.0.0"}[8s]))'
    )
    assert "rankops_ndcg_at_3_squares_sum_total{" in q["squares"] and "rankops_ndcg_at_3_sum{" in q["sum"]


def test_summary_from_sums_edge_cases() -> None:
    assert summary_from_sums(0, 0, 0) is None
    assert summary_from_sums(None, 0.64, 1) is None
    one = summary_from_sums(0.8, 0.64, 1)
    assert one == TrackSummary(n=1, total=0.8, squares_total=0.64)
    # rounding can make the variance slightly negative: clamped at zero
    clamped = summary_from_sums(2.0, 0.9999999, 4)
    assert clamped is not None and clamped.variance == 0.0


def test_parse_rejects_garbage() -> None:
    with pytest.raises(MetricsUnavailable):
        parse_scalar_response(["not", "a", "dict"])


async def test_static_source_satisfies_protocol() -> None:
    source = StaticMetricsSource({("m", "stable", "1"): TrackSummary(100, 80.0, 64.5)})
    assert isinstance(source, MetricsSource)
    assert await track_summary(source, "m", "stable", "1", 10) == TrackSummary(100, 80.0, 64.5)
    assert await track_summary(source, "m", "canary", "2", 10) is None
    source.error = MetricsUnavailable("down", cause="connection")
    with pytest.raises(MetricsUnavailable):
        await source.query("up")

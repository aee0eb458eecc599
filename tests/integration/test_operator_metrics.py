"""The Prometheus adapter against the real Prometheus scraping the exporter processes."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import pytest

from rankops.operator.adapters.prometheus import MetricsUnavailable, PrometheusMetricsSource
from tests.operator_support import track_summary

pytestmark = [pytest.mark.prometheus, pytest.mark.timeout(60)]


async def test_track_summary_from_real_prometheus(stack: Any, model_name: str) -> None:
    stack.use(model_name, "1.0.0", "1.1.0", stable_mean=0.8, canary_mean=0.6, sd=0.05, rate=50)
    async with PrometheusMetricsSource(stack.url, timeout=2) as source:

        async def scraped(track: str) -> float:
            selector = f'rankops_ndcg_at_3_count{{model="{model_name}",track="{track}"}}'
            return await source.query(f"sum(count_over_time({selector}[1m]))") or 0.0

        deadline = time.monotonic() + 30
        while min(await scraped("stable"), await scraped("canary")) < 5:
            assert time.monotonic() < deadline, "the relabelled series were not scraped within 30 s"
            await asyncio.sleep(0.25)
        # The window holds each series' first sample (the series are a few seconds old): the case in
        # which increase()'s per-counter extrapolation inflated the variance (sd 0.080 seen for 0.05).
        # Exact increases from the raw samples keep count, sum and squares consistent.
        stable = await track_summary(source, model_name, "stable", "1.0.0", 60)
        canary = await track_summary(source, model_name, "canary", "1.1.0", 60)
        # A window shorter than the series' life (a baseline sample before it).
        short = await track_summary(source, model_name, "canary", "1.1.0", 2)
        other = await track_summary(source, model_name, "canary", "9.9.9", 60)
        up = await source.query('count(up{job="rankops"} == 1)')
    assert stable is not None and canary is not None and short is not None
    for summary in (stable, canary, short):
        assert summary.n == int(summary.n), "exact increases: n is a whole number of samples"
    assert stable.n > 30 and canary.n > 30 and short.n > 0
    assert stable.mean == pytest.approx(0.8, abs=0.03) and canary.mean == pytest.approx(0.6, abs=0.03)
    # The stream's sd is 0.05; with n >= 30 the sample sd lies within +-30 % of it (> 3 standard errors).
    for summary in (stable, canary):
        assert 0.035 < math.sqrt(summary.variance) < 0.065, (summary, math.sqrt(summary.variance))
    assert other is None, "a version nobody exports is no data"
    assert up == 2


async def test_bad_promql_is_reported_with_prometheus_error(stack: Any) -> None:
    async with PrometheusMetricsSource(stack.url, timeout=2) as source:
        with pytest.raises(MetricsUnavailable, match="bad_data") as info:
            await source.query("sum(rate(")
    assert info.value.cause == "prometheus"


async def test_vector_of_several_series_is_rejected(stack: Any) -> None:
    async with PrometheusMetricsSource(stack.url, timeout=2) as source:
        with pytest.raises(MetricsUnavailable, match="expected one series"):
            await source.query('up{job="rankops"}')

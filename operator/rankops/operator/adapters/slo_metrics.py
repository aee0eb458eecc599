"""Grouped instant queries for the QualitySLO watch: one vector per query, one number per
(model, version, track) series.

``objective_series(source, queries) -> {(model, version, track): (value, samples)}`` runs the
value and sample-count queries of one objective (``core.slo.objectives.grouped_queries``) at
one evaluation time. An empty vector is an empty mapping (no data); an unreachable or failing
Prometheus raises :class:`MetricsUnavailable`, which the controller turns into NoData for
that objective and no action: no data is never a verdict.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime
from typing import Any

from rankops.operator.core.slo.evaluate import SeriesKey
from rankops.operator.core.slo.objectives import GroupedQueries

from .prometheus import MetricsUnavailable, PrometheusMetricsSource, _success_data

__all__ = ["objective_series", "parse_vector_response"]


def parse_vector_response(payload: Any) -> dict[SeriesKey, float | None]:
    """``{(model, version, track): value}`` from a ``/api/v1/query`` vector answer (NaN is None)."""
    data = _success_data(payload)
    if data.get("resultType") != "vector" or not isinstance(data.get("result"), list):
        raise MetricsUnavailable(
            f"expected an instant vector, got {data.get('resultType')!r}", cause="result"
        )
    out: dict[SeriesKey, float | None] = {}
    for series in data["result"]:
        labels = series.get("metric") or {}
        key = (str(labels.get("model", "")), str(labels.get("version", "")), str(labels.get("track", "")))
        try:
            value = float(series["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise MetricsUnavailable(f"malformed sample in Prometheus answer: {exc}", cause="result") from exc
        out[key] = None if math.isnan(value) else value
    return out


async def objective_series(
    source: PrometheusMetricsSource, queries: GroupedQueries, at: datetime | None = None
) -> dict[SeriesKey, tuple[float | None, float | None]]:
    if queries.samples is None:
        values = parse_vector_response(await source.query_raw(queries.value, at))
        return {key: (value, None) for key, value in values.items()}
    raw_values, raw_samples = await asyncio.gather(
        source.query_raw(queries.value, at), source.query_raw(queries.samples, at)
    )
    values, samples = parse_vector_response(raw_values), parse_vector_response(raw_samples)
    # a series with samples but no value (0/0: no feedback yet) is still no data
    return {key: (values.get(key), samples.get(key)) for key in values.keys() | samples.keys()}

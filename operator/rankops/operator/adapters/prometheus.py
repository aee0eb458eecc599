"""Prometheus adapter: the ``MetricsSource`` protocol and its HTTP API implementation.

The judge in the core never sees Prometheus: the shell asks a ``MetricsSource`` for per-track
numbers (instant queries built by ``core.promql``) or exact window increases of the counters
behind the judge's ``TrackSummary`` (n, sum, sum of squares) and hands those over.

Errors are never silently turned into "no data": an unreachable or failing Prometheus raises
:class:`MetricsUnavailable` with the cause, while an empty result vector is ``None`` (no data).

Summary statistics come from ``MetricsSource.increases(selectors, window_seconds)``: exact
window increases of counter series, all evaluated at one time. The Prometheus implementation
fetches each selector's raw samples (``selector[window + lookback]`` as an instant query, a
range vector) and computes the increase per series in Python (``core.counters``: no
extrapolation, resets handled, a series first seen inside the window counted from 0), summed
over series. ``increase()`` would extrapolate each of ``_count``, ``_sum`` and
``_squares_sum_total`` separately, which inflates the derived variance while a series starts
inside the window.

Selectors that differ only in the metric name (the NDCG summary's three counters) are fetched
as one query, ``{__name__=~"a|b|c",<matchers>}[span]``, split by ``__name__``. Why: Prometheus
(since 2.17, TSDB isolation) shows one query a scrape whole or not at all, but three queries
at the same ``time`` can straddle the commit of a scrape stamped before it: ``_count`` from
one scrape and ``_sum`` from the next. The judge subtracts the previous look's totals, so one
such look skews the batches on both sides of it (the likely cause of an integration rollout
that, under load, read a canary at mean 0.80 as "0.40 over the last 100 samples" and rolled
it back). Other selector sets (the error rate's all and 5xx requests) are still separate
queries.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import aiohttp

from rankops.operator.core.counters import total_increase

__all__ = [
    "MetricsSource",
    "MetricsUnavailable",
    "PrometheusMetricsSource",
    "name_union",
    "parse_matrix_response",
    "parse_scalar_response",
]


class MetricsUnavailable(Exception):
    """The metrics backend could not answer; ``cause`` says why in one word, message in detail."""

    def __init__(self, message: str, *, cause: str) -> None:
        super().__init__(message)
        self.cause = cause  # connection | timeout | http | prometheus | result


@runtime_checkable
class MetricsSource(Protocol):
    async def query(self, promql: str, at: datetime | None = None) -> float | None:
        """One instant query reduced to a scalar; ``None`` when the result is empty (no data)."""
        ...

    async def increases(
        self, selectors: Sequence[str], window_seconds: float, at: datetime | None = None
    ) -> list[float | None]:
        """Exact increase over the window of each series selector (summed over its series), all
        evaluated at one time (``at``, default now); ``None`` for a selector with no sample in the
        window (no data)."""
        ...


# Prometheus's default lookback: a sample this old before the window still serves as its baseline.
LOOKBACK_SECONDS = 300


def _success_data(payload: Any) -> dict[str, Any]:
    """The ``data`` of a successful ``/api/v1/query`` answer; ``MetricsUnavailable`` otherwise."""
    if not isinstance(payload, dict):
        raise MetricsUnavailable(f"unexpected answer from Prometheus: {payload!r:.200}", cause="result")
    if payload.get("status") != "success":
        etype = payload.get("errorType", "unknown")
        error = payload.get("error", "no error message")
        raise MetricsUnavailable(f"Prometheus query failed: {etype}: {error}", cause="prometheus")
    return payload.get("data") or {}


def parse_scalar_response(payload: Any) -> float | None:
    """Reduce a ``/api/v1/query`` JSON answer to one float, or ``None`` when empty.

    Raises ``MetricsUnavailable`` for ``status: error`` or a result type this adapter does not
    reduce (a vector of several series, a matrix, a string).
    """
    data = _success_data(payload)
    rtype = data.get("resultType")
    result: Any = data.get("result")
    if rtype == "scalar" and isinstance(result, list) and len(result) == 2:
        return _to_float(result[1])
    if rtype == "vector":
        if not result:
            return None
        if len(result) > 1:
            labels = [series.get("metric", {}) for series in result[:3]]
            raise MetricsUnavailable(
                f"expected one series, got {len(result)} (first: {labels}); aggregate with sum()",
                cause="result",
            )
        return _to_float(result[0]["value"][1])
    raise MetricsUnavailable(f"unexpected Prometheus result type {rtype!r}", cause="result")


def parse_matrix_response(payload: Any) -> list[tuple[dict[str, str], list[tuple[float, float]]]]:
    """Reduce a ``/api/v1/query`` answer for a range vector to ``[(labels, [(t, value), ...])]``.

    Raises ``MetricsUnavailable`` for ``status: error`` or a result that is not a matrix.
    """
    data = _success_data(payload)
    if data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        raise MetricsUnavailable(
            f"expected a range vector (matrix), got {data.get('resultType')!r}", cause="result"
        )
    out: list[tuple[dict[str, str], list[tuple[float, float]]]] = []
    for series in data["result"]:
        try:
            samples = [(float(t), float(v)) for t, v in series.get("values") or []]
        except (TypeError, ValueError) as exc:
            raise MetricsUnavailable(
                f"malformed samples in Prometheus answer: {exc}", cause="result"
            ) from exc
        out.append((dict(series.get("metric") or {}), samples))
    return out


def _to_float(text: Any) -> float | None:
    value = float(text)  # Prometheus encodes samples as strings, including "NaN" and "+Inf"
    return None if math.isnan(value) else value


class PrometheusMetricsSource:
    """``MetricsSource`` over the Prometheus HTTP API (``GET /api/v1/query``)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._session is not None and self._own_session:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> PrometheusMetricsSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        return self._session

    async def query(self, promql: str, at: datetime | None = None) -> float | None:
        return parse_scalar_response(await self.query_raw(promql, at))

    async def query_raw(self, promql: str, at: datetime | None = None) -> Any:
        """The decoded JSON of one instant query (``status: error`` bodies are returned too)."""
        params = {"query": promql, "timeout": f"{self.timeout:g}"}  # float seconds: 0.5, 2
        if at is not None:
            params["time"] = f"{at.timestamp():.3f}"
        url = f"{self.base_url}/api/v1/query"
        try:
            async with self._get_session().get(
                url, params=params, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                # Prometheus answers 400/422/503 with a JSON error body: keep its errorType/error.
                try:
                    payload = await response.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    payload = None
                if response.status >= 400:
                    if isinstance(payload, dict) and payload.get("status") == "error":
                        return payload
                    raise MetricsUnavailable(
                        f"Prometheus answered HTTP {response.status} {response.reason} for {url}",
                        cause="http",
                    )
                if payload is None:
                    raise MetricsUnavailable(f"Prometheus answered non-JSON content at {url}", cause="result")
                return payload
        except MetricsUnavailable:
            raise
        except TimeoutError as exc:
            raise MetricsUnavailable(
                f"Prometheus at {self.base_url} did not answer within {self.timeout}s", cause="timeout"
            ) from exc
        except aiohttp.ClientConnectionError as exc:
            raise MetricsUnavailable(
                f"cannot connect to Prometheus at {self.base_url}: {exc}", cause="connection"
            ) from exc
        except aiohttp.ClientError as exc:
            raise MetricsUnavailable(f"Prometheus request failed: {exc}", cause="http") from exc

    async def increases(
        self, selectors: Sequence[str], window_seconds: float, at: datetime | None = None
    ) -> list[float | None]:
        at = at or datetime.now(UTC)
        start = at.timestamp() - window_seconds
        span = f"{math.ceil(window_seconds) + LOOKBACK_SECONDS}s"
        union = name_union(selectors)
        if union is not None:
            query, names = union
            by_name: dict[str, list[list[tuple[float, float]]]] = {name: [] for name in names}
            for labels, samples in parse_matrix_response(await self.query_raw(f"{query}[{span}]", at)):
                by_name.setdefault(labels.get("__name__", ""), []).append(samples)
            return [total_increase(by_name[name], start) for name in names]
        answers = await asyncio.gather(*(self.query_raw(f"{sel}[{span}]", at) for sel in selectors))
        return [
            total_increase((samples for _, samples in parse_matrix_response(answer)), start)
            for answer in answers
        ]


_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})?", re.DOTALL)


def name_union(selectors: Sequence[str]) -> tuple[str, list[str]] | None:
    """One selector for ``a{m}``, ``b{m}``, ...: ``({__name__=~"a|b",m}``, each one's name``)``;
    ``None`` unless there are several and all have the same matchers (module docstring)."""
    parsed = [_SELECTOR.fullmatch(sel.strip()) for sel in selectors]
    if len(selectors) < 2 or any(m is None for m in parsed):
        return None
    names = [m.group(1) for m in parsed if m is not None]
    matchers = {(m.group(2) or "").strip() for m in parsed if m is not None}
    if len(matchers) != 1:
        return None
    rest = matchers.pop()
    alternatives = "|".join(dict.fromkeys(names))  # metric names hold no regex metacharacters
    return "{" + f'__name__=~"{alternatives}"' + (f",{rest}" if rest else "") + "}", names

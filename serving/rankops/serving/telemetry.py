"""Prometheus metrics of the ranking service: the metrics contract of DESIGN.md.

Every series carries ``model``, ``version`` and ``track`` from the pod environment. Each app
instance owns its own ``CollectorRegistry`` (tests build several apps in one process), and
every label child the operator queries is created at start-up so the series exist from 0:
``increase()`` over a series that appears mid-window loses its first increments.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "Identity", "ServingMetrics"]

IDENTITY_LABELS = ("model", "version", "track")

# Fine-grained below 50 ms (the latency objective is p95 < 25 ms), coarse above.
LATENCY_BUCKETS = (
    0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.0125, 0.015, 0.0175, 0.02, 0.025,
    0.03, 0.035, 0.04, 0.045, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip

GOLDEN_ACCURACIES = {
    "relevance_accuracy": "Share of golden queries whose top-1 item comes from a mapped source",
    "domain_routing_accuracy": "Share of golden queries routed to their judged domain",
    "singapore_first_accuracy": "Share of golden Singapore queries with a Singapore item on top",
}

# The status codes a ranking request can end with, pre-created so increase() sees them from 0
# (any other code still gets its series when it first occurs).
RANK_STATUS_CODES = ("200", "400", "405", "413", "422", "500", "503")


@dataclass(frozen=True)
class Identity:
    """Who this pod is, as the operator names it (labels on every series)."""

    model: str
    version: str
    track: str

    def labels(self) -> dict[str, str]:
        return {"model": self.model, "version": self.version, "track": self.track}

    @functools.cached_property
    def json_fields(self) -> str:
        """``"model": ..., "version": ..., "track": ...`` for splicing into a JSON object."""
        return json.dumps(self.labels(), separators=(",", ":"))[1:-1]


class ServingMetrics:
    """The service's metrics, bound to one identity and one registry."""

    def __init__(self, identity: Identity, registry: CollectorRegistry | None = None) -> None:
        self.identity = identity
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        ident = list(IDENTITY_LABELS)
        r = self.registry
        self._requests = Counter(
            "rankops_requests", "Ranking requests by HTTP status code.", [*ident, "code"], registry=r
        )
        self._duration = Histogram(
            "rankops_request_duration_seconds",
            "End-to-end latency of ranking requests, measured in the server.",
            ident,
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._ndcg = Summary(
            "rankops_ndcg_at_3", "Per-request NDCG@3, observed when feedback arrives.", ident, registry=r
        )
        self._ndcg_squares = Counter(
            "rankops_ndcg_at_3_squares_sum",
            "Sum of squared per-request NDCG@3 (with _sum and _count gives a window's variance).",
            ident,
            registry=r,
        )
        self._golden = Gauge(
            "rankops_golden_ndcg_at_3",
            "NDCG@3 of the loaded model on the golden set shipped with its artifact.",
            ident,
            registry=r,
        )
        self._cache = Counter(
            "rankops_cache_requests", "Result cache lookups by result.", [*ident, "result"], registry=r
        )
        self._psi = Gauge(
            "rankops_drift_psi",
            "Population stability index of a live-query feature against the artifact reference.",
            [*ident, "feature"],
            registry=r,
        )
        self._pvalue = Gauge(
            "rankops_drift_pvalue",
            "p-value of a two-sample test of a live-query feature against the artifact reference.",
            [*ident, "feature", "test"],
            registry=r,
        )
        self._info = Gauge(
            "rankops_model_info", "Always 1: the artifact this pod serves.", [*ident, "sha256"], registry=r
        )
        self._ready = Gauge(
            "rankops_model_ready", "1 when the artifact is loaded and verified, else 0.", ident, registry=r
        )
        self._golden_accuracy = {
            name: Gauge(
                f"rankops_golden_{name}",
                f"{help_text} on the artifact's golden set, rankings as served (NaN: no qualifying query).",
                ident,
                registry=r,
            )
            for name, help_text in GOLDEN_ACCURACIES.items()
        }
        self._log_records = Counter(
            "rankops_feedback_log_records",
            "Records written to the durable feedback log, by kind (served, feedback).",
            [*ident, "kind"],
            registry=r,
        )
        self._feedback = Counter(
            "rankops_feedback", "Feedback requests by HTTP status code.", [*ident, "code"], registry=r
        )
        # passes and the queries they carried: the ratio of their rates is the mean batch
        # (as Triton's execution and inference counts); passes alone show the encoder's load
        self.encoder_passes = Counter(
            "rankops_query_encoder_passes",
            "Sentence-encoder passes run over request and background queries.",
            ident,
            registry=r,
        ).labels(**identity.labels())
        self.encoder_queries = Counter(
            "rankops_query_encoder_queries",
            "Queries the sentence-encoder passes carried (a pass takes every query waiting).",
            ident,
            registry=r,
        ).labels(**identity.labels())
        # weak keys: an encoder dropped (a model swapped out) takes its baseline with it
        self._encoder_counted: weakref.WeakKeyDictionary[object, tuple[int, int]] = (
            weakref.WeakKeyDictionary()
        )

        labels = identity.labels()
        self._requests_by_code = {
            code: self._requests.labels(**labels, code=code) for code in RANK_STATUS_CODES
        }
        self.duration = self._duration.labels(**labels)
        self.ndcg = self._ndcg.labels(**labels)
        self.ndcg_squares = self._ndcg_squares.labels(**labels)
        self.golden_ndcg = self._golden.labels(**labels)
        self.golden_ndcg.set(math.nan)  # no value until the artifact is loaded and scored
        self.cache_hits = self._cache.labels(**labels, result="hit")
        self.cache_misses = self._cache.labels(**labels, result="miss")
        self.ready = self._ready.labels(**labels)
        self.golden_accuracy = {name: g.labels(**labels) for name, g in self._golden_accuracy.items()}
        for gauge in self.golden_accuracy.values():
            gauge.set(math.nan)
        self.log_records = {
            kind: self._log_records.labels(**labels, kind=kind) for kind in ("served", "feedback")
        }
        self._log_counted = dict.fromkeys(self.log_records, 0)
        self._feedback_by_code = {
            code: self._feedback.labels(**labels, code=code)
            for code in ("200", "400", "404", "409", "422", "503")
        }

    # -- requests -----------------------------------------------------------------------

    def observe_request(self, status_code: int, seconds: float) -> None:
        self._by_code(self._requests, self._requests_by_code, status_code).inc()
        self.duration.observe(seconds)

    def count_feedback(self, status_code: int) -> None:
        self._by_code(self._feedback, self._feedback_by_code, status_code).inc()

    def _by_code(self, counter: Counter, children: dict[str, Counter], status_code: int) -> Counter:
        """The child of ``counter`` for ``status_code``; codes not pre-created are added on first use."""
        code = str(status_code)
        child = children.get(code)
        if child is None:
            child = children[code] = counter.labels(**self.identity.labels(), code=code)
        return child

    def observe_ndcg(self, value: float) -> None:
        self.ndcg.observe(value)
        self.ndcg_squares.inc(value * value)

    # -- model --------------------------------------------------------------------------

    def set_model(self, sha256: str) -> None:
        """Mark ``sha256`` as the served artifact (exactly one info series at 1)."""
        self._info.clear()
        self._info.labels(**self.identity.labels(), sha256=sha256).set(1)

    def init_drift(self, tests: Mapping[str, str]) -> None:
        """Create the drift series, ``tests`` mapping feature -> test (NaN until judged)."""
        labels = self.identity.labels()
        for feature, test in tests.items():
            self._psi.labels(**labels, feature=feature).set(math.nan)
            self._pvalue.labels(**labels, feature=feature, test=test).set(math.nan)

    def set_drift(self, psi: Mapping[str, float], pvalues: Mapping[tuple[str, str], float]) -> None:
        labels = self.identity.labels()
        for feature, value in psi.items():
            self._psi.labels(**labels, feature=feature).set(value)
        for (feature, test), value in pvalues.items():
            self._pvalue.labels(**labels, feature=feature, test=test).set(value)

    def set_golden_accuracies(self, quality: Any) -> None:
        """Gauges from a ``rankops.serving.golden.GoldenQuality`` (None becomes NaN)."""
        for name, gauge in self.golden_accuracy.items():
            value = getattr(quality, name)
            gauge.set(math.nan if value is None else value)

    def count_log_records(self, written: Mapping[str, int]) -> None:
        """Bring the log counters up to the writer's totals (called before each scrape)."""
        for kind, total in written.items():
            delta = total - self._log_counted.get(kind, 0)
            if delta > 0 and kind in self.log_records:
                self.log_records[kind].inc(delta)
                self._log_counted[kind] = total

    def count_encoder_passes(self, encoder: object, totals: tuple[int, int]) -> None:
        """Bring the encoder counters up to ``encoder``'s (passes, queries) totals (called
        before each scrape); each encoder object's totals count from its own start."""
        passes, queries = self._encoder_counted.get(encoder, (0, 0))
        if totals[0] > passes:
            self.encoder_passes.inc(totals[0] - passes)
            self.encoder_queries.inc(max(0, totals[1] - queries))
            self._encoder_counted[encoder] = totals

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

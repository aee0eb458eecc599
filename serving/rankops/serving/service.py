"""The ranking service without the web framework: model state, ranking, feedback, quality.

``RankingService`` owns the artifact's life (loading in the background, verification,
readiness), the result cache and the metrics; its ``feedback_desk``
(``rankops.serving.feedback_desk``) keeps what it showed, the feedback on it and the durable
log. ``rankops.serving.app`` only maps HTTP onto it.

Everything here runs on the event loop thread except loading the artifact (a worker thread,
before any traffic). Scoring one query (``_score``, one forward pass) runs inline by default:
see ``ServiceSettings.score_inline``. The periodic jobs (golden NDCG, drift features) also run
on the loop, ``live_drift.JOB_SLICE`` queries per turn: a request waits behind at most one slice, where a
worker thread would trade the GIL with the loop and stall requests by the switch interval.

Rules this module implements (documented in the API too):

* Local-first: when the query names a region (the artifact's query parser), the model's top
  ``max(k * candidate_factor, candidate_min)`` candidates are re-scored as
  ``min-max normalised model score + region_boost`` for items of that region and
  ``min-max normalised model score`` for the rest, then cut to ``k``. With the default
  boost of 0.15 a local item overtakes a non-local one whose model score is within 15 % of
  the candidate score range above it. Without a region the model's order is kept.
  ``score`` in a response is that final score (so results are sorted by it);
  ``model_score`` is the model's own.
* Feedback: NDCG@3 on the ids as served, the durable log and what a restart reads back, top-1
  relevance (``rankops.serving.feedback_desk``). The golden-set figures
  (``relevance_accuracy`` and the routing accuracies) are defined in ``rankops.serving.golden``.
* A ranking's quality score: the mean ``relevance`` of its top 3 results (the NDCG@3 cut);
  the cache's quality statistics and quality-based invalidation use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from rankops.serving.artifact import (
    ArtifactIntegrityError,
    ModelArtifact,
    load_artifact,
    verify_artifact,
)
from rankops.serving.cache import TTLCache, normalize_query
from rankops.serving.feedback import feedback_grades
from rankops.serving.feedback_desk import FeedbackDesk
from rankops.serving.golden import GoldenQuality, golden_ndcg, golden_quality
from rankops.serving.live_drift import LiveDrift
from rankops.serving.query_batcher import EncoderBusy, awaited_vectors
from rankops.serving.ranking import (
    NDCG_K,
    Quality,
    Ranking,
    Result,
    Routing,
    Served,
    local_first,
    quality_distribution,
)
from rankops.serving.service_errors import NotReady, Overloaded, State
from rankops.serving.settings import ServiceSettings
from rankops.serving.telemetry import Identity, ServingMetrics

__all__ = [
    "Quality",
    "RankingService",
    "Result",
    "Routing",
    "ServiceSettings",
    "feedback_grades",
    "golden_ndcg",
    "local_first",
    "quality_distribution",
]

log = logging.getLogger(__name__)

# how long stop waits for the query encoder's pass in flight (QueryBatcher.wait_idle says why)
STOP_ENCODER_WAIT_S = 5.0


class RankingService:
    """One model server: loads ``model_uri`` in the background and serves it once verified."""

    def __init__(
        self,
        model_uri: str,
        settings: ServiceSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model_uri = model_uri
        self.settings = settings or ServiceSettings()
        self.state = State.LOADING
        self.reason = "the model artifact is loading"
        self.problems: list[str] = []
        self.artifact: ModelArtifact | None = None
        self.loaded_at: datetime | None = None
        self.golden_ndcg: float | None = None
        self.metrics: ServingMetrics | None = None
        self.identity = Identity(
            self.settings.model_name, self.settings.version or "unknown", self.settings.track
        )
        self.cache: TTLCache[tuple[str, int], Ranking] = TTLCache(
            self.settings.cache_entries, self.settings.cache_ttl_s, clock=clock
        )
        self.feedback_desk = FeedbackDesk(self.settings, clock)
        self.golden: GoldenQuality | None = None
        self.drift: LiveDrift | None = None  # from activation on
        self._tasks: list[asyncio.Task[None]] = []
        self._settled = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Fix the identity, create the metrics, and start loading in the background."""
        if self.settings.torch_threads > 0:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        if self.settings.gil_switch_interval_s > 0:
            sys.setswitchinterval(self.settings.gil_switch_interval_s)
        if self.settings.version is None:
            version = await run_in_threadpool(read_manifest_version, self.model_uri)
            self.identity = Identity(self.settings.model_name, version or "unknown", self.settings.track)
        self.metrics = ServingMetrics(self.identity)
        self.metrics.ready.set(0)
        if self.feedback_desk.log is not None:
            self.feedback_desk.log.start()
        self._tasks.append(asyncio.create_task(self._load_then_refresh(), name="rankops-model-loader"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        batcher = self.artifact.query_batcher if self.artifact is not None else None
        if batcher is not None and not await asyncio.to_thread(batcher.wait_idle, STOP_ENCODER_WAIT_S):
            log.warning("the query encoder was still busy %.0f s after stop", STOP_ENCODER_WAIT_S)
        if self.feedback_desk.log is not None:
            await self.feedback_desk.log.close()

    async def wait_until_settled(self) -> State:
        """Wait until the loader has either succeeded or given up (for tests and tools)."""
        await self._settled.wait()
        return self.state

    async def _load_then_refresh(self) -> None:
        await self._load()
        if self.state is not State.READY:
            return
        await asyncio.gather(
            self._every(self.settings.golden_interval_s, self.refresh_golden),
            self._every(self.settings.drift_interval_s, self.refresh_drift),
        )

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:  # a failed refresh must not stop the next one
                log.exception("periodic job %s failed", getattr(job, "__name__", job))

    async def _load(self) -> None:
        attempts = max(1, self.settings.load_attempts)
        for attempt in range(1, attempts + 1):
            try:
                problems = await run_in_threadpool(verify_artifact, self.model_uri)
                if problems:
                    self._fail("artifact integrity check failed: " + "; ".join(problems), problems)
                    return  # permanent: a pod that finds a digest mismatch never becomes ready
                artifact = await run_in_threadpool(load_artifact, self.model_uri, verify=False)
                await self.feedback_desk.recall(self.identity)
                await self._activate(artifact)
                return
            except ArtifactIntegrityError as exc:  # unreadable content: as permanent as a mismatch
                self._fail(str(exc), exc.problems)
                return
            except Exception as exc:
                problem = f"loading {self.model_uri} failed: {type(exc).__name__}: {exc}"
                log.warning("%s (attempt %d of %d)", problem, attempt, attempts)
                if attempt == attempts:
                    self._fail(problem, [problem])
                    return
                self.reason = f"{problem}; retrying (attempt {attempt} of {attempts})"
                await asyncio.sleep(self.settings.load_backoff_s * 2 ** (attempt - 1))

    def _fail(self, reason: str, problems: list[str]) -> None:
        log.error("model not served: %s", reason)
        self.state = State.FAILED
        self.reason = reason
        self.problems = problems
        self._settled.set()

    async def _activate(self, artifact: ModelArtifact) -> None:
        assert self.metrics is not None
        self.artifact = artifact
        await self._update_golden(artifact)
        self.metrics.set_model(artifact.sha256)
        self.drift = LiveDrift(
            artifact,
            self.metrics,
            window=self.settings.drift_window,
            sample=self.settings.drift_sample,
            min_samples=self.settings.drift_min_samples,
        )
        await self.drift.prepare()  # before READY: drift.load_statistics says why
        self.loaded_at = datetime.now(UTC)
        self.state = State.READY
        self.reason = "ready"
        self.metrics.ready.set(1)
        if self.settings.gc_freeze:
            gc.collect()
            gc.freeze()
        self._settled.set()
        log.info(
            "serving %s version %s (sha256 %s), golden NDCG@3 %s",
            self.model_uri,
            artifact.version,
            artifact.sha256,
            self.golden_ndcg,
        )

    # -- readiness ----------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    def readiness(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.state.value,
            "reason": self.reason,
            "model_uri": self.model_uri,
        }
        if self.problems:
            body["problems"] = list(self.problems)
        if self.artifact is not None:
            body["version"] = self.artifact.version
            body["sha256"] = self.artifact.sha256
        return body

    def _require_model(self) -> ModelArtifact:
        if self.artifact is None or self.state is not State.READY:
            raise NotReady(self.reason, status=self.state.value, problems=list(self.problems))
        return self.artifact

    # -- ranking ------------------------------------------------------------------------

    async def rank(self, query: str, k: int) -> Served:
        artifact = self._require_model()
        metrics = self.metrics
        assert metrics is not None
        key = (normalize_query(query), k)
        ranking = self.cache.get(key)
        cached = ranking is not None
        vector = None
        if ranking is None:
            metrics.cache_misses.inc()
            vector = await self._query_vector(artifact, query)
            if self.settings.score_inline:
                ranking = self._score(artifact, query, k, vector)
            else:
                ranking = await run_in_threadpool(self._score, artifact, query, k, vector)
            self.cache.put(key, ranking)
        else:
            metrics.cache_hits.inc()
        request_id = os.urandom(16).hex()  # 128 random bits; uuid4() costs 10x for its object
        self.feedback_desk.served(request_id, self.identity, query, k, ranking)
        if self.drift is not None:
            self.drift.pend(key[0], query, vector)
        return Served(request_id, ranking, cached)

    async def _query_vector(self, artifact: ModelArtifact, query: str) -> np.ndarray | None:
        """The query's transformer embedding, from a pass shared with the queries of other
        requests in flight (``query_batcher``); the loop serves them meanwhile. None: the model
        has no transformer encoder (or the static one, cheap enough to run inline)."""
        try:
            (vector,) = await awaited_vectors(artifact.query_batcher, [query])
        except EncoderBusy as exc:
            raise Overloaded(str(exc)) from None
        return vector

    def _score(
        self, artifact: ModelArtifact, query: str, k: int, query_embedding: np.ndarray | None = None
    ) -> Ranking:
        """One forward pass: the model's top candidates, the query's domain and region."""
        depth = min(
            len(artifact.catalog), max(k * self.settings.candidate_factor, self.settings.candidate_min, k)
        )
        analysis = artifact.analyze(query, depth, query_embedding)
        results, applied = local_first(analysis.ranked, analysis.region, k, self.settings.region_boost)
        routing = Routing(
            predicted_domain=analysis.domain,
            domain_confidence=round(float(analysis.domain_confidence), 6),
            region=analysis.region,
            local_first_applied=applied,
        )
        return Ranking.of(results, routing)

    def invalidate_cache(self) -> int:
        return self.cache.clear()

    def invalidate_below(self, threshold: float, force_refresh: bool) -> dict[str, Any]:
        """Drop cached rankings whose quality is below ``threshold`` (all of them on ``force_refresh``)."""
        before = len(self.cache)
        if force_refresh:
            dropped = self.cache.clear()
        else:
            dropped = self.cache.drop_where(lambda ranking: ranking.quality < threshold)
        return {
            "invalidated": dropped,
            "remaining": len(self.cache),
            "total_before": before,
            "quality_threshold": threshold,
            "force_refresh": force_refresh,
        }

    def cache_statistics(self) -> dict[str, Any]:
        stats = self.cache.stats()
        qualities = [ranking.quality for ranking in self.cache.values()]
        return {
            "hit_rate": round(stats.hit_rate, 6),
            **asdict(stats),
            "total_entries": len(qualities),
            "avg_quality_score": _round(sum(qualities) / len(qualities)) if qualities else None,
            "quality_distribution": quality_distribution(qualities),
        }

    # -- feedback -----------------------------------------------------------------------

    def feedback(
        self,
        request_id: str,
        judgments: Mapping[str, int] | None,
        clicks: Sequence[str] | None,
        ratings: Mapping[str, int] | None = None,
        thumbs: Mapping[str, str] | None = None,
    ) -> float:
        """Score the feedback on ``request_id`` and record it; returns the request's NDCG@3."""
        artifact = self._require_model()  # nothing was served before the model was ready
        assert self.metrics is not None
        ndcg = self.feedback_desk.record(
            artifact, self.identity, request_id, judgments, clicks, ratings=ratings, thumbs=thumbs
        )
        self.metrics.observe_ndcg(ndcg)
        return ndcg

    def quality_summary(self) -> dict[str, Any]:
        """Running NDCG@3 from feedback, or the golden-set figure while there is none."""
        feedback_ndcg = self.feedback_desk.quality.mean_ndcg
        overall, source = (
            (feedback_ndcg, "feedback") if feedback_ndcg is not None else (self.golden_ndcg, "golden")
        )
        return {
            "overall_ndcg_at_3": _round(overall),
            "ndcg_source": source if overall is not None else "none",
            "feedback_count": self.feedback_desk.quality.count,
            "feedback_ndcg_at_3": _round(feedback_ndcg),
            "ndcg_at_3_stddev": _round(self.feedback_desk.quality.ndcg_stddev),
            "golden_ndcg_at_3": _round(self.golden_ndcg),
            "feedback_top1_relevance": _round(self.feedback_desk.quality.relevance_accuracy),
            **self.golden_accuracies(),
        }

    def golden_accuracies(self) -> dict[str, float | None]:
        golden = self.golden
        return {
            "relevance_accuracy": _round(golden.relevance_accuracy) if golden else None,
            "domain_routing_accuracy": _round(golden.domain_routing_accuracy) if golden else None,
            "singapore_first_accuracy": _round(golden.singapore_first_accuracy) if golden else None,
        }

    # -- periodic jobs ------------------------------------------------------------------

    async def _update_golden(self, artifact: ModelArtifact) -> None:
        value = await golden_ndcg(artifact)
        self.golden_ndcg = value if math.isfinite(value) else None  # an empty golden set: no figure
        self.golden = await golden_quality(
            artifact, lambda query, vector: self._score(artifact, query, NDCG_K, vector)
        )
        assert self.metrics is not None
        self.metrics.golden_ndcg.set(value)
        self.metrics.set_golden_accuracies(self.golden)

    async def refresh_golden(self) -> None:
        await self._update_golden(self._require_model())
        self.feedback_desk.shown.purge_expired()
        self.cache.purge_expired()

    def drift_window(self) -> tuple[list[str | None], list[dict[str, float | str]]]:
        """The rolling window of live query features the drift gauges are computed from, and
        each row's query id (``live_drift.query_id``)."""
        self._require_model()
        return ([], []) if self.drift is None else self.drift.window()

    def drift_observed(self) -> int:
        """Live queries the drift window has taken in, repeats included."""
        return 0 if self.drift is None else self.drift.observed

    async def refresh_drift(self) -> None:
        self._require_model()
        if self.drift is not None:
            await self.drift.refresh()


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- glue to the model package -------------------------------------------------------------------


def read_manifest_version(uri: str) -> str | None:
    """The ``version`` in ``uri``'s manifest, or None when it cannot be read."""
    import fsspec

    try:
        with fsspec.open(uri.rstrip("/") + "/manifest.json", "rt", encoding="utf-8") as fh:
            version = json.load(fh).get("version")
    except Exception as exc:
        log.warning("cannot read the manifest of %s: %s", uri, exc)
        return None
    return str(version) if version else None

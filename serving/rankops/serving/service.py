"""The ranking service without the web framework: model state, ranking, feedback, quality.

``RankingService`` owns the artifact's life (loading in the background, verification,
readiness), the result cache, the store of shown results that feedback is matched against,
the running quality figures and the metrics. ``rankops.serving.app`` only maps HTTP onto it.

Everything here runs on the event loop thread except loading the artifact (a worker thread,
before any traffic). Scoring one query (``_score``, one forward pass) runs inline by default:
see ``ServiceSettings.score_inline``. The periodic jobs (golden NDCG, drift features) also run
on the loop, ``JOB_SLICE`` queries per turn: a request waits behind at most one slice, where a
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
* Feedback NDCG@3 is computed on the ids as served. ``judgments`` give grades 0..4 (ids not
  judged count as 0; the ideal DCG comes from all given judgments, shown or not). ``clicks``
  map to grade 1 for a clicked id and 0 for a shown one not clicked, so the ideal is every
  click at the top; no click at all gives 0. Clicks on ids that were not shown are rejected.
* Relevance accuracy: the fraction of feedback requests whose top-1 served item was
  relevant, i.e. judged >= 2, or clicked in click feedback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import math
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from rankops.serving.artifact import (
    ArtifactIntegrityError,
    ModelArtifact,
    RankedItem,
    load_artifact,
    verify_artifact,
)
from rankops.serving.cache import TTLCache, normalize_query
from rankops.serving.drift import DriftMonitor, DriftReport, query_features
from rankops.serving.ir_metrics import ndcg_at_k
from rankops.serving.telemetry import Identity, ServingMetrics

log = logging.getLogger(__name__)

NDCG_K = 3
RELEVANT_GRADE = 2
JOB_SLICE = 8  # queries the periodic jobs score per event-loop turn (a few ms)


@dataclass(frozen=True)
class ServiceSettings:
    """Tunables of one service instance; ``from_env`` adds the pod's identity."""

    model_name: str = "rankops"
    version: str | None = None  # None: the artifact manifest's version
    track: str = "stable"
    cache_entries: int = 10_000
    cache_ttl_s: float = 300.0
    shown_entries: int = 100_000
    shown_ttl_s: float = 3600.0
    candidate_factor: int = 3
    candidate_min: int = 30
    region_boost: float = 0.15
    golden_interval_s: float = 60.0
    drift_interval_s: float = 15.0
    drift_window: int = 1000
    drift_sample: int = 200
    drift_min_samples: int = 50
    load_attempts: int = 3
    load_backoff_s: float = 1.0
    max_body_bytes: int = 1 << 20
    # torch intra-op threads. One query's scoring is a handful of small tensor ops: with more
    # than one thread their hand-offs can cost several times the work (measured 8 ms vs 0.9 ms
    # per query on 2 cores). 0 leaves torch as it is.
    torch_threads: int = 1
    # Score a cache miss on the event loop thread (True) or in the threadpool (False). A query
    # costs ~1-2 ms of mostly GIL-holding Python around small tensor ops, so a worker thread buys
    # no parallelism, only GIL hand-offs with the event loop: measured on 2 cores at 16 clients,
    # cache off, ~365 requests/s inline against ~145 in the threadpool.
    score_inline: bool = True
    # Move everything alive once the artifact is loaded (torch, the catalog, the modules) into
    # the collector's permanent generation, so full collections do not rescan it: measured
    # 28 ms per full collection before any traffic. Process-wide, so off by default and on
    # under ``rankops serve``.
    gc_freeze: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> ServiceSettings:
        """Identity from ``RANKOPS_MODEL``/``_VERSION``/``_TRACK``; any other field from
        ``RANKOPS_<FIELD>`` (e.g. ``RANKOPS_CACHE_ENTRIES=0`` turns the result cache off)."""
        values: dict[str, Any] = {
            "model_name": env.get("RANKOPS_MODEL") or cls.model_name,
            "version": env.get("RANKOPS_VERSION") or None,
            "track": env.get("RANKOPS_TRACK") or cls.track,
        }
        for f in fields(cls):
            raw = env.get(f"RANKOPS_{f.name.upper()}")
            if raw is None or f.name in values:
                continue
            values[f.name] = _parse_setting(f"RANKOPS_{f.name.upper()}", raw, str(f.type))
        return cls(**{**values, **overrides})


def _parse_setting(name: str, raw: str, kind: str) -> int | float | bool:
    try:
        if kind == "bool":
            flag = raw.strip().lower()
            if flag not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                raise ValueError(raw)
            return flag in {"1", "true", "yes", "on"}
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None


class State(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ServiceError(Exception):
    """An expected failure with its HTTP status; ``error`` is a short slug, ``detail`` prose."""

    status_code = 500
    error = "internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotReady(ServiceError):
    status_code = 503
    error = "model not ready"


class UnknownRequest(ServiceError):
    status_code = 404
    error = "unknown request_id"


class DuplicateFeedback(ServiceError):
    status_code = 409
    error = "feedback already given"


class InvalidFeedback(ServiceError):
    status_code = 422
    error = "invalid feedback"


@dataclass(frozen=True, slots=True)
class Routing:
    predicted_domain: str
    domain_confidence: float
    region: str | None
    local_first_applied: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "predicted_domain": self.predicted_domain,
            "domain_confidence": self.domain_confidence,
            "region": self.region,
            "local_first_applied": self.local_first_applied,
        }


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    title: str
    source: str  # publisher slug (data_gov_sg)
    source_name: str  # its display name (data.gov.sg)
    region: str
    score: float  # final ranking score (after local-first boost)
    model_score: float
    relevance: float  # calibrated estimate of the item's graded relevance / 4, 0..1

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "source_name": self.source_name,
            "score": self.score,
            "relevance": self.relevance,
        }


@dataclass(frozen=True, slots=True)
class Ranking:
    """What one query ranks to: cached as a whole, so a cache hit needs no model call.

    ``json_fields`` is the ``"results": [...], "routing": {...}`` part of a /v1/rank body,
    rendered once: a cache hit only adds its own request id around it. ``ids`` are the
    results' ids in order (what the feedback store keeps for each request).
    """

    results: tuple[Result, ...]
    routing: Routing
    json_fields: bytes
    ids: tuple[str, ...]

    @classmethod
    def of(cls, results: Sequence[Result], routing: Routing) -> Ranking:
        payload = {"results": [r.as_dict() for r in results], "routing": routing.as_dict()}
        body = orjson.dumps(payload)  # compact, UTF-8; ~10x json.dumps on a cache miss
        return cls(tuple(results), routing, body[1:-1], tuple(r.id for r in results))


@dataclass(frozen=True, slots=True)
class Served:
    request_id: str
    ranking: Ranking
    cached: bool


# What one request served, kept for its feedback: (ids in order, feedback given yet). A plain
# tuple of strings and a flag on purpose: the collector stops tracking exact tuples of untracked
# values, so a full store (``shown_entries``, 100 000 by default) adds nothing to the pauses of
# full collections (one object per request made them grow to ~270 ms at 5 000 requests/s).
ShownRequest = tuple[tuple[str, ...], bool]


@dataclass
class Quality:
    """Running figures over all feedback received by this process."""

    count: int = 0
    ndcg_sum: float = 0.0
    ndcg_squares: float = 0.0
    top1_relevant: int = 0

    def add(self, ndcg: float, top1_relevant: bool) -> None:
        self.count += 1
        self.ndcg_sum += ndcg
        self.ndcg_squares += ndcg * ndcg
        self.top1_relevant += int(top1_relevant)

    @property
    def mean_ndcg(self) -> float | None:
        return self.ndcg_sum / self.count if self.count else None

    @property
    def relevance_accuracy(self) -> float | None:
        return self.top1_relevant / self.count if self.count else None

    @property
    def ndcg_stddev(self) -> float | None:
        if self.count < 2:
            return None
        mean = self.ndcg_sum / self.count
        var = max(0.0, (self.ndcg_squares - self.count * mean * mean) / (self.count - 1))
        return math.sqrt(var)


def local_first(
    candidates: Sequence[RankedItem], region: str | None, k: int, boost: float
) -> tuple[list[Result], bool]:
    """Apply the local-first rule (module docstring) to ``candidates`` and cut to ``k``.

    Returns the results and whether a boost changed anything's score (a region was named
    and at least one candidate belongs to it).
    """
    if not candidates:
        return [], False
    scores = [float(c.score) for c in candidates]
    low = min(scores)
    span = max(scores) - low
    normalised = [(s - low) / span if span > 0 else 1.0 for s in scores]
    if region is None:
        finals, applied = scores, False  # no region: the model's order and score stand
    else:
        local = [c.item.region == region for c in candidates]
        finals = [r + boost if is_local else r for r, is_local in zip(normalised, local, strict=True)]
        applied = any(local)
    # Stable on ties: the model's order decides between equal final scores.
    order = sorted(range(len(candidates)), key=lambda i: (-finals[i], i))[:k]
    return [
        Result(
            id=candidates[i].item.id,
            title=candidates[i].item.title,
            source=candidates[i].item.source,
            source_name=candidates[i].item.source_display,
            region=candidates[i].item.region,
            score=round(finals[i], 6),
            model_score=round(scores[i], 6),
            relevance=round(candidates[i].relevance, 6),
        )
        for i in order
    ], applied


def feedback_grades(
    shown: Sequence[str], judgments: Mapping[str, int] | None, clicks: Sequence[str] | None
) -> dict[str, int]:
    """The grades feedback gives (module docstring); raises InvalidFeedback on clicks not shown."""
    if judgments is not None:
        return dict(judgments)
    assert clicks is not None
    shown_set = set(shown)
    strays = sorted(set(clicks) - shown_set)
    if strays:
        raise InvalidFeedback(f"clicked ids were not among the shown results: {', '.join(strays[:10])}")
    clicked = set(clicks)
    return {item_id: int(item_id in clicked) for item_id in shown}


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
        self.shown: TTLCache[str, ShownRequest] = TTLCache(
            self.settings.shown_entries, self.settings.shown_ttl_s, clock=clock
        )
        self.quality = Quality()
        # Live queries awaiting drift features: only the latest drift_sample per refresh are
        # scored (each costs a forward pass), so drift work stays a small share of the CPU.
        self._drift_pending: deque[str] = deque(maxlen=self.settings.drift_sample)
        self._drift_monitor: DriftMonitor | None = None
        self.drift_report: DriftReport | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._settled = asyncio.Event()

    # -- life cycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Fix the identity, create the metrics, and start loading in the background."""
        if self.settings.torch_threads > 0:
            import torch

            torch.set_num_threads(self.settings.torch_threads)
        if self.settings.version is None:
            version = await run_in_threadpool(read_manifest_version, self.model_uri)
            self.identity = Identity(self.settings.model_name, version or "unknown", self.settings.track)
        self.metrics = ServingMetrics(self.identity)
        self.metrics.ready.set(0)
        self._tasks.append(asyncio.create_task(self._load_then_refresh(), name="rankops-model-loader"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

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
        self._drift_monitor = new_drift_monitor(artifact, self.settings.drift_window)
        self.metrics.init_drift(drift_tests(artifact))
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
        if ranking is None:
            metrics.cache_misses.inc()
            if self.settings.score_inline:
                ranking = self._score(artifact, query, k)
            else:
                ranking = await run_in_threadpool(self._score, artifact, query, k)
            self.cache.put(key, ranking)
        else:
            metrics.cache_hits.inc()
        request_id = os.urandom(16).hex()  # 128 random bits; uuid4() costs 10x for its object
        self.shown.put(request_id, (ranking.ids, False))
        self._drift_pending.append(query)
        return Served(request_id, ranking, cached)

    def _score(self, artifact: ModelArtifact, query: str, k: int) -> Ranking:
        """One forward pass: the model's top candidates, the query's domain and region."""
        depth = min(
            len(artifact.catalog), max(k * self.settings.candidate_factor, self.settings.candidate_min, k)
        )
        analysis = artifact.analyze(query, depth)
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

    def cache_statistics(self) -> dict[str, Any]:
        stats = self.cache.stats()
        return {"hit_rate": round(stats.hit_rate, 6), **asdict(stats)}

    # -- feedback -----------------------------------------------------------------------

    def feedback(
        self, request_id: str, judgments: Mapping[str, int] | None, clicks: Sequence[str] | None
    ) -> float:
        """Score the feedback on ``request_id`` and record it; returns the request's NDCG@3."""
        self._require_model()  # nothing was served before the model was ready
        metrics = self.metrics
        assert metrics is not None
        shown = self.shown.get(request_id)
        if shown is None:
            raise UnknownRequest(
                f"no served ranking with request_id {request_id!r}: it never existed or is older than "
                f"{self.settings.shown_ttl_s:g} s (or was evicted)"
            )
        ids, feedback_given = shown
        if feedback_given:
            raise DuplicateFeedback(f"feedback for request_id {request_id!r} was already recorded")
        grades = feedback_grades(ids, judgments, clicks)
        ndcg = float(ndcg_at_k(ids, grades, NDCG_K))
        threshold = 1 if clicks is not None else RELEVANT_GRADE  # a click is grade 1
        top1_relevant = bool(ids) and grades.get(ids[0], 0) >= threshold
        self.shown.replace(request_id, (ids, True))
        self.quality.add(ndcg, top1_relevant)
        metrics.observe_ndcg(ndcg)
        return ndcg

    def quality_summary(self) -> dict[str, Any]:
        """Running NDCG@3 from feedback, or the golden-set figure while there is none."""
        feedback_ndcg = self.quality.mean_ndcg
        overall, source = (
            (feedback_ndcg, "feedback") if feedback_ndcg is not None else (self.golden_ndcg, "golden")
        )
        return {
            "overall_ndcg_at_3": _round(overall),
            "ndcg_source": source if overall is not None else "none",
            "feedback_count": self.quality.count,
            "feedback_ndcg_at_3": _round(feedback_ndcg),
            "ndcg_at_3_stddev": _round(self.quality.ndcg_stddev),
            "golden_ndcg_at_3": _round(self.golden_ndcg),
            "relevance_accuracy": _round(self.quality.relevance_accuracy),
        }

    # -- periodic jobs ------------------------------------------------------------------

    async def _update_golden(self, artifact: ModelArtifact) -> None:
        value = await golden_ndcg(artifact)
        self.golden_ndcg = value if math.isfinite(value) else None  # an empty golden set: no figure
        assert self.metrics is not None
        self.metrics.golden_ndcg.set(value)

    async def refresh_golden(self) -> None:
        await self._update_golden(self._require_model())
        self.shown.purge_expired()
        self.cache.purge_expired()

    async def refresh_drift(self) -> None:
        artifact = self._require_model()
        queries = list(self._drift_pending)
        self._drift_pending.clear()
        monitor = self._drift_monitor
        assert monitor is not None
        for start in range(0, len(queries), JOB_SLICE):
            for query in queries[start : start + JOB_SLICE]:
                monitor.observe(query_features(artifact, query))
            await asyncio.sleep(0)  # let waiting requests in between slices
        report, psi, pvalues = drift_gauges(monitor, self.settings.drift_min_samples)
        if report is not None:
            self.drift_report = report
            assert self.metrics is not None
            self.metrics.set_drift(psi, pvalues)


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


# -- glue to the model package (artifact, metrics, drift) ---------------------------------------


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


async def golden_ndcg(artifact: ModelArtifact) -> float:
    """Mean NDCG@3 of the artifact's model on its own golden set (``JOB_SLICE`` per loop turn)."""
    golden = artifact.golden
    if not golden:
        return math.nan
    values: list[float] = []
    for start in range(0, len(golden), JOB_SLICE):
        part = golden[start : start + JOB_SLICE]
        rankings = artifact.rank_many([g.text for g in part], NDCG_K)
        values += [
            ndcg_at_k([r.item.id for r in ranked], g.judgments, NDCG_K)
            for g, ranked in zip(part, rankings, strict=True)
        ]
        await asyncio.sleep(0)
    return float(sum(values) / len(values))


def new_drift_monitor(artifact: ModelArtifact, window: int) -> DriftMonitor:
    return DriftMonitor(artifact.reference, window=window)


def drift_tests(artifact: ModelArtifact) -> dict[str, str]:
    """feature -> the test that judges it (KS for numeric features, chi-square for categories)."""
    reference = artifact.reference
    return {**dict.fromkeys(reference.numeric, "ks"), **dict.fromkeys(reference.categorical, "chi2")}


def drift_gauges(
    monitor: DriftMonitor, min_samples: int
) -> tuple[DriftReport | None, dict[str, float], dict[tuple[str, str], float]]:
    """The monitor's report and its gauge values; nothing until the window has ``min_samples``."""
    if len(monitor) < min_samples:
        return None, {}, {}
    report = monitor.report()
    psi = {name: f.psi for name, f in report.features.items()}
    pvalues = {(name, f.test): f.pvalue for name, f in report.features.items()}
    return report, psi, pvalues

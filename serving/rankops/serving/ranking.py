"""What a ranking request produces: results, routing, the cached ``Ranking``, the local-first rule.

The local-first rule and the quality score are described in ``rankops.serving.service``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from rankops.serving.artifact import RankedItem
from rankops.serving.feedback_log import shown_json

NDCG_K = 3


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
    results' ids in order (what the feedback store keeps for each request), ``shown`` the
    feedback log's rendering of them (ids, ranks, scores, sources). ``quality`` is the mean
    relevance of the top ``NDCG_K`` results.
    """

    results: tuple[Result, ...]
    routing: Routing
    json_fields: bytes
    ids: tuple[str, ...]
    shown: bytes
    quality: float

    @classmethod
    def of(cls, results: Sequence[Result], routing: Routing) -> Ranking:
        payload = {"results": [r.as_dict() for r in results], "routing": routing.as_dict()}
        body = orjson.dumps(payload)  # compact, UTF-8; ~10x json.dumps on a cache miss
        ids = tuple(r.id for r in results)
        shown = shown_json(ids, [r.score for r in results], [r.source for r in results])
        top = [r.relevance for r in results[:NDCG_K]]
        quality = round(sum(top) / len(top), 6) if top else 0.0
        return cls(tuple(results), routing, body[1:-1], ids, shown, quality)


@dataclass(frozen=True, slots=True)
class Served:
    request_id: str
    ranking: Ranking
    cached: bool


# What one request served, kept for its feedback: (ids in order, the log's rendering of what was
# shown, query, predicted domain, served at (epoch s), feedback given yet). Plain strings, bytes,
# numbers and a flag on purpose: the collector stops tracking exact tuples of untracked values,
# so a full store (``shown_entries``, 100 000 by default) adds nothing to the pauses of full
# collections (one object per request made them grow to ~270 ms at 5 000 requests/s).
ShownRequest = tuple[tuple[str, ...], bytes, str, str, float, bool]


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


QUALITY_BANDS = (("excellent", 0.9), ("good", 0.7), ("fair", 0.5), ("poor", -math.inf))


def quality_distribution(qualities: Sequence[float]) -> dict[str, int]:
    """Counts per band: excellent >= 0.9, good 0.7-0.9, fair 0.5-0.7, poor < 0.5, and the total."""
    counts = dict.fromkeys((name for name, _ in QUALITY_BANDS), 0)
    for q in qualities:
        counts[next(name for name, low in QUALITY_BANDS if q >= low)] += 1
    return {**counts, "total": len(qualities)}

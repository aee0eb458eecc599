"""Figures of the loaded model on the golden set shipped with its artifact.

* ``golden_ndcg``: mean NDCG@3 of the model's own order (no business boosts): the contract's
  ``rankops_golden_ndcg_at_3``.

The runbook's accuracies judge the rankings as served (local-first applied), one query at a
time through the service's own scoring:

* ``relevance_accuracy`` (agreement with the training mappings): the golden judgments come
  from the runbook's ``query -> source (score)`` mappings, so a query's mapped sources are the
  sources of its highest-graded judged items. The fraction of golden queries with a positive
  judgment whose top-1 served item comes from one of them.
* ``domain_routing_accuracy``: the fraction of those queries whose predicted domain is the
  domain of one of their highest-graded judged items.
* ``singapore_first_accuracy``: of the golden queries the query parser places in Singapore,
  the fraction whose top-1 served item is a Singapore item.

Each is None when no golden query qualifies. Work is sliced (``JOB_SLICE`` queries per event
loop turn) so a request waits behind at most one slice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rankops.serving.artifact import ModelArtifact
from rankops.serving.ir_metrics import ndcg_at_k
from rankops.serving.query_batcher import awaited_vectors

NDCG_K = 3
JOB_SLICE = 8
SINGAPORE = "singapore"


class ServedRanking(Protocol):
    @property
    def results(self) -> Sequence[Any]: ...
    @property
    def routing(self) -> Any: ...


@dataclass(frozen=True)
class GoldenQuality:
    relevance_accuracy: float | None
    domain_routing_accuracy: float | None
    singapore_first_accuracy: float | None
    judged_queries: int
    singapore_queries: int


async def golden_ndcg(artifact: ModelArtifact) -> float:
    """Mean NDCG@3 of the artifact's model on its own golden set (NaN for an empty one)."""
    golden = artifact.golden
    if not golden:
        return float("nan")
    values: list[float] = []
    for start in range(0, len(golden), JOB_SLICE):
        part = golden[start : start + JOB_SLICE]
        texts = [g.text for g in part]
        rankings = artifact.rank_many(
            texts, NDCG_K, _stacked(await awaited_vectors(artifact.query_batcher, texts))
        )
        values += [
            ndcg_at_k([r.item.id for r in ranked], g.judgments, NDCG_K)
            for g, ranked in zip(part, rankings, strict=True)
        ]
        await asyncio.sleep(0)
    return float(sum(values) / len(values))


def _stacked(vectors: Sequence[np.ndarray | None]) -> np.ndarray | None:
    """awaited_vectors' rows as one array; they are all None (no batcher) or all vectors."""
    present = [v for v in vectors if v is not None]
    return np.stack(present) if present else None


def _fraction(hits: int, total: int) -> float | None:
    return hits / total if total else None


async def golden_quality(
    artifact: ModelArtifact, serve: Callable[[str, np.ndarray | None], ServedRanking]
) -> GoldenQuality:
    """The runbook's accuracies (module docstring); ``serve(text, query_embedding)`` ranks one
    query as the service does."""
    judged = source_hits = domain_hits = sg_total = sg_hits = 0
    for start in range(0, len(artifact.golden), JOB_SLICE):
        part = artifact.golden[start : start + JOB_SLICE]
        vectors = await awaited_vectors(artifact.query_batcher, [g.text for g in part])
        for g, vector in zip(part, vectors, strict=True):
            ranking = serve(g.text, vector)
            top = ranking.results[0] if ranking.results else None
            best = max((grade for grade in g.judgments.values()), default=0)
            if best > 0:
                items = [artifact.item(i) for i, grade in g.judgments.items() if grade == best]
                known = [item for item in items if item is not None]
                judged += 1
                source_hits += int(top is not None and top.source in {item.source for item in known})
                domain_hits += int(ranking.routing.predicted_domain in {item.domain for item in known})
            region = artifact.detect_region(g.text)
            if region is not None and region.casefold() == SINGAPORE:
                sg_total += 1
                sg_hits += int(top is not None and top.region.casefold() == SINGAPORE)
        await asyncio.sleep(0)
    return GoldenQuality(
        relevance_accuracy=_fraction(source_hits, judged),
        domain_routing_accuracy=_fraction(domain_hits, judged),
        singapore_first_accuracy=_fraction(sg_hits, sg_total),
        judged_queries=judged,
        singapore_queries=sg_total,
    )

"""Ranking metrics, defined as trec_eval defines them.

* NDCG@k: gain = relevance grade (linear, not 2^rel - 1), discount 1 / log2(rank + 1) with
  ranks from 1; the ideal DCG sorts ALL judged documents of the query by grade, so judged
  relevant documents missing from the ranking lower the score. Unjudged documents have
  gain 0. A query with no positive judgment scores 0.
* P@k: fraction of the top k (k in the denominator even when fewer are ranked) with
  grade >= 1.
* MRR (reciprocal rank): 1 / rank of the first document with grade >= 1; 0 if none is ranked.

The functions take an already-ordered ranking; trec_eval itself orders a run by score
descending, then document id descending, which `rank_by_score` reproduces.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

RELEVANCE_THRESHOLD = 1


def dcg_at_k(ranked_ids: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    return sum(
        max(0, judgments.get(doc_id, 0)) / math.log2(rank + 2) for rank, doc_id in enumerate(ranked_ids[:k])
    )


def ndcg_at_k(ranked_ids: Sequence[str], judgments: Mapping[str, int], k: int) -> float:
    if k <= 0:
        raise ValueError("k must be positive")
    ideal = sorted((g for g in judgments.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    if idcg <= 0:
        return 0.0
    # trec_eval counts each document once: drop repeated ids after their first position
    seen: set[str] = set()
    unique = [d for d in ranked_ids if not (d in seen or seen.add(d))]  # type: ignore[func-returns-value]
    return dcg_at_k(unique, judgments, k) / idcg


def precision_at_k(
    ranked_ids: Sequence[str], judgments: Mapping[str, int], k: int, threshold: int = RELEVANCE_THRESHOLD
) -> float:
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(1 for d in ranked_ids[:k] if judgments.get(d, 0) >= threshold) / k


def reciprocal_rank(
    ranked_ids: Sequence[str], judgments: Mapping[str, int], threshold: int = RELEVANCE_THRESHOLD
) -> float:
    for rank, doc_id in enumerate(ranked_ids, 1):
        if judgments.get(doc_id, 0) >= threshold:
            return 1.0 / rank
    return 0.0


def rank_by_score(scores: Mapping[str, float]) -> list[str]:
    """Order documents as trec_eval does: score descending, then document id descending."""
    return [d for d, _ in sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]


def evaluate_run(
    rankings: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    """Mean ndcg@3, ndcg@10, mrr, p@3 over the judged queries (a missing ranking scores 0)."""
    names = ("ndcg@3", "ndcg@10", "mrr", "p@3")
    totals = dict.fromkeys(names, 0.0)
    queries: Iterable[str] = sorted(qrels)
    n = 0
    for qid in queries:
        ranked = list(rankings.get(qid, []))
        judg = qrels[qid]
        totals["ndcg@3"] += ndcg_at_k(ranked, judg, 3)
        totals["ndcg@10"] += ndcg_at_k(ranked, judg, 10)
        totals["mrr"] += reciprocal_rank(ranked, judg)
        totals["p@3"] += precision_at_k(ranked, judg, 3)
        n += 1
    return {k: (v / n if n else 0.0) for k, v in totals.items()}

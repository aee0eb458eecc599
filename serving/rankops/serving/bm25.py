"""The lexical baseline: rank-bm25's BM25Okapi over title + description."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from rank_bm25 import BM25Okapi

from rankops.serving.features import tokenize


class BM25Baseline:
    def __init__(self, ids: Sequence[str], titles: Sequence[str], descriptions: Sequence[str]) -> None:
        self.ids = list(ids)
        self.bm25 = BM25Okapi(
            [tokenize(f"{t} {d}") or [""] for t, d in zip(titles, descriptions, strict=True)]
        )

    def scores(self, query: str) -> np.ndarray:
        return np.asarray(self.bm25.get_scores(tokenize(query)), dtype=np.float64)

    def rank(self, query: str, k: int) -> list[str]:
        """Top-k ids; ties broken by catalogue order (stable sort)."""
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:k]
        return [self.ids[i] for i in order]

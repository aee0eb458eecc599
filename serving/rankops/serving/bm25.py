"""Lexical scoring: rank-bm25's BM25Okapi (the baseline ``rankops evaluate`` reports) and a
bm25s index (sparse-matrix BM25, also a feature of the model)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN
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


# bm25s.tokenize's default split and English stop words, for one query: the same tokens without
# its per-call set-up and progress bars (0.4 ms a call on a busy core, twice a request)
_BM25S_SPLIT = re.compile(r"(?u)\b\w\w+\b").findall
_STOP_EN = frozenset(STOPWORDS_EN)


class BM25sIndex:
    """bm25s (Lucene BM25) over ``docs``; ``scores`` returns one float32 per document.

    With ``stopwords=None`` it uses our tokenizer (what the model's features need: the same
    tokens as the rest of the model); with ``stopwords="en"`` bm25s' own tokenizer and English
    stop words (the ``bm25s`` baseline as its users run it)."""

    def __init__(self, docs: Sequence[str], stopwords: str | None = None) -> None:
        self.stopwords = stopwords
        self.n_docs = len(docs)
        self.index = bm25s.BM25()
        self.index.index(self._tokens(docs), show_progress=False)

    def _tokens(self, texts: Sequence[str]) -> list[list[str]]:
        if self.stopwords is None:
            return [tokenize(t) for t in texts]
        out = bm25s.tokenize(list(texts), stopwords=self.stopwords, return_ids=False, show_progress=False)
        assert isinstance(out, list)
        return [list(t) for t in out]

    def query_tokens(self, query: str) -> list[str]:
        if self.stopwords == "en":
            return [t for t in _BM25S_SPLIT(query.lower()) if t not in _STOP_EN]
        return self._tokens([query])[0]

    def scores(self, query: str) -> np.ndarray:
        tokens = self.query_tokens(query)
        if not tokens or self.n_docs == 0:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self.index.get_scores(tokens), dtype=np.float32)

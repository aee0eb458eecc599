"""Per-(query, item) match signals over a whole catalogue: the dense inputs of the ranker.

For one query, ``MatchSignals.block`` returns an (items, N_SIGNALS) float32 array:

    0 tfidf       TF-IDF cosine over title + description (hashed unigrams)
    1 bm25        bm25s score over title + description / the query's best score (0..1)
    2 bm25_log    log1p of the raw bm25s score (how strong the match is in absolute terms)
    3 bm25_title  bm25s over the title alone / the query's best
    4 coverage    IDF-weighted fraction of the query's content words found in the item
    5 title_cov   the same, in the title
    6 cosine      sentence-encoder cosine (0 without an encoder)
    7 cosine_z    the cosine standardised over the catalogue for this query
    8 prf_dense   cosine to the centroid of the encoder's top 5 (dense pseudo-relevance feedback)
    9 prf_lexical cosine to the centroid of bm25's top 5 (items like the best lexical matches)
   10 prf_dense_z prf_dense standardised over the catalogue

Everything here depends only on the catalogue and the query text, never on learned weights,
so training computes it once per query and serving once per request.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse as sp
from bm25s.stopwords import STOPWORDS_EN

from rankops.serving.bm25 import BM25sIndex
from rankops.serving.features import TfidfIndex, tokenize

SIGNAL_NAMES = (
    "tfidf",
    "bm25",
    "bm25_log",
    "bm25_title",
    "coverage",
    "title_cov",
    "cosine",
    "cosine_z",
    "prf_dense",
    "prf_lexical",
    "prf_dense_z",
)
PRF_DEPTH = 5
N_SIGNALS = len(SIGNAL_NAMES)
_STOP = frozenset(STOPWORDS_EN)


def content_words(text: str) -> list[str]:
    return [t for t in tokenize(text) if t not in _STOP]


class _Coverage:
    """Binary item-term matrix and IDF, for IDF-weighted query coverage."""

    def __init__(self, docs: Sequence[str]) -> None:
        self.vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        df: Counter[int] = Counter()
        for r, doc in enumerate(docs):
            terms = {self.vocab.setdefault(t, len(self.vocab)) for t in content_words(doc)}
            df.update(terms)
            rows += [r] * len(terms)
            cols += sorted(terms)
        n = max(1, len(docs))
        self.idf = np.array([math.log(1 + n / df[c]) for c in range(len(self.vocab))], dtype=np.float32)
        self.unseen_idf = float(math.log(1 + n))
        data = np.ones(len(rows), dtype=np.float32)
        self.matrix = sp.csc_matrix((data, (rows, cols)), shape=(len(docs), max(1, len(self.vocab))))

    def scores(self, words: Sequence[str]) -> np.ndarray:
        unique = sorted(set(words))
        out = np.zeros(self.matrix.shape[0], dtype=np.float32)
        if not unique:
            return out
        known = [self.vocab[w] for w in unique if w in self.vocab]
        total = float(self.idf[known].sum()) + self.unseen_idf * (len(unique) - len(known))
        if known and total > 0:
            # the words' columns summed straight from the CSC arrays (scipy's fancy column
            # indexing costs more than the sum for a few words)
            indptr, rows = self.matrix.indptr, self.matrix.indices
            spans = [(int(indptr[c]), int(indptr[c + 1])) for c in known]
            hits = np.concatenate([rows[a:b] for a, b in spans])
            weights = np.concatenate(
                [np.full(b - a, self.idf[c]) for (a, b), c in zip(spans, known, strict=True)]
            )
            out += (np.bincount(hits, weights=weights, minlength=len(out)) / total).astype(np.float32)
        return out


def _standardised(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - float(x.mean())) / sd if sd > 1e-6 else np.zeros_like(x)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


class MatchSignals:
    """Lexical indexes over a catalogue, plus the item embeddings when an encoder is used."""

    def __init__(
        self,
        titles: Sequence[str],
        descriptions: Sequence[str],
        *,
        tfidf_buckets: int,
        item_embeddings: np.ndarray | None = None,
        embed_query: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        full = [f"{t} {d}" for t, d in zip(titles, descriptions, strict=True)]
        self.n_items = len(full)
        self.tfidf = TfidfIndex(full, buckets=tfidf_buckets)
        self.bm25 = BM25sIndex(full, stopwords="en")
        self.bm25_title = BM25sIndex(list(titles), stopwords="en")
        self.coverage = _Coverage(full)
        self.title_coverage = _Coverage(list(titles))
        self.item_embeddings = item_embeddings
        self.embed_query = embed_query
        if item_embeddings is not None and embed_query is None:
            raise ValueError("item embeddings need a query encoder")

    def block(self, text: str, query_embedding: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros((self.n_items, N_SIGNALS), dtype=np.float32)
        out[:, 0] = self.tfidf.scores([text])[0]
        raw = self.bm25.scores(text)
        top = float(raw.max()) if raw.size else 0.0
        if top > 0:
            out[:, 1] = raw / top
        out[:, 2] = np.log1p(raw)
        title = self.bm25_title.scores(text)
        top_title = float(title.max()) if title.size else 0.0
        if top_title > 0:
            out[:, 3] = title / top_title
        words = content_words(text)
        out[:, 4] = self.coverage.scores(words)
        out[:, 5] = self.title_coverage.scores(words)
        if self.item_embeddings is not None:
            assert self.embed_query is not None
            q = self.embed_query(text) if query_embedding is None else query_embedding
            cos = self.item_embeddings @ q
            out[:, 6] = cos
            out[:, 7] = _standardised(cos)
            emb = self.item_embeddings
            depth = min(PRF_DEPTH, self.n_items)
            # top by score, ties by catalogue order (deterministic)
            dense_top = np.lexsort((np.arange(self.n_items), -cos))[:depth]
            out[:, 8] = emb @ _unit(emb[dense_top].mean(axis=0))
            out[:, 10] = _standardised(out[:, 8])
            if top > 0:
                lexical_top = np.lexsort((np.arange(self.n_items), -raw))[:depth]
                out[:, 9] = emb @ _unit(emb[lexical_top].mean(axis=0))
        return out

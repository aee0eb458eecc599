"""The request path's hand-rolled sparse sums and query tokens agree with the library calls
they replace (scipy fancy indexing, bm25s.tokenize)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from rankops.serving.bm25 import BM25sIndex
from rankops.serving.features import TfidfIndex
from rankops.serving.signals import _Coverage, content_words

DOCS = [
    "Singapore resale flat prices by town, monthly",
    "Rainfall and temperature records, daily (NEA)",
    "Household income deciles, annual; Singapore's statistics",
    "Straße und Café: Unicode in a title",
    "population population population census 2020",
    "",
]
WORDS = [
    "singapore",
    "prices",
    "monthly",
    "rainfall",
    "café",
    "straße",
    "the",
    "of",
    "2020",
    "zzz",
    "population",
]
queries = st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join) | st.text(max_size=40)


@settings(max_examples=150, deadline=None)
@given(queries)
def test_fast_paths_match_the_library(query: str) -> None:
    tfidf = TfidfIndex(DOCS, buckets=1 << 12)
    cols, w = tfidf.query_vector(query)
    expected = np.zeros(len(DOCS), np.float32)
    if len(cols):
        expected = np.asarray(sp.csr_matrix(tfidf.matrix_t)[cols].T @ w).ravel()
    assert np.allclose(tfidf.scores([query])[0], expected, atol=1e-6)

    bm25 = BM25sIndex(DOCS, stopwords="en")
    assert bm25.query_tokens(query) == bm25._tokens([query])[0]

    cov = _Coverage(DOCS)
    words = content_words(query)
    unique = sorted(set(words))
    known = [cov.vocab[x] for x in unique if x in cov.vocab]
    total = float(cov.idf[known].sum()) + cov.unseen_idf * (len(unique) - len(known))
    want = np.zeros(len(DOCS), np.float32)
    if known and total > 0:
        want += np.asarray(cov.matrix[:, known] @ cov.idf[known]).ravel() / total
    assert np.allclose(cov.scores(words), want, atol=1e-6)

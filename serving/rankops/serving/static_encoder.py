"""A static query encoder distilled from all-MiniLM-L6-v2 (model2vec-style), for the request path.

The transformer costs 6-9 ms per query on one CPU core (int8: ~6), and requests are scored
one after another on the event loop, so at 16 concurrent clients a p95 under 50 ms needs a
query encoder two orders of magnitude cheaper. This one costs a tokenisation and a weighted
sum of a few rows (~0.1 ms):

* ``token_table``: each WordPiece token's MiniLM embedding, computed once by running the
  token alone (``[CLS] token [SEP]``, mean-pooled) through the fp32 model from the PyPI
  package; cached on disk next to the catalogue embeddings (~65 s to build on 2 busy cores).
* a query is the IDF-weighted sum of its tokens' rows, less the table's mean row (the
  component every token shares), mapped by a linear map ``W`` and L2-normalised;
* ``W`` is fitted per catalogue at training time by ridge regression onto the real MiniLM
  embeddings of texts drawn from the catalogue (titles, short word windows of the
  descriptions, whole items) and of the training queries, so the static vectors land in the
  space of the catalogue's (real, fp32) item embeddings. The training queries teach the map
  how queries are phrased (bundled catalogue, test NDCG@3: 0.87 with them, 0.81 without),
  but a query inside the fit gets a vector closer to MiniLM's than any new query will, and
  the re-ranker trained on those learns to trust the cosine more than it should (CISI: 0.50,
  against 0.57 for the static cosine alone). So the re-ranker is trained on out-of-fold
  vectors (``FOLDS``: each training query encoded by a map fitted without its fold, as
  cross-fitting does against target leakage) and serving uses the map fitted on them all.

The map, the IDF weights and the mean row travel in the artifact (``QueryMap``); the table
is rebuilt from the package where it is not cached.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rankops.serving.encoder import (
    DIM,
    ENCODER_NAME,
    cached_embeddings,
    item_text,
    model_dir,
    shared_encoder,
)

STATIC = "static"
FOLDS = 5
RIDGE = 0.1  # measured on the bundled catalogue and CISI: 0.1 and 1.0 within 0.01 NDCG@3
WINDOWS_PER_ITEM = 3
FIRST_ORDINARY_TOKEN = 999  # BERT's vocabulary: [PAD], [unusedN], [UNK], [CLS], [SEP], [MASK] below


def _cache_root() -> Path:
    return Path(
        os.environ.get("RANKOPS_EMBEDDING_CACHE") or Path.home() / ".cache" / "rankops" / "embeddings"
    )


def _tokenizer() -> Any:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    return tok


@functools.cache
def token_table() -> np.ndarray:
    """(vocabulary, 384) float32: every token's MiniLM embedding on its own (read-only)."""
    weights = model_dir() / "model.safetensors"
    stamp = f"{ENCODER_NAME}:{weights.stat().st_size if weights.exists() else 0}"
    path = _cache_root() / f"static-tokens-{hashlib.sha256(stamp.encode()).hexdigest()[:16]}.npy"
    if path.is_file():
        table = np.load(path)
        table.setflags(write=False)
        return table
    encoder = shared_encoder("fp32")
    vocab = encoder.tokenizer.get_vocab_size()
    cls, sep = encoder.tokenizer.token_to_id("[CLS]"), encoder.tokenizer.token_to_id("[SEP]")
    if cls is None or sep is None:
        raise ValueError("the encoder's vocabulary has no [CLS] or [SEP]")
    table = np.zeros((vocab, DIM), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, vocab, 1024):
            ids = torch.arange(start, min(vocab, start + 1024))
            seq = torch.stack([torch.full_like(ids, cls), ids, torch.full_like(ids, sep)], dim=1)
            hidden = encoder.model(seq, torch.ones_like(seq))
            table[start : start + len(ids)] = hidden.mean(1).numpy()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, table)
        tmp.replace(path)
    except OSError:
        pass  # a read-only home only costs the rebuild next time
    table.setflags(write=False)
    return table


@dataclass(frozen=True)
class QueryMap:
    """What the artifact keeps of a fitted static encoder."""

    matrix: np.ndarray  # (384, 384)
    idf: np.ndarray  # (vocabulary,)
    mean: np.ndarray  # (384,)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, matrix=self.matrix, idf=self.idf, mean=self.mean)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> QueryMap:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            matrix, idf, mean = (np.asarray(z[k], dtype=np.float32) for k in ("matrix", "idf", "mean"))
        if matrix.shape != (DIM, DIM) or mean.shape != (DIM,) or idf.ndim != 1:
            raise ValueError(f"query map of shapes {matrix.shape}, {idf.shape}, {mean.shape}")
        return cls(matrix, idf, mean)


class StaticQueryEncoder:
    """``query(text)``: a unit (384,) float32 vector in the catalogue embeddings' space."""

    def __init__(self, qmap: QueryMap) -> None:
        self.table = token_table()
        if qmap.idf.shape[0] != self.table.shape[0]:
            raise ValueError(
                f"query map built for a {qmap.idf.shape[0]}-token vocabulary, the encoder has "
                f"{self.table.shape[0]}"
            )
        self.qmap = qmap
        self.tokenizer = _tokenizer()

    def query(self, text: str) -> np.ndarray:
        """No memo on purpose: it costs ~0.1 ms, and the benchmark's "no cache" means none."""
        ids = [i for i in self.tokenizer.encode(text).ids if i >= FIRST_ORDINARY_TOKEN]
        v = _pooled(self.table, self.qmap, ids) @ self.qmap.matrix
        n = float(np.linalg.norm(v))
        out: np.ndarray = (v / n if n > 0 else v).astype(np.float32)
        out.setflags(write=False)
        return out

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.stack([self.query(t) for t in texts]) if texts else np.zeros((0, DIM), np.float32)


def token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """WordPiece ids of each text, special tokens left out."""
    return [[i for i in e.ids if i >= FIRST_ORDINARY_TOKEN] for e in tokenizer.encode_batch(list(texts))]


def _pooled(table: np.ndarray, qmap: QueryMap, ids: Sequence[int]) -> np.ndarray:
    if not ids:
        return np.zeros(DIM, dtype=np.float32)
    rows = table[list(ids)] - qmap.mean
    return np.asarray(qmap.idf[list(ids)] @ rows, dtype=np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


@dataclass(frozen=True)
class StaticFit:
    qmap: QueryMap  # fitted on the catalogue and every training query: what is served
    train_embeddings: np.ndarray  # (training queries, 384): each from a map without its fold


def _solve(gram: np.ndarray, cross: np.ndarray) -> np.ndarray:
    return np.linalg.solve(gram + RIDGE * np.eye(DIM), cross)


def fit_query_map(
    titles: Sequence[str],
    descriptions: Sequence[str],
    item_embeddings: np.ndarray,
    train_queries: Sequence[str],
    seed: int,
) -> StaticFit:
    """Fit the static encoder to a catalogue and its training queries (module docstring);
    deterministic for a seed."""
    table = token_table()
    tokenizer = _tokenizer()
    item_ids = token_ids(tokenizer, [item_text(t, d) for t, d in zip(titles, descriptions, strict=True)])
    n = max(1, len(item_ids))
    df = Counter(t for ids in item_ids for t in set(ids))
    idf = np.full(table.shape[0], math.log(1 + n), dtype=np.float32)
    for token, count in df.items():
        idf[token] = math.log(1 + n / count)
    mean = table[FIRST_ORDINARY_TOKEN:].mean(axis=0).astype(np.float32)
    unmapped = QueryMap(np.eye(DIM, dtype=np.float32), idf, mean)

    rnd = random.Random(seed)
    snippets = [t for t in titles if t.strip()]
    for d in descriptions:
        words = d.split()
        for _ in range(WINDOWS_PER_ITEM if words else 0):
            size = rnd.randint(2, 12)
            start = rnd.randint(0, max(0, len(words) - size))
            snippets.append(" ".join(words[start : start + size]))
    targets = np.vstack([cached_embeddings(snippets), item_embeddings]) if snippets else item_embeddings
    pooled = [_pooled(table, unmapped, ids) for ids in [*token_ids(tokenizer, snippets), *item_ids]]
    x = _unit_rows(np.stack(pooled).astype(np.float64))
    gram, cross = x.T @ x, x.T @ targets.astype(np.float64)

    queries = list(train_queries)
    q_x = _unit_rows(
        np.stack([_pooled(table, unmapped, ids) for ids in token_ids(tokenizer, queries)]).astype(np.float64)
        if queries
        else np.zeros((0, DIM))
    )
    q_y = (cached_embeddings([q or " " for q in queries]) if queries else np.zeros((0, DIM))).astype(
        np.float64
    )
    folds = np.random.default_rng(seed).permutation(len(queries)) % FOLDS
    q_gram, q_cross = q_x.T @ q_x, q_x.T @ q_y
    train_embeddings = np.zeros((len(queries), DIM), dtype=np.float32)
    for fold in range(FOLDS):
        inside = folds == fold
        if not inside.any():
            continue
        fx, fy = q_x[inside], q_y[inside]
        w = _solve(gram + q_gram - fx.T @ fx, cross + q_cross - fx.T @ fy)
        train_embeddings[inside] = _unit_rows(fx @ w).astype(np.float32)
    matrix = _solve(gram + q_gram, cross + q_cross)
    return StaticFit(QueryMap(matrix.astype(np.float32), idf, mean), train_embeddings)

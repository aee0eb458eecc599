"""The ranking model: a hashed n-gram two-tower scorer plus metadata-match features.

score(q, d) = <Q(q), D(d)> + MLP(h(q, d))

* Q and D share one hashed embedding table (word unigrams, bigrams, character trigrams; the
  item side adds ``m:domain=...``-style metadata tokens), mean-pooled, then a per-tower
  linear layer. Item vectors do not depend on the query, so they are computed once at load.
* h(q, d) are ten interpretable match features: region asked / equal / contained / other,
  publisher equal / different, granularity equal / different, TF-IDF cosine, and the
  probability the domain head gives to the item's domain.
* A domain head (linear over the pooled query embedding) predicts the query's domain; it is
  trained with an auxiliary cross-entropy loss and also feeds h.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rankops.serving.features import (
    REGION_PARENTS,
    QueryParser,
    TfidfIndex,
    hash_features,
    item_feature_strings,
    query_feature_strings,
)

N_MATCH_FEATURES = 10


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and vocabularies; saved as ``model_config.json`` next to the weights."""

    buckets: int = 1 << 15
    dim: int = 64
    hidden: int = 16
    domains: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    granularities: list[str] = field(default_factory=list)
    tfidf_buckets: int = 1 << 18

    def to_json(self) -> dict[str, Any]:
        return {"architecture": "hashed-two-tower+match-mlp", "format": 1, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class RankingNet(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.EmbeddingBag(config.buckets, config.dim, mode="mean")
        self.query_proj = nn.Linear(config.dim, config.dim)
        self.item_proj = nn.Linear(config.dim, config.dim)
        self.domain_head = nn.Linear(config.dim, max(1, len(config.domains)))
        self.match = nn.Sequential(
            nn.Linear(N_MATCH_FEATURES, config.hidden), nn.ReLU(), nn.Linear(config.hidden, 1)
        )
        nn.init.normal_(self.embedding.weight, std=0.1)

    def encode_items(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.item_proj(self.embedding(ids, offsets))

    def encode_queries(self, ids: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (query vectors, domain logits)."""
        pooled = self.embedding(ids, offsets)
        return self.query_proj(pooled), self.domain_head(pooled)

    def score(
        self,
        qvec: torch.Tensor,  # (B, dim)
        domain_logits: torch.Tensor,  # (B, n_domains)
        qcat: torch.Tensor,  # (B, 3) region, source, granularity ids; -1 = not named
        lexical: torch.Tensor,  # (B, N) TF-IDF cosine
        items: ItemTensors,
    ) -> torch.Tensor:
        dense = qvec @ items.vectors.T  # (B, N)
        q_region, q_source, q_gran = qcat[:, 0:1], qcat[:, 1:2], qcat[:, 2:3]
        has_region = (q_region >= 0).float()
        # region_parent[r, i] = 1 when item i's region contains region r
        safe_region = q_region.clamp(min=0).squeeze(1)
        contained = items.region_parent[safe_region] * has_region
        region_eq = (items.region[None, :] == q_region).float()
        has_source = (q_source >= 0).float()
        source_eq = (items.source[None, :] == q_source).float()
        has_gran = (q_gran >= 0).float()
        gran_eq = (items.granularity[None, :] == q_gran).float()
        p_domain = torch.softmax(domain_logits, dim=1)[:, items.domain]  # (B, N)
        ones = torch.ones_like(dense)
        h = torch.stack(
            [
                has_region * ones,
                region_eq,
                contained,
                has_region * (1 - region_eq) * (1 - contained),
                source_eq,
                has_source * (1 - source_eq),
                gran_eq,
                has_gran * (1 - gran_eq),
                lexical,
                p_domain,
            ],
            dim=2,
        )
        return dense + self.match(h).squeeze(2)


@dataclass
class ItemTensors:
    vectors: torch.Tensor  # (N, dim)
    region: torch.Tensor  # (N,) long
    source: torch.Tensor
    granularity: torch.Tensor
    domain: torch.Tensor
    region_parent: torch.Tensor  # (n_regions, N) float


def _bag(lists: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = np.zeros(len(lists), dtype=np.int64)
    total = 0
    for i, ids in enumerate(lists):
        offsets[i] = total
        total += len(ids)
    flat = np.fromiter((x for ids in lists for x in ids), dtype=np.int64, count=total)
    return torch.from_numpy(flat), torch.from_numpy(offsets)


def _index(values: Sequence[str], vocab: Sequence[str]) -> torch.Tensor:
    pos = {v: i for i, v in enumerate(vocab)}
    return torch.tensor([pos.get(v, -2) for v in values], dtype=torch.long)


class Featurizer:
    """Turns catalogue items and query text into model inputs (no learned parameters)."""

    def __init__(
        self,
        config: ModelConfig,
        titles: Sequence[str],
        descriptions: Sequence[str],
        meta: Sequence[dict[str, str]],
    ) -> None:
        self.config = config
        self.parser = QueryParser(config.sources)
        self.tfidf = TfidfIndex(
            [f"{t} {d}" for t, d in zip(titles, descriptions, strict=True)], buckets=config.tfidf_buckets
        )
        self.item_ids = [
            hash_features(item_feature_strings(t, d, m), config.buckets)
            for t, d, m in zip(titles, descriptions, meta, strict=True)
        ]
        self.meta = list(meta)
        self._region_pos = {r: i for i, r in enumerate(config.regions)}
        self._source_pos = {s: i for i, s in enumerate(config.sources)}
        self._gran_pos = {g: i for i, g in enumerate(config.granularities)}

    def item_bag(self) -> tuple[torch.Tensor, torch.Tensor]:
        return _bag(self.item_ids)

    def item_categoricals(self) -> dict[str, torch.Tensor]:
        cfg = self.config
        regions = [m.get("region", "") for m in self.meta]
        parent = torch.zeros((max(1, len(cfg.regions)), len(regions)))
        for r_i, r in enumerate(cfg.regions):
            parents = REGION_PARENTS.get(r, frozenset())
            for j, item_region in enumerate(regions):
                if item_region in parents:
                    parent[r_i, j] = 1.0
        return {
            "region": _index(regions, cfg.regions),
            "source": _index([m.get("source", "") for m in self.meta], cfg.sources),
            "granularity": _index([m.get("granularity", "") for m in self.meta], cfg.granularities),
            "domain": _index([m.get("domain", "") for m in self.meta], cfg.domains).clamp(min=0),
            "region_parent": parent,
        }

    def query_inputs(
        self, texts: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (ids, offsets, categoricals (B, 3), lexical (B, N))."""
        ids, offsets = _bag([hash_features(query_feature_strings(t), self.config.buckets) for t in texts])
        cats = []
        for t in texts:
            region, source, gran = self.parser.parse(t)
            cats.append(
                [
                    self._region_pos.get(region, -1) if region else -1,
                    self._source_pos.get(source, -1) if source else -1,
                    self._gran_pos.get(gran, -1) if gran else -1,
                ]
            )
        qcat = torch.tensor(cats, dtype=torch.long).reshape(len(texts), 3)
        lexical = torch.from_numpy(self.tfidf.scores(texts))
        return ids, offsets, qcat, lexical


class Ranker:
    """A trained network bound to a catalogue, with item representations precomputed.

    ``scores`` and ``top_k`` are thread-safe: inference never mutates shared state (the
    network is in eval mode and runs under ``torch.inference_mode``).
    """

    def __init__(self, net: RankingNet, featurizer: Featurizer) -> None:
        self.net = net.eval()
        self.featurizer = featurizer
        self.config = net.config
        with torch.inference_mode():
            ids, offsets = featurizer.item_bag()
            cats = featurizer.item_categoricals()
            self.items = ItemTensors(vectors=net.encode_items(ids, offsets).contiguous(), **cats)
        self._lock = threading.Lock()  # only guards lazy caches, never inference

    def infer(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (scores (B, N), domain probabilities (B, n_domains))."""
        ids, offsets, qcat, lexical = self.featurizer.query_inputs(texts)
        with torch.inference_mode():
            qvec, logits = self.net.encode_queries(ids, offsets)
            scores = self.net.score(qvec, logits, qcat, lexical, self.items)
            return scores, torch.softmax(logits, dim=1)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.infer(texts)[0].numpy()

    def top_k(self, texts: Sequence[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (item index, score) per query; ties broken by item index ascending."""
        if not texts:
            return []
        return top_k_rows(self.scores(texts), k)


def top_k_rows(scores: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
    """Top-k (column, score) of each row, best first; ties by column ascending."""
    n = scores.shape[1]
    k = max(0, min(k, n))
    out: list[list[tuple[int, float]]] = []
    for row in scores:
        if k == 0:
            out.append([])
            continue
        # sort by (-score, index): ties keep catalogue order, so rankings are deterministic
        idx = np.argpartition(-row, k - 1)[:k] if k < n else np.arange(n)
        idx = idx[np.lexsort((idx, -row[idx]))]
        out.append([(int(i), float(row[i])) for i in idx])
    return out


class FastScorer:
    """Single-query inference in numpy, for the request path.

    The same arithmetic as ``RankingNet.score`` for one query (a unit test checks they agree),
    without torch's per-operator dispatch cost: about 0.2-0.4 ms for 1,200 items on one core.
    Everything is read-only after construction, so concurrent calls are safe.
    """

    def __init__(self, net: RankingNet, featurizer: Featurizer) -> None:
        self.config = net.config
        self.featurizer = featurizer
        with torch.inference_mode():
            ids, offsets = featurizer.item_bag()
            self.item_vectors = net.encode_items(ids, offsets).numpy().copy()
            self.embedding = net.embedding.weight.detach().numpy().copy()
            self.wq = net.query_proj.weight.detach().numpy().T.copy()
            self.bq = net.query_proj.bias.detach().numpy().copy()
            self.wd = net.domain_head.weight.detach().numpy().T.copy()
            self.bd = net.domain_head.bias.detach().numpy().copy()
            first, last = net.match[0], net.match[2]
            assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
            self.w1 = first.weight.detach().numpy().T.copy()  # (10, hidden)
            self.b1 = first.bias.detach().numpy().copy()
            self.w2 = last.weight.detach().numpy()[0].copy()  # (hidden,)
            self.b2 = float(last.bias.detach().numpy()[0])
        cats = featurizer.item_categoricals()
        self.item_region = cats["region"].numpy()
        self.item_source = cats["source"].numpy()
        self.item_gran = cats["granularity"].numpy()
        self.item_domain = cats["domain"].numpy()
        self.region_parent = cats["region_parent"].numpy().astype(np.float32)
        mt = featurizer.tfidf.matrix_t
        self._t_indptr, self._t_indices, self._t_data = mt.indptr, mt.indices, mt.data
        self.n_items = self.item_vectors.shape[0]
        self._region_pos = {r: i for i, r in enumerate(self.config.regions)}
        self._source_pos = {s: i for i, s in enumerate(self.config.sources)}
        self._gran_pos = {g: i for i, g in enumerate(self.config.granularities)}
        # the service asks for the domain and the ranking of the same text: memoize the
        # query-side work (thread-safe; the arrays returned are never mutated)
        self.pooled = functools.lru_cache(maxsize=4096)(self._pooled)
        self.parse = functools.lru_cache(maxsize=4096)(featurizer.parser.parse)

    def _pooled(self, text: str) -> np.ndarray:
        ids = hash_features(query_feature_strings(text), self.config.buckets)
        out: np.ndarray = self.embedding[ids].mean(axis=0)
        out.setflags(write=False)
        return out

    def domain_probabilities(self, text: str, pooled: np.ndarray | None = None) -> np.ndarray:
        p = self.pooled(text) if pooled is None else pooled
        logits = p @ self.wd + self.bd
        e = np.exp(logits - logits.max())
        return e / e.sum()

    def lexical(self, text: str) -> np.ndarray:
        out = np.zeros(self.n_items, dtype=np.float32)
        cols, weights = self.featurizer.tfidf.query_vector(text)
        for c, w in zip(cols.tolist(), weights.tolist(), strict=True):
            s, e = self._t_indptr[c], self._t_indptr[c + 1]
            if e > s:
                out[self._t_indices[s:e]] += w * self._t_data[s:e]
        return out

    def scores(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(scores over the catalogue, domain probabilities) for one query."""
        pooled = self.pooled(text)
        q = pooled @ self.wq + self.bq
        probs = self.domain_probabilities(text, pooled)
        region, source, gran = self.parse(text)
        qr = self._region_pos.get(region, -1) if region else -1
        qs = self._source_pos.get(source, -1) if source else -1
        qg = self._gran_pos.get(gran, -1) if gran else -1
        n = self.n_items
        h = np.zeros((n, N_MATCH_FEATURES), dtype=np.float32)
        if qr >= 0:
            eq = (self.item_region == qr).astype(np.float32)
            contained = self.region_parent[qr]
            h[:, 0] = 1.0
            h[:, 1] = eq
            h[:, 2] = contained
            h[:, 3] = (1 - eq) * (1 - contained)
        if qs >= 0:
            eq = (self.item_source == qs).astype(np.float32)
            h[:, 4] = eq
            h[:, 5] = 1 - eq
        if qg >= 0:
            eq = (self.item_gran == qg).astype(np.float32)
            h[:, 6] = eq
            h[:, 7] = 1 - eq
        h[:, 8] = self.lexical(text)
        h[:, 9] = probs[self.item_domain]
        hidden = np.maximum(h @ self.w1 + self.b1, 0.0)
        return self.item_vectors @ q + hidden @ self.w2 + self.b2, probs

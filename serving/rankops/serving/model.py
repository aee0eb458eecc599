"""The ranking model: learned re-scoring of every catalogue item from match signals.

score(q, d) = MLP(h(q, d)) [+ <Q(q), D(d)> when ``dense``] + prior(d)

* h(q, d) are interpretable features: the query's region / publisher / granularity against the
  item's (8 indicators), the probability the domain head gives to the item's domain, and the
  lexical and semantic signals of ``rankops.serving.signals`` (bm25s over the whole text and
  the title, IDF-weighted coverage, TF-IDF cosine, and the all-MiniLM-L6-v2 cosine between
  the query and the item's precomputed embedding).
* Q and D (optional, ``dense``) share a hashed n-gram embedding table, mean-pooled, then a
  per-tower linear layer: it learns a catalogue's own vocabulary where there are enough
  training queries. The domain head (linear over the pooled query n-grams) is trained with an
  auxiliary loss.
* prior(d) is a learned per-item bias from the item's metadata (domain, source, granularity).

Item-side work (vectors, embeddings, indexes) is done once at load; a query costs one encoder
pass plus sparse lexical scoring. ``relevance`` is the calibrated estimate of grade / 4
(``rankops.serving.calibration``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from rankops.serving.calibration import Calibrator
from rankops.serving.features import (
    REGION_PARENTS,
    QueryParser,
    hash_features,
    item_feature_strings,
    query_feature_strings,
)
from rankops.serving.signals import N_SIGNALS, SIGNAL_NAMES, MatchSignals

N_META_FEATURES = 9
N_MATCH_FEATURES = N_META_FEATURES + N_SIGNALS
MODEL_FORMAT = 2
ARCHITECTURE = "signals-mlp+hashed-two-tower"


@dataclass(frozen=True)
class ModelConfig:
    """Architecture and vocabularies; saved as ``model_config.json`` next to the weights."""

    buckets: int = 1 << 15
    dim: int = 64
    hidden: int = 32
    domains: list[str] = field(default_factory=list)
    regions: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    granularities: list[str] = field(default_factory=list)
    tfidf_buckets: int = 1 << 18
    dense: bool = True
    encoder: str = ""  # "" or rankops.serving.encoder.ENCODER_NAME
    encoder_quantize: str = "fp32"
    calibration: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"architecture": ARCHITECTURE, "format": MODEL_FORMAT, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelConfig:
        fmt = data.get("format")
        if fmt != MODEL_FORMAT:
            raise ValueError(
                f"model format {fmt!r} ({data.get('architecture', 'unknown architecture')}) is not served "
                f"by this version, which reads format {MODEL_FORMAT} ({ARCHITECTURE}): retrain it with "
                "`rankops train`"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_calibration(self, params: Sequence[float]) -> ModelConfig:
        return ModelConfig(**{**asdict(self), "calibration": [float(p) for p in params]})


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
        # a linear path started at a plain fusion (encoder cosine + dense pseudo-relevance
        # feedback, both standardised), the MLP at zero: training begins from a sound ranking
        # and moves away only as far as the data says
        self.linear = nn.Linear(N_MATCH_FEATURES, 1, bias=False)
        nn.init.zeros_(self.linear.weight)
        with torch.no_grad():
            self.linear.weight[0, N_META_FEATURES + SIGNAL_NAMES.index("cosine_z")] = 1.0
            self.linear.weight[0, N_META_FEATURES + SIGNAL_NAMES.index("prf_dense_z")] = 1.0
        last = self.match[2]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        n_meta = len(config.domains) + len(config.sources) + len(config.granularities) + 1
        self.prior = nn.Embedding(n_meta, 1)
        nn.init.zeros_(self.prior.weight)
        nn.init.normal_(self.embedding.weight, std=0.1)

    def encode_items(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.item_proj(self.embedding(ids, offsets))

    def encode_queries(self, ids: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (query vectors, domain logits)."""
        pooled = self.embedding(ids, offsets)
        return self.query_proj(pooled), self.domain_head(pooled)

    def item_prior(self, items: ItemTensors) -> torch.Tensor:
        return self.prior(items.prior_ids).sum(1).squeeze(1)  # (N,)

    def score(
        self,
        qvec: torch.Tensor,  # (B, dim)
        domain_logits: torch.Tensor,  # (B, n_domains)
        qcat: torch.Tensor,  # (B, 3) region, source, granularity ids; -1 = not named
        signals: torch.Tensor,  # (B, N, N_SIGNALS)
        items: ItemTensors,
    ) -> torch.Tensor:
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
        ones = torch.ones_like(p_domain)
        meta = torch.stack(
            [
                has_region * ones,
                region_eq,
                contained,
                has_region * (1 - region_eq) * (1 - contained),
                source_eq,
                has_source * (1 - source_eq),
                gran_eq,
                has_gran * (1 - gran_eq),
                p_domain,
            ],
            dim=2,
        )
        h = torch.cat([meta, signals], dim=2)
        out = self.match(h).squeeze(2) + self.linear(h).squeeze(2) + self.item_prior(items)[None, :]
        if self.config.dense:
            out = out + qvec @ items.vectors.T
        return out


@dataclass
class ItemTensors:
    vectors: torch.Tensor  # (N, dim)
    region: torch.Tensor  # (N,) long
    source: torch.Tensor
    granularity: torch.Tensor
    domain: torch.Tensor
    region_parent: torch.Tensor  # (n_regions, N) float
    prior_ids: torch.Tensor  # (N, 3) long: domain, source, granularity slots of the prior table


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
        *,
        item_embeddings: np.ndarray | None = None,
        embed_query: Callable[[str], np.ndarray] | None = None,
    ) -> None:
        self.config = config
        self.parser = QueryParser(config.sources)
        self.signals = MatchSignals(
            titles,
            descriptions,
            tfidf_buckets=config.tfidf_buckets,
            item_embeddings=item_embeddings,
            embed_query=embed_query,
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
        domain = _index([m.get("domain", "") for m in self.meta], cfg.domains)
        source = _index([m.get("source", "") for m in self.meta], cfg.sources)
        gran = _index([m.get("granularity", "") for m in self.meta], cfg.granularities)
        unknown = len(cfg.domains) + len(cfg.sources) + len(cfg.granularities)
        prior_ids = torch.stack(
            [
                torch.where(domain >= 0, domain, unknown),
                torch.where(source >= 0, source + len(cfg.domains), unknown),
                torch.where(gran >= 0, gran + len(cfg.domains) + len(cfg.sources), unknown),
            ],
            dim=1,
        )
        return {
            "region": _index(regions, cfg.regions),
            "source": source,
            "granularity": gran,
            "domain": domain.clamp(min=0),
            "region_parent": parent,
            "prior_ids": prior_ids,
        }

    def query_categoricals(self, text: str) -> list[int]:
        region, source, gran = self.parser.parse(text)
        return [
            self._region_pos.get(region, -1) if region else -1,
            self._source_pos.get(source, -1) if source else -1,
            self._gran_pos.get(gran, -1) if gran else -1,
        ]

    def query_inputs(
        self, texts: Sequence[str], query_embeddings: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (ids, offsets, categoricals (B, 3), signals (B, N, N_SIGNALS))."""
        ids, offsets = _bag([hash_features(query_feature_strings(t), self.config.buckets) for t in texts])
        qcat = torch.tensor([self.query_categoricals(t) for t in texts], dtype=torch.long).reshape(
            len(texts), 3
        )
        blocks = [
            self.signals.block(t, None if query_embeddings is None else query_embeddings[i])
            for i, t in enumerate(texts)
        ]
        sig = torch.from_numpy(np.stack(blocks)) if blocks else torch.zeros((0, 0, N_SIGNALS))
        return ids, offsets, qcat, sig


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

    def infer(
        self, texts: Sequence[str], query_embeddings: np.ndarray | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (scores (B, N), domain probabilities (B, n_domains))."""
        ids, offsets, qcat, sig = self.featurizer.query_inputs(texts, query_embeddings)
        with torch.inference_mode():
            qvec, logits = self.net.encode_queries(ids, offsets)
            scores = self.net.score(qvec, logits, qcat, sig, self.items)
            return scores, torch.softmax(logits, dim=1)

    def scores(self, texts: Sequence[str], query_embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.infer(texts, query_embeddings)[0].numpy()

    def top_k(
        self, texts: Sequence[str], k: int, query_embeddings: np.ndarray | None = None
    ) -> list[list[tuple[int, float]]]:
        """Top-k (item index, score) per query; ties broken by item index ascending."""
        if not texts:
            return []
        return top_k_rows(self.scores(texts, query_embeddings), k)


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
    without torch's per-operator dispatch cost. Everything is read-only after construction,
    so concurrent calls are safe.
    """

    def __init__(self, net: RankingNet, featurizer: Featurizer) -> None:
        self.config = net.config
        self.featurizer = featurizer
        self.calibrator = Calibrator(net.config.calibration)
        with torch.inference_mode():
            ids, offsets = featurizer.item_bag()
            cats = featurizer.item_categoricals()
            items = ItemTensors(vectors=net.encode_items(ids, offsets), **cats)
            self.item_vectors = items.vectors.numpy().copy()
            self.prior = net.item_prior(items).numpy().copy()
            self.embedding = net.embedding.weight.detach().numpy().copy()
            self.wq = net.query_proj.weight.detach().numpy().T.copy()
            self.bq = net.query_proj.bias.detach().numpy().copy()
            self.wd = net.domain_head.weight.detach().numpy().T.copy()
            self.bd = net.domain_head.bias.detach().numpy().copy()
            first, last = net.match[0], net.match[2]
            assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
            self.w1 = first.weight.detach().numpy().T.copy()  # (features, hidden)
            self.b1 = first.bias.detach().numpy().copy()
            self.w2 = last.weight.detach().numpy()[0].copy()  # (hidden,)
            self.b2 = float(last.bias.detach().numpy()[0])
            self.wl = net.linear.weight.detach().numpy()[0].copy()  # (features,)
        self.item_region = cats["region"].numpy()
        self.item_source = cats["source"].numpy()
        self.item_gran = cats["granularity"].numpy()
        self.item_domain = cats["domain"].numpy()
        self.region_parent = cats["region_parent"].numpy().astype(np.float32)
        self.n_items = self.item_vectors.shape[0]
        # the service asks for the domain and the ranking of the same text: memoize the
        # query-side n-gram pooling and parsing (thread-safe; results are never mutated)
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

    def scores(self, text: str, query_embedding: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores over the catalogue, domain probabilities) for one query."""
        pooled = self.pooled(text)
        probs = self.domain_probabilities(text, pooled)
        qr, qs, qg = self.featurizer.query_categoricals(text)
        h = np.zeros((self.n_items, N_MATCH_FEATURES), dtype=np.float32)
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
        h[:, 8] = probs[self.item_domain]
        h[:, N_META_FEATURES:] = self.featurizer.signals.block(text, query_embedding)
        hidden = np.maximum(h @ self.w1 + self.b1, 0.0)
        out = hidden @ self.w2 + self.b2 + h @ self.wl + self.prior
        if self.config.dense:
            out = out + self.item_vectors @ (pooled @ self.wq + self.bq)
        return out, probs

    def relevance(self, ranked_scores: Sequence[float]) -> list[float]:
        """Estimated grade / 4 of the items at ranks 0, 1, ... with these scores."""
        return self.calibrator.estimate(ranked_scores)

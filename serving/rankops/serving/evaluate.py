"""`rankops evaluate`: model and BM25 metrics on one split of a BEIR dataset."""

from __future__ import annotations

import sys
import time
from typing import Any

from rankops.serving.artifact import load_artifact
from rankops.serving.dataset import DatasetError, load_dataset
from rankops.serving.training_run import evaluate_split


def evaluate_command(
    model_uri: str, data: str, split: str = "test", *, verify: bool = True
) -> dict[str, Any]:
    """Return {"split", "queries", "model": {...}, "bm25": {...}}; progress goes to stderr.

    The model ranks its own catalogue; judged documents missing from it count as unretrieved."""
    started = time.perf_counter()
    ds = load_dataset(data)
    if split not in ds.qrels:
        raise DatasetError(f"{data}: no qrels/{split}.tsv")
    artifact = load_artifact(model_uri, verify=verify)
    print(f"evaluating {artifact.uri} (version {artifact.version}) on {data} split {split}", file=sys.stderr)
    result = evaluate_split(artifact, ds, split)
    result["model"] = {k: round(v, 6) for k, v in result["model"].items()}
    result["bm25"] = {k: round(v, 6) for k, v in result["bm25"].items()}
    print(f"done in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return result

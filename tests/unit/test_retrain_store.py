"""The retrain controller's storage reads, checked against what serving writes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from rankops.operator.adapters.retrain_store import (
    RetrainStoreError,
    count_feedback,
    count_train_queries,
    read_manifest,
)
from rankops.serving.feedback import feedback_line
from rankops.serving.feedback_log import FeedbackLog, read_feedback


def _line(i: int, at: float) -> bytes:
    return feedback_line(
        request_id=f"r{i}",
        at=at,
        served_at=at - 1,
        identity={"model": "m", "version": "1.0.0", "track": "stable"},
        query=f"query {i}",
        domain="general",
        shown=b'[{"id":"a","rank":1,"score":1.0,"source":"x"}]',
        kind="judgments",
        given={"a": 2},
        grades={"a": 2},
        ndcg=1.0,
        top1_relevant=True,
    )


def test_feedback_count_agrees_with_the_serving_reader(tmp_path: Path) -> None:
    times = [1_000_000.0 + 3600 * i for i in range(60)]  # records over two and a half days

    async def write() -> None:
        log = FeedbackLog(str(tmp_path), flush_s=10, batch_records=100, max_unflushed=100)
        for chunk in range(0, len(times), 7):  # several objects
            for i in range(chunk, min(chunk + 7, len(times))):
                log.feedback(_line(i, times[i]))
            await log.flush()

    asyncio.run(write())
    for since in (0.0, times[10], times[30] + 1, times[-1] + 1):
        assert count_feedback(str(tmp_path), since) == sum(1 for _ in read_feedback(str(tmp_path), since))
    assert count_feedback(f"file://{tmp_path}", times[10]) == 50
    assert count_feedback(str(tmp_path / "absent"), 0.0) == 0


def test_train_queries_and_manifests(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\ta\t1\nq1\tb\t0\nq2\ta\t2\n"
    )
    assert count_train_queries(str(tmp_path)) == 2
    with pytest.raises(RetrainStoreError, match=r"train\.tsv"):
        count_train_queries(str(tmp_path / "nothing"))
    assert read_manifest(str(tmp_path)) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"version": "1.0.1-retrain.1"}))
    assert read_manifest(str(tmp_path)) == {"version": "1.0.1-retrain.1"}
    (tmp_path / "manifest.json").write_text("[1, 2")
    with pytest.raises(RetrainStoreError, match=r"manifest\.json"):
        read_manifest(str(tmp_path))

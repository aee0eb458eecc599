"""The query batcher: concurrent callers share encoder passes and each gets its own row."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rankops.serving.query_batcher import QueryBatcher


class GatedEncoder:
    """Encodes a text as (len, first code point); the first pass waits for ``release``."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.batches: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        if not self.batches:
            self.entered.set()
            self.release.wait(10)
        self.batches.append(list(texts))
        if any(t == "boom" for t in texts):
            raise RuntimeError("encoder failed")
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)


def expected(text: str) -> list[float]:
    return [float(len(text)), float(ord(text[0]))]


def wait_pending(batcher: QueryBatcher, count: int) -> None:
    deadline = time.monotonic() + 10
    while batcher.pending < count:
        assert time.monotonic() < deadline, f"only {batcher.pending} of {count} callers queued"
        time.sleep(0.005)


def test_a_lone_caller_gets_a_pass_of_its_own_without_waiting() -> None:
    encoder = GatedEncoder()
    encoder.release.set()
    batcher = QueryBatcher(encoder, max_batch=16)
    assert batcher.embed("alpha").tolist() == expected("alpha")
    assert batcher.embed("be").tolist() == expected("be")
    assert encoder.batches == [["alpha"], ["be"]]


def test_callers_arriving_during_a_pass_share_the_next_one_up_to_max_batch() -> None:
    encoder = GatedEncoder()
    batcher = QueryBatcher(encoder, max_batch=8)
    texts = ["first"] + [f"{chr(97 + i)}-query-{'x' * i}" for i in range(20)]
    with ThreadPoolExecutor(len(texts)) as pool:
        first = pool.submit(batcher.embed, texts[0])
        assert encoder.entered.wait(10)  # the worker took "first" and is inside its pass
        rest = [pool.submit(batcher.embed, t) for t in texts[1:]]
        wait_pending(batcher, 20)
        encoder.release.set()
        results = [first.result(10)] + [f.result(10) for f in rest]
    for text, vector in zip(texts, results, strict=True):
        assert vector.tolist() == expected(text)
        assert not vector.flags.writeable  # shared through the caller's memo: read-only
    assert [len(b) for b in encoder.batches] == [1, 8, 8, 4]
    assert batcher.totals == (4, 21)


def test_an_encoder_error_reaches_every_caller_of_that_pass_and_the_worker_survives() -> None:
    encoder = GatedEncoder()
    batcher = QueryBatcher(encoder, max_batch=4)
    with ThreadPoolExecutor(4) as pool:
        gate = pool.submit(batcher.embed, "gate")
        assert encoder.entered.wait(10)
        doomed = [pool.submit(batcher.embed, t) for t in ("boom", "bystander")]
        wait_pending(batcher, 2)
        encoder.release.set()
        assert gate.result(10).tolist() == expected("gate")
        for future in doomed:
            with pytest.raises(RuntimeError, match="encoder failed"):
                future.result(10)
    assert batcher.embed("after").tolist() == expected("after")


def test_wait_idle_returns_once_the_pass_in_flight_and_the_queue_are_done() -> None:
    encoder = GatedEncoder()
    batcher = QueryBatcher(encoder, max_batch=4)
    assert batcher.wait_idle(0.01)  # never used: idle
    first = batcher.submit("first")
    assert encoder.entered.wait(10)
    queued = [batcher.submit(t) for t in ("queued", "too")]
    assert not batcher.wait_idle(0.05)  # a pass runs, two wait
    threading.Timer(0.05, encoder.release.set).start()
    assert batcher.wait_idle(10)
    results = [f.result(0).tolist() for f in [first, *queued]]
    assert results == [expected(t) for t in ("first", "queued", "too")]
    assert batcher.totals == (2, 3)
    assert batcher.embed("again").tolist() == expected("again")  # idle is not closed


def test_max_batch_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        QueryBatcher(GatedEncoder(), max_batch=0)


QUERIES = [
    "singapore housing prices",
    "climate change indicators",
    "psychology research data",
    "machine learning datasets",
    "monthly rainfall by station in the north-east monsoon season",
    "gdp",
    "hospital admissions by age group and sex, annual",
    "school enrolment",
] * 4


def batched_through_threads(encoder: object, texts: Sequence[str]) -> np.ndarray:
    from rankops.serving.encoder import SentenceEncoder

    assert isinstance(encoder, SentenceEncoder)
    with ThreadPoolExecutor(16) as pool:
        return np.stack(list(pool.map(encoder.batcher.embed, texts)))


def test_minilm_vectors_through_the_batcher_match_one_query_passes() -> None:
    from rankops.serving.encoder import SentenceEncoder

    fp32 = SentenceEncoder("fp32")
    alone = fp32.encode(QUERIES, batch_size=1)
    shared = batched_through_threads(fp32, QUERIES)
    assert fp32.batcher.totals[0] < len(QUERIES)  # the threads did share passes
    assert np.abs(shared - alone).max() < 1e-5

    # int8: every token's row has its own activation scale (onnx_int8), so a vector does not
    # move with the company it is encoded in; float rounding can still tip a code by one step
    int8 = SentenceEncoder("int8")
    int8_alone = int8.encode(QUERIES, batch_size=1)
    int8_shared = batched_through_threads(int8, QUERIES)
    assert int8.batcher.totals[0] < len(QUERIES)
    assert (int8_shared * int8_alone).sum(axis=1).min() > 0.99999
    assert np.abs(int8_shared - int8_alone).max() < 1e-3
    assert (int8_shared * alone).sum(axis=1).min() > 0.99

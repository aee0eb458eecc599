"""Coalesces concurrent one-query encoder calls into batched transformer passes.

Every new query a request brings needs one sentence embedding. One int8 MiniLM pass over one
query of the bundled traffic (~15 tokens) costs ~1.8 ms on one core, ~0.8 ms of it fixed
per-pass overhead; a pass over 8 costs ~12 ms, so a shared pass saves that overhead but pads
every query to the longest. So the service hands the query to one encoder thread (``submit``,
awaited through ``asyncio.wrap_future``) and the event loop goes on with other requests until
the vector is there; the rest of the scoring then runs on the loop as before
(``ServiceSettings.score_inline`` says why).

How many a pass (``encoder.QUERY_BATCH``, 4): measured with ``benchmarks/serving.py
--encoders none,int8@1,int8@2,int8@4,int8@8,int8 --phases cold`` (16 clients, cache off,
2 cores), at most 1 / 2 / 4 / 8 / 16 queries a pass served 385 / 450 / 496 / 476 / 385
requests/s at p95 57 / 52 / 44 / 48 / 63 ms: past 4, a pass waits on longer padding and the
queries that arrive during it wait on the whole pass.

Policy ("continuous batching", no timer): when the encoder thread is free it takes every
query pending, up to ``max_batch``, and runs them as one pass; what arrives during that pass
forms the next batch. A lone caller (evaluation, a quiet pod) is never held back waiting for
company, and under load batches grow to the arrival rate times one pass. At most
``max_pending`` queries wait; past that ``submit`` raises ``EncoderBusy`` (the service's 503),
so an overload sheds requests instead of growing a queue whose answers come too late.

A vector can differ from the one-query pass by float rounding (fp32: ~1e-7). The int8 graph
gives each token's row its own activation scale (``onnx_int8``), so a query's int8 vector does
not move with the company it is encoded in either (~1e-7; a code tipped by one step at worst);
``tests/unit/test_query_batcher.py`` checks both. ``$RANKOPS_QUERY_BATCH=1`` still gives every
query its own pass, for a pod that would rather not pad.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future

import numpy as np

__all__ = ["EncoderBusy", "QueryBatcher", "awaited_vectors"]


class EncoderBusy(RuntimeError):
    """``max_pending`` queries are already waiting for the encoder."""


class QueryBatcher:
    """``submit(text)`` from any thread (the event loop wraps the future): that text's row of
    ``encode([... text ...])``; ``embed(text)`` waits for it."""

    def __init__(
        self,
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        max_batch: int = 16,
        max_pending: int = 256,
        name: str = "encoder",
    ) -> None:
        if max_batch < 1 or max_pending < 1:
            raise ValueError(f"max_batch and max_pending must be at least 1, not {max_batch}, {max_pending}")
        self._encode = encode
        self.max_batch = max_batch
        self.max_pending = max_pending
        self._pending: deque[tuple[str, Future[np.ndarray]]] = deque()
        self._wake = threading.Condition()
        self._worker: threading.Thread | None = None
        self._name = name
        self._passes = 0  # passes run, and queries they carried (the service's metrics)
        self._queries = 0
        self._in_pass = False

    @property
    def pending(self) -> int:
        """Queries waiting for a pass that has not started."""
        with self._wake:
            return len(self._pending)

    @property
    def totals(self) -> tuple[int, int]:
        """(passes run, queries they carried) since start: their ratio is the mean batch."""
        with self._wake:
            return self._passes, self._queries

    def submit(self, text: str) -> Future[np.ndarray]:
        future: Future[np.ndarray] = Future()
        with self._wake:
            if len(self._pending) >= self.max_pending:
                raise EncoderBusy(f"{len(self._pending)} queries are already waiting for the query encoder")
            self._pending.append((text, future))
            if self._worker is None:
                # a daemon: it holds no state that must be flushed, and it sleeps when idle
                self._worker = threading.Thread(target=self._run, name=f"rankops-{self._name}", daemon=True)
                self._worker.start()
            self._wake.notify_all()  # the worker, which may share the condition with wait_idle's waiters
        return future

    def embed(self, text: str) -> np.ndarray:
        return self.submit(text).result()

    def wait_idle(self, timeout: float) -> bool:
        """Block until no query waits and no pass runs (False if ``timeout`` s pass first).

        Why: the worker is a daemon, and one still inside a torch pass while the interpreter
        finalises can abort the process (a SIGINT under load once ended in "terminate called
        without an active exception"), so a stopping service waits for the pass in flight; an
        idle worker sleeps in a lock wait, which finalisation handles."""
        with self._wake:
            return self._wake.wait_for(lambda: not self._pending and not self._in_pass, timeout)

    def _take(self) -> list[tuple[str, Future[np.ndarray]]]:
        while True:
            with self._wake:
                while not self._pending:
                    self._wake.wait()
                count = min(len(self._pending), self.max_batch)
                taken = [self._pending.popleft() for _ in range(count)]
                self._in_pass = True
            # a caller that gave up (a request cancelled by its client) costs no encoding
            live = [(text, f) for text, f in taken if f.set_running_or_notify_cancel()]
            if live:
                return live
            self._passed()

    def _passed(self) -> None:
        with self._wake:
            self._in_pass = False
            self._wake.notify_all()  # wait_idle's waiters

    def _run(self) -> None:
        while True:
            batch = self._take()
            try:
                vectors = self._encode([text for text, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    future.set_exception(exc)
                self._passed()
                continue
            with self._wake:
                self._passes += 1
                self._queries += len(batch)
            for row, (_, future) in enumerate(batch):
                vector = np.array(vectors[row], dtype=np.float32)  # a copy: callers keep it
                vector.setflags(write=False)
                future.set_result(vector)
            self._passed()


async def awaited_vectors(batcher: QueryBatcher | None, texts: Sequence[str]) -> list[np.ndarray | None]:
    """Each text's vector from ``batcher``, awaited on the event loop (the texts share passes);
    all None without a batcher (the model encodes inline, or has no transformer encoder)."""
    if batcher is None:
        return [None] * len(texts)
    futures = [asyncio.wrap_future(batcher.submit(text)) for text in texts]
    return list(await asyncio.gather(*futures))

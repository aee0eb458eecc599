"""The traffic generator: held-out queries at a set rate, with feedback from their judgments.

Each request is one query of the dataset's held-out split (``qrels/test.tsv`` by default,
drawn at random with a fixed seed) sent to ``/v1/rank`` through the entry point; the
answer's ``request_id`` then gets ``/v1/feedback`` with that query's graded judgments, so
the serving pod computes and exports a real NDCG@3 for the ranking it served (the metric the
operator judges canaries on). The generator keeps its own record of every judged request
(time, track, version, NDCG@3, from the responses) for the demo's timeline and plot.

It runs in a thread with an event loop of its own; ``set_rate`` changes the rate and
``set_queries`` the query mix at once.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from rankops.serving.dataset import load_dataset

__all__ = ["Judged", "TrafficGenerator", "held_out_queries"]


@dataclass(frozen=True)
class Judged:
    at: float  # time.time()
    track: str
    version: str
    ndcg: float


def held_out_queries(
    data: Path, split: str = "test", keep: Callable[[str], bool] = lambda query_id: True
) -> list[tuple[str, dict[str, int]]]:
    """(query text, judgments) of the split's queries that have at least one relevant item
    (and that ``keep(query id)``)."""
    queries = load_dataset(data).split_queries(split)
    out = [
        (text, judgments)
        for query_id, text, judgments in queries
        if any(g > 0 for g in judgments.values()) and keep(query_id)
    ]
    if not out:
        raise ValueError(f"no judged queries in split {split!r} of {data}")
    return out


class TrafficGenerator:
    def __init__(
        self,
        url: str,
        queries: Sequence[tuple[str, dict[str, int]]],
        *,
        rate: float = 20.0,
        seed: int = 11,
        concurrency: int = 16,
    ) -> None:
        self.url = url.rstrip("/")
        self.queries = list(queries)
        self.rate = rate
        self.concurrency = concurrency
        self.judged: list[Judged] = []
        self.errors: dict[str, int] = {}
        self.sent = 0
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def set_rate(self, rate: float) -> None:
        self.rate = max(0.0, rate)

    def set_queries(self, queries: Sequence[tuple[str, dict[str, int]]]) -> None:
        if not queries:
            raise ValueError("a query mix needs at least one query")
        self.queries = list(queries)  # one assignment: the sender sees the old list or the new

    def start(self) -> None:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="traffic", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def window(self, seconds: float, now: float | None = None) -> dict[str, tuple[float, int]]:
        """Mean NDCG@3 and count per track over the last ``seconds``."""
        now = time.time() if now is None else now
        sums: dict[str, list[float]] = {}
        for j in reversed(self.judged):
            if j.at < now - seconds:
                break
            sums.setdefault(j.track, []).append(j.ndcg)
        return {t: (sum(v) / len(v), len(v)) for t, v in sums.items()}

    def _error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    async def _run(self) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            next_at = time.monotonic()
            while not self._stop.is_set():
                if self.rate <= 0:
                    await asyncio.sleep(0.1)
                    next_at = time.monotonic()
                    continue
                next_at += 1.0 / self.rate
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0:
                    next_at = time.monotonic()  # fell behind (machine busy): do not burst
                if slots.locked():
                    self._error("skipped (all connections busy)")
                    continue
                await slots.acquire()
                task = asyncio.create_task(self._one(session, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, session: aiohttp.ClientSession, slots: asyncio.Semaphore) -> None:
        text, judgments = self._random.choice(self.queries)
        self.sent += 1
        try:
            async with session.post(f"{self.url}/v1/rank", json={"query": text, "k": 10}) as response:
                if response.status != 200:
                    self._error(f"rank {response.status}")
                    return
                ranked = await response.json()
            feedback = {"request_id": ranked["request_id"], "judgments": judgments}
            async with session.post(f"{self.url}/v1/feedback", json=feedback) as response:
                if response.status != 200:
                    self._error(f"feedback {response.status}")
                    return
                scored = await response.json()
            self.judged.append(
                Judged(
                    time.time(),
                    str(ranked.get("track", "")),
                    str(ranked.get("version", "")),
                    float(scored["ndcg_at_3"]),
                )
            )
        except (aiohttp.ClientError, TimeoutError, OSError, KeyError, ValueError) as exc:
            self._error(type(exc).__name__)
        finally:
            slots.release()

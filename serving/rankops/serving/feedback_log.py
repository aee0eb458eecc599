"""The durable feedback log: every served ranking and every accepted feedback, append-only.

Layout at the log's fsspec URI (``file://`` when the URI has no scheme; ``s3://`` and the
like with their extra installed)::

    URI/served/YYYY-MM-DD/<UTC time>-<writer>-<seq>.jsonl     one line per served request
    URI/feedback/YYYY-MM-DD/<UTC time>-<writer>-<seq>.jsonl   one line per accepted feedback

Each object is one batch, written once and never rewritten (on a local filesystem it is
written to a temporary name, fsynced and renamed, so a reader never sees half an object; an
object store's PUT is atomic by itself). ``writer`` is host, pid and a random tag, so pods
and restarts sharing one URI never collide.

Durability bound (``FeedbackLog``): records are buffered in memory and written as one batch
when ``batch_records`` are pending or the oldest pending record is ``flush_s`` old,
whichever comes first; one write is in flight at a time. A crash (SIGKILL) loses what was
buffered and in flight: at most ``max_unflushed`` acknowledged feedback records, which in
steady state are those acknowledged within the last ``flush_s`` plus one write. The service
keeps the count bound by answering feedback 503 (retry later) rather than acknowledging a
record beyond it. Served records are never a reason to refuse a ranking: past
``max_unflushed`` pending served records, new ones are dropped (counted as dropped), so a
feedback for such a request after a restart is unknown.

Readers (the quality report, ``rankops retrain``): ``read_feedback(uri, since, until)`` and
``read_served(uri, since, until)`` yield typed records in time order per object.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import fsspec
import orjson
from fsspec.implementations.local import LocalFileSystem

log = logging.getLogger(__name__)

SERVED, FEEDBACK = "served", "feedback"
KINDS = (SERVED, FEEDBACK)
SUFFIX = ".jsonl"


# -- records ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShownItem:
    id: str
    rank: int
    score: float
    source: str


@dataclass(frozen=True, slots=True)
class ServedRecord:
    """What one request was shown."""

    request_id: str
    time: float  # seconds since the epoch, UTC
    model: str
    version: str
    track: str
    query: str
    k: int
    domain: str
    shown: tuple[ShownItem, ...]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.shown)


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """One accepted feedback, self-contained: the request as served and the grades given.

    ``kind`` is how the feedback came (judgments, clicks, ratings, thumbs); ``given`` is its
    raw form and ``grades`` the 0..4 grades it maps onto (the service's stated rules).
    """

    request_id: str
    time: float
    served_at: float
    model: str
    version: str
    track: str
    query: str
    domain: str
    shown: tuple[ShownItem, ...]
    kind: str
    given: Any
    grades: dict[str, int]
    ndcg_at_3: float
    top1_relevant: bool

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.id for s in self.shown)


def _shown(raw: Sequence[Mapping[str, Any]]) -> tuple[ShownItem, ...]:
    return tuple(ShownItem(str(s["id"]), int(s["rank"]), float(s["score"]), str(s["source"])) for s in raw)


def served_from_json(obj: Mapping[str, Any]) -> ServedRecord:
    return ServedRecord(
        request_id=str(obj["request_id"]),
        time=float(obj["time"]),
        model=str(obj["model"]),
        version=str(obj["version"]),
        track=str(obj["track"]),
        query=str(obj["query"]),
        k=int(obj["k"]),
        domain=str(obj["domain"]),
        shown=_shown(obj["shown"]),
    )


def feedback_from_json(obj: Mapping[str, Any]) -> FeedbackRecord:
    return FeedbackRecord(
        request_id=str(obj["request_id"]),
        time=float(obj["time"]),
        served_at=float(obj["served_at"]),
        model=str(obj["model"]),
        version=str(obj["version"]),
        track=str(obj["track"]),
        query=str(obj["query"]),
        domain=str(obj["domain"]),
        shown=_shown(obj["shown"]),
        kind=str(obj["kind"]),
        given=obj["given"],
        grades={str(k): int(v) for k, v in obj["grades"].items()},
        ndcg_at_3=float(obj["ndcg_at_3"]),
        top1_relevant=bool(obj["top1_relevant"]),
    )


def shown_json(ids: Sequence[str], scores: Sequence[float], sources: Sequence[str]) -> bytes:
    """The ``shown`` list of a record, rendered once per distinct ranking."""
    return orjson.dumps(
        [
            {"id": i, "rank": rank, "score": s, "source": src}
            for rank, (i, s, src) in enumerate(zip(ids, scores, sources, strict=True), start=1)
        ]
    )


# -- storage ------------------------------------------------------------------------------------


def _fs(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    if not uri:
        raise ValueError("empty feedback log URI")
    fs, path = fsspec.core.url_to_fs(uri)
    return fs, path.rstrip("/") or "/"


def _day(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d")


def _write_object(fs: fsspec.AbstractFileSystem, path: str, data: bytes) -> None:
    if isinstance(fs, LocalFileSystem):
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        tmp = f"{path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)  # atomic: readers only list complete objects
        dfd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    else:
        fs.pipe_file(path, data)


def _objects(uri: str, kind: str, since: float | None) -> list[str]:
    """The kind's objects that can hold records from ``since`` on, oldest first.

    An object sits in the day partition of its write, never earlier than its records' days,
    so partitions before ``since``'s day are skipped (``until`` cannot prune: a batch written
    after midnight holds records of the day before).
    """
    fs, base = _fs(uri)
    root = f"{base}/{kind}"
    if not fs.exists(root):
        return []
    days = sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
    first = _day(since) if since is not None else None
    paths: list[str] = []
    for day in days:
        if first is not None and day < first:
            continue
        names = fs.ls(f"{root}/{day}", detail=False)
        paths += sorted(p for p in names if p.endswith(SUFFIX))
    return paths


def log_exists(uri: str) -> bool:
    """Whether anything was ever written at ``uri``."""
    fs, base = _fs(uri)
    return bool(fs.exists(base))


def _read_lines(uri: str, kind: str, since: float | None, until: float | None) -> Iterator[dict[str, Any]]:
    fs, _ = _fs(uri)
    for path in _objects(uri, kind, since):
        for line in fs.cat_file(path).splitlines():
            if not line.strip():
                continue
            obj = orjson.loads(line)
            t = float(obj["time"])
            if (since is None or t >= since) and (until is None or t <= until):
                yield obj


def _epoch(t: datetime | float | None) -> float | None:
    if t is None or isinstance(t, float | int):
        return t
    return t.timestamp()


def read_feedback(
    uri: str, since: datetime | float | None = None, until: datetime | float | None = None
) -> Iterator[FeedbackRecord]:
    """Every feedback record with ``since <= time <= until`` (times: aware datetimes or epochs)."""
    for obj in _read_lines(uri, FEEDBACK, _epoch(since), _epoch(until)):
        yield feedback_from_json(obj)


def read_served(
    uri: str, since: datetime | float | None = None, until: datetime | float | None = None
) -> Iterator[ServedRecord]:
    """Every served record with ``since <= time <= until``."""
    for obj in _read_lines(uri, SERVED, _epoch(since), _epoch(until)):
        yield served_from_json(obj)


# -- the writer ---------------------------------------------------------------------------------


class FeedbackLogBehind(Exception):
    """The log holds ``max_unflushed`` feedback records not yet written: refuse more for now."""


@dataclass
class LogStats:
    written: dict[str, int]
    dropped_served: int
    write_errors: int
    pending: int
    pending_feedback: int
    last_error: str | None


class FeedbackLog:
    """Batches records in memory and writes them as new objects under ``uri``.

    ``served`` and ``feedback`` are called on the event loop thread; writes run in a worker
    thread, one at a time, from the task that ``start`` creates.
    """

    def __init__(
        self,
        uri: str,
        *,
        flush_s: float = 1.0,
        batch_records: int = 500,
        max_unflushed: int = 2000,
    ) -> None:
        if flush_s <= 0 or batch_records < 1 or max_unflushed < batch_records:
            raise ValueError(
                "feedback log: flush_s must be > 0, batch_records >= 1 and max_unflushed >= batch_records"
            )
        self.uri = uri
        self.fs, self.base = _fs(uri)
        self.flush_s = flush_s
        self.batch_records = batch_records
        self.max_unflushed = max_unflushed
        self.writer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._seq = 0
        self._pending: dict[str, list[bytes]] = {SERVED: [], FEEDBACK: []}
        self._in_flight: dict[str, int] = {SERVED: 0, FEEDBACK: 0}
        self._oldest: float | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._write_lock = asyncio.Lock()
        self.written = {SERVED: 0, FEEDBACK: 0}
        self.dropped_served = 0
        self.write_errors = 0
        self.last_error: str | None = None

    # -- appending (event loop thread) -----------------------------------------------------------

    @property
    def unflushed_feedback(self) -> int:
        return len(self._pending[FEEDBACK]) + self._in_flight[FEEDBACK]

    def check_room(self) -> None:
        """Raise FeedbackLogBehind when one more feedback would pass the loss bound."""
        if self.unflushed_feedback >= self.max_unflushed:
            raise FeedbackLogBehind(
                f"the feedback log at {self.uri} has {self.unflushed_feedback} records not yet written "
                f"(bound {self.max_unflushed}); last write error: {self.last_error or 'none'}"
            )

    def served(self, line: bytes) -> None:
        if len(self._pending[SERVED]) + self._in_flight[SERVED] >= self.max_unflushed:
            self.dropped_served += 1
            return
        self._append(SERVED, line)

    def feedback(self, line: bytes) -> None:
        self.check_room()
        self._append(FEEDBACK, line)

    def _append(self, kind: str, line: bytes) -> None:
        pending = self._pending[kind]
        pending.append(line)
        if self._oldest is None:
            self._oldest = time.monotonic()
        if len(pending) >= self.batch_records:
            self._wake.set()

    # -- writing --------------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="rankops-feedback-log")

    async def close(self) -> None:
        """Stop the writer and write what is pending (a graceful shutdown loses nothing).

        The writer is told to stop rather than cancelled: a cancelled write's thread would
        finish the object while its batch went back to the queue, to be written twice.
        """
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while not self._closing:
            timeout = self.flush_s
            if self._oldest is not None:
                timeout = max(0.0, self._oldest + self.flush_s - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                await self.flush()
            except Exception as exc:  # keep the records; the next turn tries again
                self.write_errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("feedback log write to %s failed: %s", self.uri, self.last_error)
                if not self._closing:
                    await asyncio.sleep(min(self.flush_s, 1.0))

    async def flush(self) -> None:
        """Write everything pending now, one object per kind."""
        async with self._write_lock:
            batches = {kind: lines for kind, lines in self._pending.items() if lines}
            if not batches:
                return
            self._pending = {SERVED: [], FEEDBACK: []}
            self._oldest = None
            now = time.time()
            for kind, lines in batches.items():
                self._in_flight[kind] = len(lines)
            try:
                for kind, lines in list(batches.items()):
                    path = self._object_path(kind, now)
                    await asyncio.to_thread(_write_object, self.fs, path, b"\n".join(lines) + b"\n")
                    self.written[kind] += len(lines)
                    self._in_flight[kind] = 0
                    del batches[kind]
            finally:
                for kind, lines in batches.items():  # not written: back in front of the queue
                    self._pending[kind][:0] = lines
                    self._in_flight[kind] = 0
                    if self._oldest is None:
                        self._oldest = time.monotonic()

    def _object_path(self, kind: str, now: float) -> str:
        self._seq += 1
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        return f"{self.base}/{kind}/{_day(now)}/{stamp}-{self.writer}-{self._seq:08d}{SUFFIX}"

    def stats(self) -> LogStats:
        return LogStats(
            written=dict(self.written),
            dropped_served=self.dropped_served,
            write_errors=self.write_errors,
            pending=sum(len(p) for p in self._pending.values()),
            pending_feedback=self.unflushed_feedback,
            last_error=self.last_error,
        )

"""Bounded in-memory stores for the ranking service: an LRU cache with a time to live.

One class serves both the result cache (normalised query + k -> ranked results) and the
store of shown results that feedback is matched against (request_id -> what was served).
The clock is injected so tests can move time without sleeping.

Not thread-safe by design: the service touches these only from the event loop thread.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass
class CacheStats:
    size: int
    max_entries: int
    ttl_seconds: float
    hits: int
    misses: int
    evictions: int
    expirations: int

    @property
    def hit_rate(self) -> float:
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0


class TTLCache(Generic[K, V]):
    """Least-recently-used map bounded by entry count, whose entries expire after ``ttl``."""

    def __init__(
        self, max_entries: int, ttl_seconds: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._data: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.expirations = 0

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        """The live value for ``key`` (counted as a hit) or None (counted as a miss)."""
        entry = self._data.get(key)
        if entry is not None:
            expires_at, value = entry
            if expires_at > self._clock():
                self._data.move_to_end(key)
                self.hits += 1
                return value
            del self._data[key]
            self.expirations += 1
        self.misses += 1
        return None

    def put(self, key: K, value: V, *, ttl: float | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (default: the cache's time to live)."""
        if self.max_entries == 0:
            return
        self._data[key] = (self._clock() + (self.ttl_seconds if ttl is None else ttl), value)
        self._data.move_to_end(key)
        while len(self._data) > self.max_entries:
            self._data.popitem(last=False)
            self.evictions += 1

    def replace(self, key: K, value: V) -> bool:
        """Give the entry for ``key`` a new value, keeping its place and expiry (False: absent)."""
        entry = self._data.get(key)
        if entry is None:
            return False
        self._data[key] = (entry[0], value)
        return True

    def pop(self, key: K) -> V | None:
        """Remove and return the live value for ``key``; None when absent or expired."""
        entry = self._data.pop(key, None)
        if entry is None:
            return None
        expires_at, value = entry
        if expires_at <= self._clock():
            self.expirations += 1
            return None
        return value

    def clear(self) -> int:
        """Drop every entry; returns how many there were."""
        count = len(self._data)
        self._data.clear()
        return count

    def values(self) -> list[V]:
        """The live values (not counted as lookups)."""
        now = self._clock()
        return [value for expires_at, value in self._data.values() if expires_at > now]

    def drop_where(self, predicate: Callable[[V], bool]) -> int:
        """Drop the live entries whose value satisfies ``predicate``; returns how many."""
        now = self._clock()
        doomed = [k for k, (expires_at, v) in self._data.items() if expires_at > now and predicate(v)]
        for key in doomed:
            del self._data[key]
        return len(doomed)

    def purge_expired(self) -> int:
        """Drop expired entries (oldest-written first); returns how many were dropped."""
        now = self._clock()
        expired = [key for key, (expires_at, _) in self._data.items() if expires_at <= now]
        for key in expired:
            del self._data[key]
        self.expirations += len(expired)
        return len(expired)

    def stats(self) -> CacheStats:
        return CacheStats(
            size=len(self._data),
            max_entries=self.max_entries,
            ttl_seconds=self.ttl_seconds,
            hits=self.hits,
            misses=self.misses,
            evictions=self.evictions,
            expirations=self.expirations,
        )


def normalize_query(query: str) -> str:
    """The cache key form of a query: case-folded, whitespace collapsed."""
    return " ".join(query.casefold().split())

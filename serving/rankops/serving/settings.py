"""Tunables of one ranking service instance (``ServiceSettings``), from code or the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ServiceSettings:
    """Tunables of one service instance; ``from_env`` adds the pod's identity."""

    model_name: str = "rankops"
    version: str | None = None  # None: the artifact manifest's version
    track: str = "stable"
    cache_entries: int = 10_000
    cache_ttl_s: float = 300.0
    shown_entries: int = 100_000
    shown_ttl_s: float = 3600.0
    candidate_factor: int = 3
    candidate_min: int = 30
    region_boost: float = 0.15
    golden_interval_s: float = 60.0
    drift_interval_s: float = 15.0
    drift_window: int = 1000
    drift_sample: int = 200
    drift_min_samples: int = 50
    load_attempts: int = 3
    load_backoff_s: float = 1.0
    max_body_bytes: int = 1 << 20
    # torch intra-op threads. One query's scoring is a handful of small tensor ops: with more
    # than one thread their hand-offs can cost several times the work (measured 8 ms vs 0.9 ms
    # per query on 2 cores). 0 leaves torch as it is.
    torch_threads: int = 1
    # Score a cache miss on the event loop thread (True) or in the threadpool (False). A query
    # costs ~1-2 ms of mostly GIL-holding Python around small tensor ops, so a worker thread buys
    # no parallelism, only GIL hand-offs with the event loop: measured on 2 cores at 16 clients,
    # cache off, ~365 requests/s inline against ~145 in the threadpool.
    score_inline: bool = True
    # The interpreter's GIL switch interval, seconds (sys.setswitchinterval; 0 leaves Python's
    # 5 ms). The query encoder's thread runs its pass without the GIL but must take it
    # back to return, and while the loop runs Python it waits out a whole interval each time:
    # an 8-query int8 pass beside a busy Python thread took ~21 ms at 5 ms against ~5.6 ms at
    # 0.2 ms (~3.5 ms alone). Served (int8, 16 clients, cache off, 2 cores) the gain is smaller,
    # as the pass re-takes the GIL once: ~3% more requests/s, p50 ~1.5 ms lower at
    # 0.5 ms than at 5 ms. Process-wide, so 0 here and 0.0005 under ``rankops serve``.
    gil_switch_interval_s: float = 0.0
    # Move everything alive once the artifact is loaded (torch, the catalog, the modules) into
    # the collector's permanent generation, so full collections do not rescan it: measured
    # 28 ms per full collection before any traffic. Process-wide, so off by default and on
    # under ``rankops serve``.
    gc_freeze: bool = False
    # The durable feedback log (rankops.serving.feedback_log): an fsspec URI, "" for none.
    # A crash loses at most feedback_log_max_unflushed acknowledged feedback records, in steady
    # state those of the last feedback_log_flush_s (plus one write).
    feedback_log: str = ""
    feedback_log_flush_s: float = 1.0
    feedback_log_batch: int = 500
    feedback_log_max_unflushed: int = 2000

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> ServiceSettings:
        """Identity from ``RANKOPS_MODEL``/``_VERSION``/``_TRACK``; any other field from
        ``RANKOPS_<FIELD>`` (e.g. ``RANKOPS_CACHE_ENTRIES=0`` turns the result cache off)."""
        values: dict[str, Any] = {
            "model_name": env.get("RANKOPS_MODEL") or cls.model_name,
            "version": env.get("RANKOPS_VERSION") or None,
            "track": env.get("RANKOPS_TRACK") or cls.track,
        }
        for f in fields(cls):
            raw = env.get(f"RANKOPS_{f.name.upper()}")
            if raw is None or f.name in values:
                continue
            values[f.name] = _parse_setting(f"RANKOPS_{f.name.upper()}", raw, str(f.type))
        return cls(**{**values, **overrides})

    def __post_init__(self) -> None:
        if not 0 <= self.gil_switch_interval_s <= 1:
            raise ValueError(
                f"RANKOPS_GIL_SWITCH_INTERVAL_S must be 0 (Python's default) to 1 seconds, "
                f"not {self.gil_switch_interval_s!r}"
            )


def _parse_setting(name: str, raw: str, kind: str) -> int | float | bool | str:
    if kind == "str":
        return raw
    try:
        if kind == "bool":
            flag = raw.strip().lower()
            if flag not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
                raise ValueError(raw)
            return flag in {"1", "true", "yes", "on"}
        return int(raw) if kind == "int" else float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a valid {kind}") from None

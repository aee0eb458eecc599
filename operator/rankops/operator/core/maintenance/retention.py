"""Which backups to delete: grandfather-father-son retention, pure.

``select_for_deletion(backups, retention, time_zone, protected)`` keeps, per model:

- the newest backup of each of the newest ``daily`` calendar days, ``weekly`` ISO weeks and
  ``monthly`` months that hold a verified backup, days/weeks/months counted in the
  window's time zone (a backup at 23:30 UTC is on the next day in Europe/Berlin);
- the newest verified backup, whatever the counts (all-zero counts keep it too);
- every backup marked ``keep`` (the plan's "critical models: indefinitely");
- the newest verified copy of every ``(model, version)`` in ``protected`` (served now or named
  in a RankingModel's history), or, with no verified copy, every copy of it;
- every backup that is not verified (corrupted or incomplete): prune never deletes what it
  could not read; ``verify-backups`` reports those, a person decides.

Everything else is returned for deletion, oldest first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["Backup", "Retention", "kept_reasons", "select_for_deletion"]


@dataclass(frozen=True)
class Retention:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12

    def __post_init__(self) -> None:
        for name in ("daily", "weekly", "monthly"):
            if getattr(self, name) < 0:
                raise ValueError(f"retention.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class Backup:
    id: str  # unique within the destination, e.g. "ranker/1.2.0"
    model: str
    version: str
    taken_at: datetime  # timezone-aware
    verified: bool
    keep: bool = False


def _newest_per_bucket(
    backups: Iterable[Backup], count: int, bucket: Callable[[Backup], Hashable]
) -> set[str]:
    """Ids of the newest backup in each of the ``count`` newest buckets."""
    if count <= 0:
        return set()
    newest: dict[Hashable, Backup] = {}
    for b in backups:
        key = bucket(b)
        if key not in newest or (b.taken_at, b.id) > (newest[key].taken_at, newest[key].id):
            newest[key] = b
    chosen = sorted(newest.values(), key=lambda b: (b.taken_at, b.id), reverse=True)[:count]
    return {b.id for b in chosen}


def kept_reasons(
    backups: Collection[Backup],
    retention: Retention,
    time_zone: str,
    protected: Collection[tuple[str, str]] = (),
) -> dict[str, list[str]]:
    """For every backup that stays, why (``daily``, ``weekly``, ``monthly``, ``newest``, ``keep``,
    ``protected``, ``unverified``). Backups absent from the result are to be deleted."""
    zone = ZoneInfo(time_zone)
    reasons: dict[str, list[str]] = {}

    def mark(ids: Iterable[str], reason: str) -> None:
        for i in ids:
            reasons.setdefault(i, []).append(reason)

    by_model: dict[str, list[Backup]] = {}
    for b in backups:
        by_model.setdefault(b.model, []).append(b)
    for group in by_model.values():
        verified = [b for b in group if b.verified]

        def local(b: Backup) -> datetime:
            return b.taken_at.astimezone(zone)

        mark(_newest_per_bucket(verified, retention.daily, lambda b: local(b).date()), "daily")
        mark(_newest_per_bucket(verified, retention.weekly, lambda b: local(b).isocalendar()[:2]), "weekly")
        mark(
            _newest_per_bucket(verified, retention.monthly, lambda b: (local(b).year, local(b).month)),
            "monthly",
        )
        mark(_newest_per_bucket(verified, 1, lambda b: None), "newest")
        mark((b.id for b in group if b.keep), "keep")
        mark((b.id for b in group if not b.verified), "unverified")
        for model, version in set(protected):
            copies = [b for b in group if b.model == model and b.version == version]
            good = [b for b in copies if b.verified]
            mark(_newest_per_bucket(good, 1, lambda b: None) if good else (b.id for b in copies), "protected")
    return reasons


def select_for_deletion(
    backups: Collection[Backup],
    retention: Retention,
    time_zone: str,
    protected: Collection[tuple[str, str]] = (),
) -> list[Backup]:
    """The backups retention lets go, oldest first (see the module docstring)."""
    ids = [b.id for b in backups]
    if len(set(ids)) != len(ids):
        raise ValueError("backup ids must be unique")
    kept = kept_reasons(backups, retention, time_zone, protected)
    return sorted((b for b in backups if b.id not in kept), key=lambda b: (b.taken_at, b.id))

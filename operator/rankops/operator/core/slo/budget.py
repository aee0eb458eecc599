"""Error budget over the SLO period, from the spans an objective spent breached. Pure.

An objective's state holds from one evaluation to the next, so a breach seen at ``t1`` and no
longer at ``t2`` spent ``t2 - t1`` of the budget; a breach still open spends up to ``now``.
NoData spends nothing (unknown is not counted against the model; it is reported as NoData and
never as Met). The budget is ``period * (1 - compliance)`` seconds of breach per period.

- ``BreachSpans``: frozen, ``from_status(list)`` / ``to_status()`` (``[{from, to}]``, ``to``
  absent while open), at most ``MAX_SPANS``: spans that left the period are dropped first;
  past the bound the two oldest merge (the gap between them counts as breached, so the
  budget errs towards spent, never towards healthy).
- ``record(spans, now, breached, period_s) -> BreachSpans``.
- ``breached_seconds(spans, now, period_s) -> float`` and
  ``remaining(spans, now, budget) -> float`` in ``[0, 1]`` (1 untouched, 0 spent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..timeutil import format_time, parse_time
from .policy import BudgetPolicy

__all__ = ["MAX_SPANS", "BreachSpans", "breached_seconds", "record", "remaining"]

MAX_SPANS = 16


@dataclass(frozen=True)
class Span:
    start: datetime
    end: datetime | None = None  # None: still breached


@dataclass(frozen=True)
class BreachSpans:
    spans: tuple[Span, ...] = ()

    @property
    def open(self) -> bool:
        return bool(self.spans) and self.spans[-1].end is None

    @classmethod
    def from_status(cls, raw: Sequence[Mapping[str, Any]] | None) -> BreachSpans:
        spans = []
        for item in raw or ():
            try:
                start = parse_time(str(item["from"]))
                end = parse_time(str(item["to"])) if item.get("to") else None
            except (KeyError, ValueError):
                start = None
            if start is None:
                continue  # a hand-edited entry that does not parse is dropped, not fatal
            spans.append(Span(start, end))
        return cls(tuple(spans))

    def to_status(self) -> list[dict[str, str]]:
        out = []
        for s in self.spans:
            item = {"from": format_time(s.start)}
            if s.end is not None:
                item["to"] = format_time(s.end)
            out.append(item)
        return out


def record(spans: BreachSpans, now: datetime, breached: bool, period_s: float) -> BreachSpans:
    """``spans`` after an evaluation at ``now`` that found the objective ``breached`` or not."""
    items = list(spans.spans)
    if breached and not spans.open:
        items.append(Span(now))
    elif not breached and spans.open:
        items[-1] = Span(items[-1].start, now)
    horizon = now - timedelta(seconds=period_s)
    items = [s for s in items if s.end is None or s.end > horizon]
    while len(items) > MAX_SPANS:
        items[0:2] = [Span(items[0].start, items[1].end)]
    return BreachSpans(tuple(items))


def breached_seconds(spans: BreachSpans, now: datetime, period_s: float) -> float:
    horizon = now - timedelta(seconds=period_s)
    total = 0.0
    for s in spans.spans:
        start = max(s.start, horizon)
        end = min(s.end or now, now)
        total += max(0.0, (end - start).total_seconds())
    return total


def remaining(spans: BreachSpans, now: datetime, budget: BudgetPolicy) -> float:
    spent = breached_seconds(spans, now, budget.period_s)
    allowed = budget.allowed_breach_s
    if allowed <= 0:
        return 0.0 if spent > 0 else 1.0
    return max(0.0, min(1.0, 1.0 - spent / allowed))

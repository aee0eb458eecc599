"""The runbook's quality report, computed from feedback log records (pure: records in, dict out).

Definitions (each figure is over the feedback records whose time lies in the period):

* ``total_queries``: judged requests (feedback records); ``avg_quality_score``: their mean
  NDCG@3; ``quality_threshold_compliance``: the share with NDCG@3 >= the threshold (0.70,
  the runbook's target, unless asked otherwise).
* ``domain_performance[domain]`` (the domain the service routed the query to): ``queries``,
  ``avg_ndcg`` and ``top_sources``, the sources of the shown items most often graded
  relevant (>= 2), best first, at most three.
* ``quality_improvements``: measured changes of mean NDCG@3, largest first: the second half
  of the period against the first, overall and per domain, and each model version against
  the one served before it. A comparison needs ``MIN_QUERIES`` judged requests on each side;
  ``impact`` is the signed change (negative: a regression).
* ``series`` (details, and the report's chart): mean NDCG@3 per domain per bucket (a day, or
  a week for periods longer than 31 days).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from statistics import fmean
from typing import Any

from rankops.serving.feedback_log import FeedbackRecord

RELEVANT_GRADE = 2
MIN_QUERIES = 5
TOP_SOURCES = 3


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


def _mean(values: Sequence[float]) -> float | None:
    return round(fmean(values), 6) if values else None


def bucket_of(t: float, weekly: bool) -> str:
    day = datetime.fromtimestamp(t, UTC).date()
    if weekly:
        day -= timedelta(days=day.weekday())  # the Monday of its ISO week
    return day.isoformat()


def top_sources(records: Iterable[FeedbackRecord]) -> list[str]:
    relevant: Counter[str] = Counter()
    for r in records:
        for item in r.shown:
            if r.grades.get(item.id, 0) >= RELEVANT_GRADE:
                relevant[item.source] += 1
    return [source for source, _ in sorted(relevant.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_SOURCES]]


def _change(name: str, before: Sequence[float], after: Sequence[float], what: str) -> dict[str, Any] | None:
    if len(before) < MIN_QUERIES or len(after) < MIN_QUERIES:
        return None
    a, b = fmean(before), fmean(after)
    return {
        "improvement": f"{name}: mean NDCG@3 {a:.3f} -> {b:.3f} ({what})",
        "impact": round(b - a, 6),
        "scope": name,
        "queries_before": len(before),
        "queries_after": len(after),
    }


def improvements(records: Sequence[FeedbackRecord], start: float, end: float) -> list[dict[str, Any]]:
    middle = (start + end) / 2
    found: list[dict[str, Any] | None] = []
    early = [r for r in records if r.time < middle]
    late = [r for r in records if r.time >= middle]
    found.append(
        _change("overall", [r.ndcg_at_3 for r in early], [r.ndcg_at_3 for r in late], "second half vs first")
    )
    for domain in sorted({r.domain for r in records}):
        found.append(
            _change(
                f"domain {domain}",
                [r.ndcg_at_3 for r in early if r.domain == domain],
                [r.ndcg_at_3 for r in late if r.domain == domain],
                "second half vs first",
            )
        )
    first_seen: dict[str, float] = {}
    for r in records:
        first_seen[r.version] = min(first_seen.get(r.version, r.time), r.time)
    versions = sorted(first_seen, key=lambda v: first_seen[v])
    for older, newer in pairwise(versions):
        found.append(
            _change(
                f"version {newer}",
                [r.ndcg_at_3 for r in records if r.version == older],
                [r.ndcg_at_3 for r in records if r.version == newer],
                f"against version {older}",
            )
        )
    kept = [f for f in found if f is not None]
    return sorted(kept, key=lambda f: (-abs(f["impact"]), f["scope"]))


def series(records: Sequence[FeedbackRecord], weekly: bool) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in records:
        groups[(bucket_of(r.time, weekly), r.domain)].append(r.ndcg_at_3)
    return [
        {"bucket": bucket, "domain": domain, "queries": len(values), "avg_ndcg": _mean(values)}
        for (bucket, domain), values in sorted(groups.items())
    ]


def build_report(
    records: Iterable[FeedbackRecord],
    *,
    start: float,
    end: float,
    time_range: str,
    threshold: float,
    include_details: bool,
) -> dict[str, Any]:
    """The report over the records with ``start <= time <= end`` (module docstring)."""
    chosen = sorted((r for r in records if start <= r.time <= end), key=lambda r: r.time)
    ndcgs = [r.ndcg_at_3 for r in chosen]
    by_domain: dict[str, list[FeedbackRecord]] = defaultdict(list)
    for r in chosen:
        by_domain[r.domain].append(r)
    report: dict[str, Any] = {
        "report_summary": {
            "period": {"start": _iso(start), "end": _iso(end), "time_range": time_range},
            "total_queries": len(chosen),
            "avg_quality_score": _mean(ndcgs),
            "quality_threshold": threshold,
            "quality_threshold_compliance": (
                round(sum(v >= threshold for v in ndcgs) / len(ndcgs), 6) if ndcgs else None
            ),
            "model_versions": sorted({r.version for r in chosen}),
        },
        "domain_performance": {
            domain: {
                "queries": len(group),
                "avg_ndcg": _mean([r.ndcg_at_3 for r in group]),
                "top_sources": top_sources(group),
            }
            for domain, group in sorted(by_domain.items())
        },
        "quality_improvements": improvements(chosen, start, end),
    }
    if include_details:
        weekly = end - start > 31 * 86400
        report["details"] = {
            "bucket": "week" if weekly else "day",
            "series": series(chosen, weekly),
            "by_track": {
                track: {"queries": len(vals), "avg_ndcg": _mean(vals)}
                for track, vals in sorted(_group(chosen, lambda r: r.track).items())
            },
            "by_feedback_kind": {
                kind: len(vals) for kind, vals in sorted(_group(chosen, lambda r: r.kind).items())
            },
        }
    return report


def _group(records: Sequence[FeedbackRecord], key: Any) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in records:
        out[key(r)].append(r.ndcg_at_3)
    return out

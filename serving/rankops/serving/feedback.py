"""Feedback rules: how each kind of feedback maps onto grades, and what a log record holds.

Grades are 0..4 (trec_eval's linear gain). The kinds, exactly one per feedback:

* ``judgments`` {item id: grade 0..4}: the grades as given. Ids must be catalogue items;
  judged items that were not shown stay valid and enter the ideal DCG (as trec_eval does).
* ``clicks`` [item id]: grade 1 for a clicked shown item, 0 for a shown item not clicked;
  clicks on items that were not shown are refused.
* ``ratings`` {item id: stars 1..5}: grade = stars - 1 (1 star: not relevant, 5: perfect).
* ``thumbs`` {item id: "up" | "down"}: up = grade 2 (relevant, the relevance threshold),
  down = grade 0.

Ratings and thumbs, like judgments, name catalogue items, shown or not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson

from rankops.serving.feedback_log import (
    FeedbackRecord,
    ServedRecord,
    read_feedback,
    read_served,
    shown_json,
)
from rankops.serving.telemetry import Identity

THUMB_GRADES = {"up": 2, "down": 0}
KINDS = ("judgments", "clicks", "ratings", "thumbs")


class FeedbackRuleError(ValueError):
    """Feedback that names items it may not (the service answers 422 with this message)."""


def star_grade(stars: int) -> int:
    return stars - 1


def _name(ids: Sequence[str], what: str) -> str:
    shown = ", ".join(repr(i) for i in ids[:10])
    more = f" and {len(ids) - 10} more" if len(ids) > 10 else ""
    return f"{len(ids)} {what}: {shown}{more}"


def feedback_grades(
    shown: Sequence[str],
    judgments: Mapping[str, int] | None,
    clicks: Sequence[str] | None,
    *,
    ratings: Mapping[str, int] | None = None,
    thumbs: Mapping[str, str] | None = None,
    in_catalog: Callable[[str], bool] | None = None,
) -> dict[str, int]:
    """The grades a feedback gives (module docstring).

    ``in_catalog`` tells whether an id is a catalogue item; when given, judged, rated or
    thumbed ids that are not are refused. Raises FeedbackRuleError naming the offending ids.
    """
    if clicks is not None:
        shown_set = set(shown)
        strays = sorted(set(clicks) - shown_set)
        if strays:
            raise FeedbackRuleError(_name(strays, "clicked ids were not among the shown results"))
        clicked = set(clicks)
        return {item_id: int(item_id in clicked) for item_id in shown}
    if judgments is not None:
        grades = dict(judgments)
    elif ratings is not None:
        grades = {item_id: star_grade(stars) for item_id, stars in ratings.items()}
    elif thumbs is not None:
        grades = {item_id: THUMB_GRADES[thumb] for item_id, thumb in thumbs.items()}
    else:
        raise FeedbackRuleError("no feedback given")
    if in_catalog is not None:
        unknown = sorted(i for i in grades if not in_catalog(i))
        if unknown:
            raise FeedbackRuleError(_name(unknown, "ids are not catalogue items"))
    return grades


def feedback_kind(judgments: Any, clicks: Any, ratings: Any, thumbs: Any) -> tuple[str, Any]:
    """(kind, raw value) of the one kind given."""
    for kind, value in zip(KINDS, (judgments, clicks, ratings, thumbs), strict=True):
        if value is not None:
            return kind, value
    raise FeedbackRuleError("no feedback given")


def served_line(
    request_id: str, at: float, identity_fields: str, query: str, k: int, domain: str, shown: bytes
) -> bytes:
    """One ``served`` log record (feedback_log.ServedRecord), rendered without a dict."""
    return b"".join(
        (
            f'{{"request_id":"{request_id}","time":{at:.6f},{identity_fields},"k":{k},"query":'.encode(),
            orjson.dumps(query),
            b',"domain":',
            orjson.dumps(domain),
            b',"shown":',
            shown,
            b"}",
        )
    )


def feedback_line(
    *,
    request_id: str,
    at: float,
    served_at: float,
    identity: Mapping[str, str],
    query: str,
    domain: str,
    shown: bytes,
    kind: str,
    given: Any,
    grades: Mapping[str, int],
    ndcg: float,
    top1_relevant: bool,
) -> bytes:
    """One ``feedback`` log record (feedback_log.FeedbackRecord)."""
    head = orjson.dumps(
        {
            "request_id": request_id,
            "time": round(at, 6),
            "served_at": round(served_at, 6),
            **identity,
            "query": query,
            "domain": domain,
            "kind": kind,
            "given": given,
            "grades": dict(grades),
            "ndcg_at_3": round(ndcg, 6),
            "top1_relevant": top1_relevant,
        }
    )
    return head[:-1] + b',"shown":' + shown + b"}"


def recall_from_log(
    uri: str, identity: Identity, since: float
) -> tuple[list[ServedRecord], list[FeedbackRecord]]:
    """This identity's requests served since ``since`` and all its feedback, from the log."""

    def mine(r: ServedRecord | FeedbackRecord) -> bool:
        return (r.model, r.version, r.track) == (identity.model, identity.version, identity.track)

    served = sorted((r for r in read_served(uri, since) if mine(r)), key=lambda r: r.time)
    given = [r for r in read_feedback(uri) if mine(r)]
    return served, given


def shown_of(record: ServedRecord | FeedbackRecord) -> bytes:
    return shown_json(record.ids, [s.score for s in record.shown], [s.source for s in record.shown])

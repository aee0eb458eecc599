"""Request and response bodies of the ranking service (pydantic v2).

Requests are validated strictly (a JSON string where a number is expected is an error, not
a coercion), except that a number JSON Schema calls an integer is one: ``46.0`` is the integer
46 (JSON itself does not tell them apart), ``46.5`` is refused. Every body, ``/v1`` and the
runbook's ``/api/v2`` alike, refuses unknown fields, so a misspelt ``K`` or ``max_result`` is
reported rather than silently ignored.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

MAX_QUERY_CHARS = 512
MAX_K = 100
MAX_GRADE = 4

MAX_STARS = 5


def _integral(value: Any) -> Any:
    """A float with no fractional part is the integer it names (JSON Schema's integer)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Integral = BeforeValidator(_integral)

Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
    Field(description=f"Search text, 1..{MAX_QUERY_CHARS} characters after stripping whitespace."),
]
TopK = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many results to return, 1..{MAX_K}."), Integral]
Grade = Annotated[int, Field(ge=0, le=MAX_GRADE), Integral]
Stars = Annotated[int, Field(ge=1, le=MAX_STARS), Integral]
Share = Annotated[float, Field(ge=0.0, le=1.0)]
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RankRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    query: Query
    k: TopK = 10


class FeedbackRequest(BaseModel):
    """Feedback on one served ranking: exactly one of judgments, clicks, ratings or thumbs.

    Grades (``rankops.serving.feedback``): judgments as given (0..4); a click 1, a shown item
    not clicked 0; stars - 1 for a 1..5 star rating; thumbs up 2, down 0.
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    request_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    judgments: (
        Annotated[
            dict[ItemId, Grade],
            Field(min_length=1, max_length=10_000, description=f"item id -> grade 0..{MAX_GRADE}"),
        ]
        | None
    ) = None
    clicks: (
        Annotated[list[ItemId], Field(max_length=MAX_K, description="ids of the shown items clicked")] | None
    ) = None
    ratings: (
        Annotated[
            dict[ItemId, Stars],
            Field(min_length=1, max_length=10_000, description="item id -> stars 1..5 (grade = stars - 1)"),
        ]
        | None
    ) = None
    thumbs: (
        Annotated[
            dict[ItemId, Literal["up", "down"]],
            Field(min_length=1, max_length=10_000, description="item id -> up (grade 2) or down (grade 0)"),
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> FeedbackRequest:
        given = [v for v in (self.judgments, self.clicks, self.ratings, self.thumbs) if v is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'judgments' (item id -> grade 0..4), 'clicks' (item ids), "
                "'ratings' (item id -> stars 1..5) or 'thumbs' (item id -> up/down)"
            )
        return self


class SearchRequest(BaseModel):
    """The runbook's search body: ``max_results`` (or its older name ``limit``) plays ``k``;
    results whose relevance score is below ``quality_threshold`` are left out."""

    model_config = ConfigDict(strict=True, extra="forbid")

    query: Query
    max_results: TopK | None = None
    limit: Annotated[TopK | None, Field(description="older name of max_results")] = None
    quality_threshold: Annotated[
        Share | None, Field(description="leave out results whose relevance_score is below this")
    ] = None

    @model_validator(mode="after")
    def _one_size(self) -> SearchRequest:
        if self.max_results is not None and self.limit is not None:
            raise ValueError("give 'max_results' or its older name 'limit', not both")
        return self

    @property
    def k(self) -> int:
        return self.max_results or self.limit or 10


DEFAULT_QUALITY_THRESHOLD = 0.7  # the runbook's NDCG@3 target


class CacheInvalidateRequest(BaseModel):
    """Drop cached rankings whose quality score is below ``quality_threshold``; every entry
    with ``force_refresh``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    quality_threshold: Share = DEFAULT_QUALITY_THRESHOLD
    force_refresh: bool = False


TIME_RANGE = re.compile(r"^(?:([1-9][0-9]{0,3})([hdw])|daily|weekly|monthly|quarterly)$")
NAMED_RANGES_H = {"daily": 24, "weekly": 7 * 24, "monthly": 30 * 24, "quarterly": 90 * 24}
UNIT_H = {"h": 1, "d": 24, "w": 7 * 24}


def time_range_hours(value: str) -> int:
    """Hours in a time range: ``24h``, ``7d``, ``12w``, or daily/weekly/monthly/quarterly."""
    if value in NAMED_RANGES_H:
        return NAMED_RANGES_H[value]
    match = TIME_RANGE.match(value)
    if match is None:
        raise ValueError(f"not a time range: {value!r}")
    return int(match.group(1)) * UNIT_H[match.group(2)]


class QualityReportRequest(BaseModel):
    """The runbook's quality report over the feedback log's last ``time_range``."""

    model_config = ConfigDict(strict=True, extra="forbid")

    time_range: Annotated[
        str,
        Field(
            pattern=TIME_RANGE.pattern,
            description="how far back: 24h, 7d, 12w (N hours/days/weeks) or daily/weekly/monthly/quarterly",
        ),
    ] = "7d"
    include_details: bool = False
    format: Literal["json"] = "json"
    quality_threshold: Share = DEFAULT_QUALITY_THRESHOLD


class ErrorBody(BaseModel):
    """Every error answer: a short slug, prose, and sometimes more context."""

    model_config = ConfigDict(extra="allow")

    error: str
    detail: str

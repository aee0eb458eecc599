"""Request and response bodies of the ranking service (pydantic v2).

Requests are validated strictly (a JSON string where a number is expected is an error, not
a coercion), except that a number JSON Schema calls an integer is one: ``46.0`` is the integer
46 (JSON itself does not tell them apart), ``46.5`` is refused. Every body, ``/v1`` and the
runbook's ``/api/v2`` alike, refuses unknown fields, so a misspelt ``K`` or ``max_result`` is
reported rather than silently ignored.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

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


def optional_fields_schema(
    names: tuple[str, ...], *, one_of: bool = False, exclusive: tuple[str, str] | None = None
) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` that documents optional fields as they are validated.

    The fields are optional but never null (``refuse_nulls``), so their schema loses the
    ``null`` branch and the ``null`` default; ``one_of``: exactly one of them is required;
    ``exclusive``: those two are not given together.
    """

    def extra(schema: dict[str, Any]) -> None:
        for name in names:
            prop = schema["properties"][name]
            branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
            if len(branches) == 1:
                prop.update(branches[0])
            elif branches:
                prop["anyOf"] = branches
            prop.pop("default", None)
        if one_of:
            schema["oneOf"] = [{"required": [name]} for name in names]
        if exclusive:
            schema["not"] = {"required": list(exclusive)}

    return extra


def refuse_nulls(data: Any, names: tuple[str, ...]) -> Any:
    """An optional field is given or left out; ``null`` is not one of its values."""
    if isinstance(data, dict):
        nulls = [name for name in names if name in data and data[name] is None]
        if nulls:
            raise ValueError(f"{', '.join(nulls)}: null is not a value (leave the field out)")
    return data


# JSON Schema's (ECMAScript's) \s: what a stripped field loses at either end, so the schema's
# pattern and the validation agree on every string (Python's str.strip() also strips \x1c-\x1f).
ECMA_WHITESPACE = (
    " \t\n\v\f\r\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def stripped(max_chars: int) -> AfterValidator:
    """Strip whitespace at either end; then 1..max_chars characters must remain."""

    def check(value: str) -> str:
        value = value.strip(ECMA_WHITESPACE)
        if not value:
            raise ValueError("must not be empty or only whitespace")
        if len(value) > max_chars:
            raise ValueError(f"must have at most {max_chars} characters after stripping whitespace")
        return value

    return AfterValidator(check)


def stripped_pattern(max_chars: int) -> dict[str, Any]:
    """The schema of ``stripped(max_chars)``: minLength/maxLength cannot bound a stripped length."""
    return {"pattern": rf"^\s*\S(?:[\s\S]{{0,{max_chars - 2}}}\S)?\s*$"}


Query = Annotated[
    str,
    stripped(MAX_QUERY_CHARS),
    Field(
        description=f"Search text, 1..{MAX_QUERY_CHARS} characters after stripping whitespace.",
        json_schema_extra=stripped_pattern(MAX_QUERY_CHARS),
    ),
]
RequestId = Annotated[
    str,
    stripped(64),
    Field(description="The request_id of the served ranking", json_schema_extra=stripped_pattern(64)),
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


FEEDBACK_KINDS = ("judgments", "clicks", "ratings", "thumbs")
SEARCH_OPTIONS = ("max_results", "limit", "quality_threshold")


class FeedbackRequest(BaseModel):
    """Feedback on one served ranking: exactly one of judgments, clicks, ratings or thumbs.

    Grades (``rankops.serving.feedback``): judgments as given (0..4); a click 1, a shown item
    not clicked 0; stars - 1 for a 1..5 star rating; thumbs up 2, down 0.
    """

    model_config = ConfigDict(
        strict=True, extra="forbid", json_schema_extra=optional_fields_schema(FEEDBACK_KINDS, one_of=True)
    )

    request_id: RequestId
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

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        return refuse_nulls(data, FEEDBACK_KINDS)

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

    model_config = ConfigDict(
        strict=True,
        extra="forbid",
        json_schema_extra=optional_fields_schema(SEARCH_OPTIONS, exclusive=("max_results", "limit")),
    )

    query: Query
    max_results: TopK | None = None
    limit: Annotated[TopK | None, Field(description="older name of max_results")] = None
    quality_threshold: Annotated[
        Share | None, Field(description="leave out results whose relevance_score is below this")
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        return refuse_nulls(data, SEARCH_OPTIONS)

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


# -- response bodies (documentation: the routes render them directly) ------------------------------


class RankedResult(BaseModel):
    id: str
    title: str
    source: str
    score: float


class RoutingInfo(BaseModel):
    predicted_domain: str
    domain_confidence: float
    region: str | None
    local_first_applied: bool


class RankResponse(BaseModel):
    request_id: str
    model: str
    version: str
    track: str
    cached: bool
    results: list[RankedResult]
    routing: RoutingInfo


class FeedbackResponse(BaseModel):
    request_id: str
    ndcg_at_3: float

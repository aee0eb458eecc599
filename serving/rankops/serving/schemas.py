"""Request and response bodies of the ranking service (pydantic v2).

Requests are validated strictly (a JSON string where a number is expected is an error, not
a coercion); the ``/v1`` bodies also reject unknown fields so a misspelt ``K`` is reported
rather than silently ignored. The runbook's ``/api/v2`` bodies ignore extra fields: its
scripts send context the service does not use.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_QUERY_CHARS = 512
MAX_K = 100
MAX_GRADE = 4

Query = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUERY_CHARS),
    Field(description=f"Search text, 1..{MAX_QUERY_CHARS} characters after stripping whitespace."),
]
TopK = Annotated[int, Field(ge=1, le=MAX_K, description=f"How many results to return, 1..{MAX_K}.")]
Grade = Annotated[int, Field(ge=0, le=MAX_GRADE)]
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class RankRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    query: Query
    k: TopK = 10


class FeedbackRequest(BaseModel):
    """Feedback on one served ranking: graded judgments or clicks, exactly one of the two."""

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

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> FeedbackRequest:
        if (self.judgments is None) == (self.clicks is None):
            raise ValueError("give exactly one of 'judgments' (item id -> grade 0..4) or 'clicks' (item ids)")
        return self


class SearchRequest(BaseModel):
    """The runbook's search body: ``limit`` plays the part of ``k``."""

    model_config = ConfigDict(strict=True, extra="ignore")

    query: Query
    limit: TopK = 10

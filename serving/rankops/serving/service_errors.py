"""The ranking service's states and its expected failures, each with its HTTP status (the app
maps them onto responses)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "DuplicateFeedback",
    "FeedbackLogUnavailable",
    "InvalidFeedback",
    "NotReady",
    "ServiceError",
    "State",
    "UnknownRequest",
]


class State(StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


class ServiceError(Exception):
    """An expected failure with its HTTP status; ``error`` is a short slug, ``detail`` prose."""

    status_code = 500
    error = "internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NotReady(ServiceError):
    status_code = 503
    error = "model not ready"


class UnknownRequest(ServiceError):
    status_code = 404
    error = "unknown request_id"


class DuplicateFeedback(ServiceError):
    status_code = 409
    error = "feedback already given"


class InvalidFeedback(ServiceError):
    status_code = 422
    error = "invalid feedback"


class FeedbackLogUnavailable(ServiceError):
    status_code = 503
    error = "feedback log behind"


class Overloaded(ServiceError):
    status_code = 503
    error = "query encoder overloaded"

"""Timestamps as the API server writes them (``metav1.Time``: UTC, whole seconds)."""

from __future__ import annotations

import datetime

__all__ = ["utc_now"]


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

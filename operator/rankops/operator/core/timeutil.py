"""Durations and timestamps as the CRDs spell them. Pure: nothing here reads a clock.

- Durations are Go-style sums of ``<int><unit>`` with units ``ms``, ``s``, ``m``, ``h``
  (``30s``, ``1m30s``, ``10m``), the same language the CRD pattern
  ``^([0-9]+(ms|s|m|h))+$`` admits. :func:`parse_duration` returns seconds as ``float``.
- Timestamps in status are RFC 3339 in UTC with second precision (``2026-11-22T19:30:00Z``),
  as Kubernetes writes ``metav1.Time``. :func:`format_time` / :func:`parse_time` convert.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["DURATION_PATTERN", "format_duration", "format_time", "parse_duration", "parse_time"]

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str | int | float) -> float:
    """Seconds in a duration such as ``"1m30s"`` (90.0). Numbers pass through as seconds.

    Raises ``ValueError`` naming the text when it is not a duration.
    """
    if isinstance(text, bool):
        raise ValueError(f"not a duration: {text!r}")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"negative duration: {text!r}")
        return float(text)
    if not isinstance(text, str) or not _DURATION_RE.match(text):
        raise ValueError(f"not a duration (expected e.g. 30s, 1m30s, 10m, 500ms): {text!r}")
    return sum(int(num) * _UNIT_SECONDS[unit] for num, unit in _PART_RE.findall(text))


def format_duration(seconds: float) -> str:
    """The shortest CRD-style spelling of ``seconds`` (``90`` -> ``"1m30s"``, ``0.5`` -> ``"500ms"``)."""
    if seconds < 0:
        raise ValueError(f"negative duration: {seconds!r}")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts: list[str] = []
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    for value, unit in ((hours, "h"), (minutes, "m"), (secs, "s"), (millis, "ms")):
        if value:
            parts.append(f"{value}{unit}")
    return "".join(parts)


def format_time(when: datetime) -> str:
    """RFC 3339, UTC, second precision, ``Z`` suffix. ``when`` must be timezone-aware."""
    if when.tzinfo is None:
        raise ValueError("naive datetime: pass a timezone-aware `now` (e.g. datetime.now(UTC))")
    return when.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


def parse_time(text: str | None) -> datetime | None:
    """Inverse of :func:`format_time`; also accepts offsets and fractions. ``None``/empty -> ``None``."""
    if not text:
        return None
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)

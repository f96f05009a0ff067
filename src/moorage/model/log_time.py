"""``--since`` of ``moorage service logs``: a time as a person types it, to unix seconds.

10m, 1h30m, 45s, 2d, 1.5h    that long before ``now``
2024-05-01T12:00:00Z         an RFC 3339 date-time (no zone: the local one)
2024-05-01                   that day's start, local time
1714564800[.5]               unix seconds
"""

from __future__ import annotations

import re
from datetime import datetime

from moorage.model.names import shown

__all__ = ["SINCE_HELP", "SINCE_PATTERN", "parse_duration", "parse_since"]

SINCE_HELP = "a duration like 10m or 1h30m, a date-time like 2024-05-01T12:00:00Z, or unix seconds"

SINCE_PATTERN = r"^(?:(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+|\d{1,12}(?:\.\d{1,9})?)$"
"""A duration or unix seconds (an RFC 3339 date-time is the other form ``parse_since`` takes)."""

_EPOCH = datetime(1970, 1, 1)
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_SECONDS = re.compile(r"\d{1,12}(?:\.\d{1,9})?")


def parse_duration(text: str) -> float:
    """Seconds in a duration such as ``7d``, ``12h`` or ``1h30m`` (``volume prune --older-than``);
    ``ValueError`` saying what would be understood."""
    value = text.strip()
    if _DURATION.fullmatch(value):
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
    raise ValueError(f"'{shown(value)}' is not a duration: give one like 7d, 12h, 30m or 1h30m")


def parse_since(text: str, now: float) -> float:
    """Unix seconds; ``ValueError`` saying what would be understood."""
    value = text.strip()
    if _DURATION.fullmatch(value):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value))
        return max(0.0, now - seconds)
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = datetime.fromisoformat(value.replace("z", "Z"))
        if when.tzinfo is None:  # the local time of the machine that reads it
            return max(0.0, when.timestamp())
        offset = when.utcoffset()
        seconds = (when.replace(tzinfo=None) - _EPOCH).total_seconds() - (
            offset.total_seconds() if offset else 0
        )
        return max(0.0, seconds)  # (no overflow at year 1 or 9999 with any offset)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"'{shown(value)}' is not a time: give {SINCE_HELP}") from None

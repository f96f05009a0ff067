"""The console's Jinja2 environment: the package's templates, autoescaped, and its filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from starlette.templating import Jinja2Templates

__all__ = ["SECURITY_HEADERS", "ago", "duration", "templates"]

SECURITY_HEADERS = {
    # only the console's own script and style; no frames, no inline script (values are escaped too)
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h"
    return f"{seconds // 86400:.0f} d"


def ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    return duration((datetime.now(UTC) - when).total_seconds()) + " ago"


def _between(start: datetime, end: datetime | None) -> str:
    return duration(((end or datetime.now(UTC)) - start).total_seconds())


templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))  # autoescape on
templates.env.filters["ago"] = ago
templates.env.filters["duration"] = duration
templates.env.globals["between"] = _between

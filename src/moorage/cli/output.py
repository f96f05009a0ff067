"""How the CLI shows things: aligned tables for people, JSON for scripts, errors on stderr.

Rich is imported when something is shown through it, not when a command module is imported (see
``moorage.cli``): ``console()`` and ``err_console()`` make their Console on first use.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "ago",
    "console",
    "err_console",
    "print_error",
    "print_json",
    "print_warning",
    "size_text",
    "table",
]


@functools.cache
def console() -> Console:
    """Standard output, for people: no wrapping, no markup or highlighting of what is shown."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False, soft_wrap=True, markup=False)


@functools.cache
def err_console() -> Console:
    """Standard error, shown the same way."""
    from rich.console import Console

    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


def print_error(message: str) -> None:
    """``Error: message`` on stderr; the message is shown as written (no markup)."""
    from rich.text import Text

    err_console().print(Text("Error: ", style="red") + Text(message))


def print_warning(message: str) -> None:
    """``Warning: message`` on stderr (the command goes on)."""
    from rich.text import Text

    err_console().print(Text("Warning: ", style="yellow") + Text(message))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Columns as ``docker volume ls`` prints them: left-aligned, two spaces apart, a bold header
    on a terminal; long lines are the terminal's to wrap. Plain text (no Rich: a listing is most
    of a short command's work, and Rich's table took longer than the request)."""
    cells = [list(headers), *(["" if cell is None else str(cell) for cell in row] for row in rows)]
    widths = [max(_width(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c + " " * (w - _width(c)) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in cells
    ]
    if sys.stdout.isatty():
        lines[0] = f"\x1b[1m{lines[0]}\x1b[0m"
    sys.stdout.write("\n".join(lines) + "\n")


def _width(text: str) -> int:
    """Terminal columns: two for East Asian wide and full-width characters, none for combining marks."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def ago(timestamp: str | None) -> str:
    """'3m ago' for an ISO timestamp from the API."""
    if not timestamp:
        return "-"
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return timestamp
    if then.tzinfo is None:
        then = then.replace(tzinfo=UTC)
    seconds = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def size_text(count: float) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``, ``1.0 GiB``: a size as the CLI shows it."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"

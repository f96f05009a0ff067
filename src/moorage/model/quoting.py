"""How a message quotes a value it was given: ``shown``, the one safe display of outside text.

A value that is refused is quoted back in the message that says why, and messages reach the
master's log, the API's answers and the CLI user's terminal. ``shown`` cuts the value to 80
characters and writes each control character as its escape (``\\n``, ``\\x1b``, ``\\u2028``),
so a quoted value can neither flood a terminal, nor move its cursor or set its title, nor forge a
log line. Every message that quotes a value it did not make itself quotes it through ``shown``.
"""

from __future__ import annotations

import re

__all__ = ["CONTROL_CHARACTERS", "CONTROL_RE", "shown"]

CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
"""NUL and the other control characters (C0, DEL, C1), and the Unicode line and paragraph
separators, as the inside of a regular expression's character class."""
CONTROL_RE = re.compile(f"[{CONTROL_CHARACTERS}]")
_SHOWN_MAX = 80


def shown(value: str) -> str:
    """``value`` fit to quote in a message: at most 80 characters, control characters escaped."""
    cut = value if len(value) <= _SHOWN_MAX else value[:_SHOWN_MAX] + "…"
    return CONTROL_RE.sub(lambda m: repr(m.group())[1:-1], cut)

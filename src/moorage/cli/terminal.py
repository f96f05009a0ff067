"""The user's terminal in raw mode (``moorage service exec -t``): every key goes to the command."""

from __future__ import annotations

import termios
import tty
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["raw_terminal"]


@contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Raw mode on ``fd`` (no echo, no line editing, Ctrl-C a byte), restored however it ends."""
    saved = termios.tcgetattr(fd)
    tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)

"""The error every testbed step raises when it cannot do what it was asked."""

from __future__ import annotations

from moorage.errors import MoorageError

__all__ = ["TestbedError"]


class TestbedError(MoorageError):
    """A testbed step failed; the message says what, where to look (a log file) and how to fix it."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

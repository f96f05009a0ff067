"""Waiting for a condition, with a deadline and a clear error: the testbed never sleeps blindly."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from moorage.testbed.errors import TestbedError

__all__ = ["wait_for"]

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    hint: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns a truthy value, and return that value.

    The poll interval starts at 20 ms and grows to 250 ms. After ``timeout`` seconds a
    :class:`TestbedError` says what was awaited and, from ``hint``, where to look.
    ``condition`` may itself raise :class:`TestbedError` to give up early (a process died).
    """
    deadline = time.monotonic() + timeout
    interval = 0.02
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"Timed out after {timeout:g}s waiting for {what}."
            if hint is not None:
                message += " " + hint()
            raise TestbedError(message)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, 0.25)

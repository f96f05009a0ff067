"""Ids for rows made in bulk: 32 hex digits, ordered by creation time like UUIDv7.

A random id lands anywhere in the primary-key index, so every insert touches a different page;
ids that grow with time append to the end of it. 48 bits of milliseconds then 80 random bits:
unique without coordination, and as hard to guess as any id here needs to be.
"""

from __future__ import annotations

import os
import time

__all__ = ["ordered_ids"]


def ordered_ids(count: int) -> list[str]:
    """``count`` ids for rows made together: one clock reading and one read of the system's
    random source for all of them (one per id was a system call per row)."""
    now = f"{time.time_ns() // 1_000_000:012x}"
    randomness = os.urandom(10 * count).hex()
    return [f"{now}{randomness[i : i + 20]}" for i in range(0, 20 * count, 20)]

"""Ids for rows made in bulk: 32 hex digits, ordered by creation time like UUIDv7.

A random id lands anywhere in the primary-key index, so every insert touches a different page;
ids that grow with time append to the end of it. 48 bits of milliseconds then 80 random bits:
unique without coordination, and as hard to guess as any id here needs to be.
"""

from __future__ import annotations

import secrets
import time

__all__ = ["ordered_id"]


def ordered_id() -> str:
    return f"{time.time_ns() // 1_000_000:012x}{secrets.token_hex(10)}"

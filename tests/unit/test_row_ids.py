"""Ids of rows made in bulk: 32 hex digits, unique, and later batches sort after earlier ones."""

from __future__ import annotations

import re
import time

from moorage.store.row_ids import ordered_ids


def test_ids_are_32_hex_digits_and_unique_within_a_batch() -> None:
    ids = ordered_ids(5_000)
    assert len(ids) == len(set(ids)) == 5_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert re.fullmatch(r"[0-9a-f]{32}", ordered_ids(1)[0])


def test_a_later_batch_sorts_after_an_earlier_one() -> None:
    first = ordered_ids(100)
    made_at = time.time_ns() // 1_000_000
    while time.time_ns() // 1_000_000 <= made_at:  # the ids' clock part is in milliseconds
        pass
    second = ordered_ids(100)
    assert max(first) < min(second)


def test_an_empty_batch_is_empty() -> None:
    assert ordered_ids(0) == []

"""Seeded orders drawn one item at a time, so a decision can be replayed and costs what it uses."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Generic, TypeVar

__all__ = ["LazyShuffle", "seeded_rng"]

T = TypeVar("T")


def seeded_rng(*parts: object) -> random.Random:
    """A generator seeded from ``parts``; the same parts give the same numbers on every run."""
    # A str seed is hashed with SHA-512 by random.Random: independent of PYTHONHASHSEED.
    return random.Random("\x1f".join(str(p) for p in parts))


class LazyShuffle(Generic[T]):
    """A seeded Fisher-Yates shuffle of ``items``, drawn on demand: the first k cost O(k).

    ``draw()`` gives ``(rank, item)``: rank is the item's position in the permutation.
    """

    __slots__ = ("_items", "_next", "_random", "_swaps")

    def __init__(self, items: Sequence[T], rng: random.Random) -> None:
        self._items = items
        self._random = rng.random
        self._swaps: dict[int, int] = {}  # position -> index of the item now there, when moved
        self._next = 0

    def draw(self) -> tuple[int, T] | None:
        i, n = self._next, len(self._items)
        if i >= n:
            return None
        j = i + int(self._random() * (n - i))
        swaps = self._swaps
        at_j = swaps.get(j, j)
        if j != i:
            swaps[j] = swaps.get(i, i)
        swaps.pop(i, None)
        self._next = i + 1
        return i, self._items[at_j]

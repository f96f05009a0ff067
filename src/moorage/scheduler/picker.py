"""The item with the lowest (count, seeded rank) that is still available, found lazily.

Both levels of the ``ha`` spread use it (zones, then nodes in a zone) and ``daemon`` uses it
for nodes. Items nobody has drawn yet sit in a :class:`LazyShuffle`; drawn ones sit in a heap.
An undrawn item can never beat a drawn item of count 0 (its rank is higher), so most picks draw
one item or none: O(log n) per pick instead of a scan of every node.

It relies on three facts of a scheduling pass: counts only grow; an item that became
unavailable (a node without the port free, a zone without a feasible node) stays so; and
neither changes unless the pass places an instance, which moves ``stamp`` on (so an answer is
remembered until then).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from moorage.scheduler.shuffle import LazyShuffle

__all__ = ["MinCountPicker"]

K = TypeVar("K")


class MinCountPicker(Generic[K]):
    __slots__ = ("_answer", "_answered_at", "_available", "_count", "_heap", "_order", "_stamp")

    def __init__(
        self,
        items: Sequence[K],
        rng: random.Random,
        count: Callable[[K], int],
        available: Callable[[K], bool],
        stamp: Callable[[], int],
    ) -> None:
        self._order = LazyShuffle(items, rng)
        self._count = count
        self._available = available
        self._stamp = stamp
        self._answered_at = -1
        self._answer: K | None = None
        # (count when pushed, rank, item); ranks are unique, so items are never compared
        self._heap: list[tuple[int, int, K]] = []

    def peek(self) -> K | None:
        """The available item with the lowest (count, rank), or None when none is left."""
        now = self._stamp()
        if now != self._answered_at:
            self._answer = self._find()
            self._answered_at = now
        return self._answer

    def _find(self) -> K | None:
        heap = self._heap
        while True:
            self._settle_top()
            if heap and heap[0][0] == 0:
                return heap[0][2]
            drawn = self._order.draw()
            if drawn is None:
                return heap[0][2] if heap else None
            rank, item = drawn
            if self._available(item):
                heapq.heappush(heap, (self._count(item), rank, item))

    def _settle_top(self) -> None:
        """Refresh stale counts and drop unavailable items until the top is current."""
        heap = self._heap
        while heap:
            pushed, rank, item = heap[0]
            now = self._count(item)
            if now != pushed:
                heapq.heapreplace(heap, (now, rank, item))
            elif not self._available(item):
                heapq.heappop(heap)
            else:
                return

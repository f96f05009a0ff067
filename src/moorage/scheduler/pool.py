"""A pool: the nodes that pass the static filters for one kind of request, bucketed by zone."""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass

from moorage.scheduler.types import NodeView

__all__ = ["EMPTY_POOL", "Pool", "make_pool"]


@dataclass(frozen=True, slots=True, eq=False)
class Pool:
    """Candidate nodes in id order, and the same nodes by zone (zones sorted, no zone last).

    ``key`` names what the pool was built for; passes cache their pickers by it.
    """

    key: Hashable
    nodes: tuple[NodeView, ...]
    zones: tuple[tuple[str | None, tuple[NodeView, ...]], ...]
    ids: frozenset[str]


def make_pool(key: Hashable, nodes: Iterable[NodeView]) -> Pool:
    ordered = tuple(sorted(nodes, key=lambda n: n.id))
    buckets: dict[str | None, list[NodeView]] = {}
    for node in ordered:
        buckets.setdefault(node.zone, []).append(node)
    zones = tuple(
        (zone, tuple(members))
        for zone, members in sorted(buckets.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    )
    return Pool(key=key, nodes=ordered, zones=zones, ids=frozenset(n.id for n in ordered))


EMPTY_POOL = make_pool("empty", ())

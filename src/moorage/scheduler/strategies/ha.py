"""``ha``: spread the instances of a service across zones, then across the nodes of a zone.

Rank of a feasible node, lowest first: (instances of the service in its zone, instances on the
node, the node's place in a seeded order). Counts include instances this pass already placed,
and instances that stay where they run (the pipeline places those first). Nodes without a
``zone`` label form one zone of their own.
"""

from __future__ import annotations

from collections.abc import Hashable

from moorage.scheduler.context import PassContext
from moorage.scheduler.picker import MinCountPicker
from moorage.scheduler.pool import Pool
from moorage.scheduler.stage import Feasible, Filter, Selector, dynamic_key
from moorage.scheduler.types import InstanceRequest, NodeView

__all__ = ["HighAvailability"]


class HighAvailability:
    name = "ha"
    filters: tuple[Filter, ...] = ()

    def begin(self, ctx: PassContext, feasible: Feasible) -> Selector:
        return _SpreadSelector(ctx, feasible)


class _SpreadSelector:
    def __init__(self, ctx: PassContext, feasible: Feasible) -> None:
        self._ctx = ctx
        self._feasible = feasible
        self._spreads: dict[Hashable, _Spread] = {}

    def pick(self, request: InstanceRequest, pool: Pool) -> NodeView | None:
        if len(pool.nodes) == 1:
            only = pool.nodes[0]
            return only if self._feasible(only, request) else None
        key = (pool.key, dynamic_key(request))
        spread = self._spreads.get(key)
        if spread is None:
            spread = self._spreads[key] = _Spread(self._ctx, self._feasible, request, pool)
        return spread.pick()


class _Spread:
    """Zone with the fewest instances that still has a feasible node, then its emptiest node."""

    def __init__(self, ctx: PassContext, feasible: Feasible, request: InstanceRequest, pool: Pool) -> None:
        def node_ok(node: NodeView) -> bool:
            return feasible(node, request)

        def node_count(node: NodeView) -> int:
            return ctx.node_count(node.id)

        def stamp() -> int:
            return ctx.placed

        # Zones go by their position in the pool: a zone can be None (no zone label).
        names = [zone for zone, _ in pool.zones]
        nodes = self._nodes = [
            MinCountPicker(members, ctx.rng("zone", zone), node_count, node_ok, stamp)
            for zone, members in pool.zones
        ]
        # The closures see the pickers, never ``self``: nothing here refers back to the spread.
        self._zones = MinCountPicker(
            range(len(names)),
            ctx.rng("zones"),
            lambda z: ctx.zone_count(names[z]),
            lambda z: nodes[z].peek() is not None,
            stamp,
        )

    def pick(self) -> NodeView | None:
        zone = self._zones.peek()
        return None if zone is None else self._nodes[zone].peek()

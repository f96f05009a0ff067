"""``random``: any feasible node, drawn from a seeded order of its own for every instance."""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.pool import Pool
from moorage.scheduler.shuffle import LazyShuffle
from moorage.scheduler.stage import Feasible, Filter, Selector
from moorage.scheduler.types import InstanceRequest, NodeView

__all__ = ["Random"]


class Random:
    name = "random"
    filters: tuple[Filter, ...] = ()

    def begin(self, ctx: PassContext, feasible: Feasible) -> Selector:
        return _RandomSelector(ctx, feasible)


class _RandomSelector:
    def __init__(self, ctx: PassContext, feasible: Feasible) -> None:
        self._ctx = ctx
        self._feasible = feasible

    def pick(self, request: InstanceRequest, pool: Pool) -> NodeView | None:
        order = LazyShuffle(pool.nodes, self._ctx.rng("instance", request.instance))
        while (drawn := order.draw()) is not None:
            if self._feasible(drawn[1], request):
                return drawn[1]
        return None

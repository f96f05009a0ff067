"""``daemon``: one instance on every node that can take one.

How many instances a daemon service runs is :func:`moorage.scheduler.daemon_plan`'s answer; here
each instance takes a node without one, in a seeded order (instances that stay where they run
are placed first by the pipeline).
"""

from __future__ import annotations

from collections.abc import Hashable

from moorage.scheduler.context import PassContext
from moorage.scheduler.filters.one_per_node import OnePerNode
from moorage.scheduler.picker import MinCountPicker
from moorage.scheduler.pool import Pool
from moorage.scheduler.stage import Feasible, Filter, Selector, dynamic_key
from moorage.scheduler.types import InstanceRequest, NodeView

__all__ = ["Daemon"]


class Daemon:
    name = "daemon"
    filters: tuple[Filter, ...] = (OnePerNode(),)

    def begin(self, ctx: PassContext, feasible: Feasible) -> Selector:
        return _EveryNodeSelector(ctx, feasible)


class _EveryNodeSelector:
    def __init__(self, ctx: PassContext, feasible: Feasible) -> None:
        self._ctx = ctx
        self._feasible = feasible
        self._pickers: dict[Hashable, MinCountPicker[NodeView]] = {}

    def pick(self, request: InstanceRequest, pool: Pool) -> NodeView | None:
        key = (pool.key, dynamic_key(request))
        picker = self._pickers.get(key)
        if picker is None:
            ctx, feasible = self._ctx, self._feasible
            picker = self._pickers[key] = MinCountPicker(
                pool.nodes,
                ctx.rng("daemon"),
                lambda node: ctx.node_count(node.id),
                lambda node: feasible(node, request),  # includes OnePerNode: only nodes without one
                lambda: ctx.placed,
            )
        return picker.peek()

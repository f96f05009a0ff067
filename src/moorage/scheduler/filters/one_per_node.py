"""At most one instance of the service per node (the ``daemon`` strategy adds this filter)."""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import ALREADY_HAS_INSTANCE
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["OnePerNode"]

_TAKEN = Verdict(ALREADY_HAS_INSTANCE)


class OnePerNode:
    name = "one_per_node"
    dynamic = True

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        return _TAKEN if ctx.node_count(node.id) else None

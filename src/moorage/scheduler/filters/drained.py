"""Drained nodes (``moorage node drain``) take no instance, not even one already there: draining
moves every instance off that can go elsewhere. Fatal: only ``moorage node undrain`` changes it.

The one home of "a drained node takes nothing": the deployer, drain and move plan through the
scheduler, so none of them has its own check.
"""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import NODE_DRAINED
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Drained"]

_DRAINED = Verdict(NODE_DRAINED)


class Drained:
    name = "drained"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        return _DRAINED if node.drained else None

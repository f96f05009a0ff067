"""Only nodes whose agent is connected. Not fatal: the node may come back."""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import NODE_OFFLINE
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Online"]

_OFFLINE = Verdict(NODE_OFFLINE, fatal=False)


class Online:
    name = "online"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        return None if node.online else _OFFLINE

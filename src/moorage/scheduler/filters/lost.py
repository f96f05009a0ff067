"""Nodes declared lost (``moorage node declare-lost``) take no instance until their agent says
hello again (which ends the loss). A node declared lost while its agent was still connected
(``--force``) is online to the hub, but its data is stale and its containers were removed: new
work must not land there. Not fatal: its agent's next hello makes it a node like any other.

The one home of "a lost node takes nothing"; an instance whose data only that node holds is
explained by ``volume_pin.pinned_node_down`` (its volume's ``on_node_lost`` policy).
"""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import NODE_LOST
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Lost"]

_LOST = Verdict(NODE_LOST, fatal=False)


class Lost:
    name = "lost"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        return _LOST if node.lost_at is not None else None

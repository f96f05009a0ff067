"""A published host port must be free on the node: not used there, not taken earlier in the pass.

Ports are compared by number whatever the protocol, as a node reports them.
"""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import PORT_IN_USE
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Ports"]


class Ports:
    name = "ports"
    dynamic = True

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        for mapping in request.ports:
            if ctx.port_in_use(node, mapping.host_port):
                return Verdict(PORT_IN_USE.format(port=mapping.host_port))
        return None

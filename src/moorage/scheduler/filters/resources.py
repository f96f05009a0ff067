"""The memory and CPUs an instance asks for must still be free on the node."""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import TOO_LITTLE_CPU, TOO_LITTLE_MEMORY
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Resources"]

_NO_MEMORY = Verdict(TOO_LITTLE_MEMORY)
_NO_CPU = Verdict(TOO_LITTLE_CPU)


class Resources:
    name = "resources"
    dynamic = True

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        if request.memory is not None and not ctx.has_memory(node, request.memory):
            return _NO_MEMORY
        if request.cpus is not None and not ctx.has_cpus(node, request.cpus):
            return _NO_CPU
        return None

"""The two kinds of stage: filters say which nodes can take an instance, strategies pick one.

Filter      check(ctx, node, request) -> None (feasible) or a Verdict (why not).
            ``dynamic`` filters depend on what the pass already placed (ports, resources);
            static ones only on the node and the request, so their results are cached.
Strategy    ranks the feasible nodes and picks the best; may add filters of its own.
            ``begin(ctx, feasible)`` gives the Selector one pass uses.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol

from moorage.scheduler.context import PassContext
from moorage.scheduler.pool import Pool
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["Feasible", "Filter", "Selector", "Strategy", "dynamic_key"]


class Filter(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dynamic(self) -> bool: ...

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None: ...


Feasible = Callable[[NodeView, InstanceRequest], bool]
"""Whether a node of the pool passes the dynamic filters for a request, right now."""


def dynamic_key(request: InstanceRequest) -> Hashable:
    """All that dynamic filters read of a request. Selectors keep one picker per pool and key."""
    return (request.ports, request.memory, request.cpus, request.avoid)


class Selector(Protocol):
    def pick(self, request: InstanceRequest, pool: Pool) -> NodeView | None:
        """The best node of ``pool`` that is feasible right now, or None."""
        ...


class Strategy(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def filters(self) -> tuple[Filter, ...]:
        """Filters this strategy adds after the common ones."""
        ...

    def begin(self, ctx: PassContext, feasible: Feasible) -> Selector: ...

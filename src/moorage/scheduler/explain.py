"""Why an instance could not be placed: one line, counted across nodes, and pending or failed.

pinned node offline or removed  -> pending, the volume instance sentence(s)
no nodes at all                 -> pending, 0/0 nodes available
otherwise                       -> each node's first failing filter, counted:
                                   pending if any node may change by itself (offline),
                                   failed if every node needs the user to act
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from moorage.scheduler.filters.volume_pin import pinned_node_down
from moorage.scheduler.index import NodeIndex
from moorage.scheduler.reasons import NO_NODE_HAS_DRIVERS, NO_NODES, driver_list, summarize
from moorage.scheduler.types import InstanceRequest, NodeView, PlacementStatus, Verdict

__all__ = ["SchedulerBug", "explain"]


class SchedulerBug(RuntimeError):
    """The selector found no node although a node passes every filter: a bug, not a user error."""


def explain(
    index: NodeIndex, verdict: Callable[[NodeView], Verdict | None], request: InstanceRequest
) -> tuple[str, PlacementStatus]:
    down = pinned_node_down(index, request)
    if down is not None:
        return down, "pending"
    if not index.nodes:
        return NO_NODES, "pending"
    counts: Counter[str] = Counter()
    may_change = False
    for node in index.nodes:
        found = verdict(node)
        if found is None:
            raise SchedulerBug(
                f"instance {request.instance} of {request.service_id} fits node {node.id} but was not placed"
            )
        counts[found.reason] += 1
        may_change = may_change or not found.fatal
    line = summarize(len(index), counts)
    needed = request.drivers
    if needed and not any(needed.issubset(node.drivers) for node in index.nodes):
        line = NO_NODE_HAS_DRIVERS.format(drivers=driver_list(needed), summary=line)
    return line, "pending" if may_change else "failed"

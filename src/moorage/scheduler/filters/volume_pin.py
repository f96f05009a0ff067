"""Sticky volume instances: an instance whose instance-scope volume instance already lives on a
node goes back to that node, and nowhere else, unless the driver is ``global`` on the candidate
node (shared storage lifts the pin).

Every named mount is checked: a stack- or grid-scope mount never cancels an instance-scope pin.
When the pinned node is offline or removed, the instance is pending, not failed, with a reason
that names the volume instance, its node, and what the user can do.
"""

from __future__ import annotations

from moorage.model.volume import volume_follows_instance
from moorage.scheduler.context import PassContext
from moorage.scheduler.index import NodeIndex
from moorage.scheduler.reasons import NOT_HOLDING_VOLUME, PINNED_NODE_OFFLINE, PINNED_NODE_REMOVED
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict, VolumeNeed

__all__ = ["VolumePin", "holds", "pinned_node_down"]


def holds(node: NodeView, need: VolumeNeed) -> bool:
    """Whether ``node`` can serve ``need``: it holds the volume instance, or the storage is shared."""
    if not need.is_pin or node.id == need.pinned_node:
        return True
    return volume_follows_instance(need.scope, node.drivers.get(need.driver))


class VolumePin:
    name = "volume_pin"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        for need in request.volumes:
            if not holds(node, need):
                return Verdict(NOT_HOLDING_VOLUME.format(volume_instance=need.docker_name))
        return None


def pinned_node_down(index: NodeIndex, request: InstanceRequest) -> str | None:
    """For each pin whose node is offline or gone: what is wrong and what to do; None if none is."""
    sentences: list[str] = []
    for need in request.pins:
        node = index.get(need.pinned_node)
        if node is None:
            sentences.append(PINNED_NODE_REMOVED.format(volume_instance=need.docker_name, volume=need.volume))
        elif not node.online:
            sentences.append(
                PINNED_NODE_OFFLINE.format(
                    volume_instance=need.docker_name, node=node.name, volume=need.volume
                )
            )
    return "; ".join(sentences) or None

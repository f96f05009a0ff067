"""Sticky volume instances: an instance whose instance-scope volume instance already exists stays
inside that volume instance's domain (``model.volume.VolumeDomain``): the node holding it, and,
as the volume's topology allows, the other nodes of its zone, its region or the grid where the
driver is ``global`` (shared storage the data re-attaches from).

Every named mount is checked: a stack- or grid-scope mount never cancels an instance-scope pin.
A node outside the zone or region is reported as such; one inside it without the driver is left
to ``VolumeDrivers`` (missing volume driver); any other node that cannot see the data (node
topology, or the driver is not global there) as not holding the volume instance. When the volume instance can be used on its own node only
and that node is offline or removed, the instance is pending, not failed, with a reason that
names the volume instance, its node, and what the user can do.
"""

from __future__ import annotations

from moorage.model.node_loss import last_seen_phrase
from moorage.model.volume import Reach
from moorage.scheduler.context import PassContext
from moorage.scheduler.index import NodeIndex
from moorage.scheduler.reasons import (
    NOT_HOLDING_VOLUME,
    OUTSIDE_VOLUME_DOMAIN,
    PINNED_NODE_REMOVED,
    pinned_node_reason,
)
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict, VolumeNeed

__all__ = ["VolumePin", "holds", "pinned_node_down"]


def holds(node: NodeView, need: VolumeNeed) -> bool:
    """Whether ``node`` can serve ``need``: it holds the volume instance, or is inside its domain."""
    domain = need.domain
    return domain is None or domain.admits(node)


class VolumePin:
    name = "volume_pin"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        for need in request.pins:
            domain = need.domain
            assert domain is not None
            reach = domain.reach(node.id, node.labels, node.drivers)
            if reach is Reach.HOME or reach is Reach.SHARED:
                continue
            if reach is Reach.OUTSIDE and (bound := domain.label) is not None:
                label, value = bound
                return Verdict(
                    OUTSIDE_VOLUME_DOMAIN.format(label=label, value=value, volume_instance=need.docker_name)
                )
            if domain.spread is not None and need.driver not in node.drivers:
                continue  # inside the domain but without the driver: VolumeDrivers says so
            return Verdict(NOT_HOLDING_VOLUME.format(volume_instance=need.docker_name))
        return None


def pinned_node_down(index: NodeIndex, request: InstanceRequest) -> str | None:
    """For each pin that only its own node can serve, when that node is offline or gone: what is
    wrong and what to do (by the volume's ``on_node_lost``, and whether the node was declared
    lost); None if there is none. (A pin that may re-attach elsewhere is explained node by node
    instead: its other nodes count.)"""
    sentences: list[str] = []
    for need in request.pins:
        assert need.domain is not None
        if need.domain.spread is not None:
            continue
        node = index.get(need.pinned_node)
        if node is None:
            sentences.append(PINNED_NODE_REMOVED.format(volume_instance=need.docker_name, volume=need.volume))
        elif not node.online or node.lost_at is not None:  # lost while connected: --force
            sentences.append(
                pinned_node_reason(
                    need.docker_name,
                    need.volume,
                    node.name,
                    last_seen_phrase(node.last_seen),
                    lost=node.lost_at is not None,
                    policy=need.on_node_lost,
                )
            )
    return "; ".join(sentences) or None

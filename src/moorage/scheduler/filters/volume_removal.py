"""A node still removing a Docker volume of the same name cannot take the instance yet.

When a volume is removed its Docker volumes are deleted by their agents; until an agent has
done so (it waits while anything still mounts the volume), the name is taken on that node by
the old data. A volume created again under the same name must start empty: an instance that
would use that name goes to another node, or waits (pending) until the removal is done. Never
mount the volume being removed.

A node that holds a retired copy of the name (``VolumeNeed.taken_on``: a move left it there) cannot
take an instance whose data is to be moved there (``node drain``): the copy would be written into
that old Docker volume. Fatal: the user purges the copy.

Dynamic, though it depends only on the node and the request: what it reads differs between the
instances of one service (each has its own Docker volume names), and pools are cached per kind
of request, not per instance.
"""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import HOLDS_VOLUME_COPY, STILL_REMOVING_VOLUME
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["VolumeRemoval"]


class VolumeRemoval:
    name = "volume_removal"
    dynamic = True

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        if node.id not in request.avoid:
            return None
        for need in request.volumes:
            if node.id in need.removing_on:
                return Verdict(STILL_REMOVING_VOLUME.format(volume_instance=need.docker_name), fatal=False)
            if node.id in need.taken_on:
                return Verdict(HOLDS_VOLUME_COPY.format(volume_instance=need.docker_name))
        return None

"""What the master records of what happened in a grid: the kinds of events.

The values are the strings stored (``events.kind``) and sent on the wire. A kind names its
subject and what happened to it; ``moorage events --json`` prints them as they are.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["EventKind"]


class EventKind(StrEnum):
    # deployments and their outcome (the deployer)
    DEPLOYMENT_STARTED = "deployment.started"
    DEPLOYMENT_SUCCEEDED = "deployment.succeeded"
    DEPLOYMENT_FAILED = "deployment.failed"
    DEPLOYMENT_SUPERSEDED = "deployment.superseded"
    # an instance's state as its agent reported it (transitions only), with the engine's reason
    INSTANCE_STATE = "instance.state"
    # volume instances: recorded for a node, reported by its agent, moved, retired, removed
    VOLUME_INSTANCE_CREATED = "volume_instance.created"
    VOLUME_INSTANCE_STATE = "volume_instance.state"
    VOLUME_INSTANCE_MOVED = "volume_instance.moved"
    VOLUME_INSTANCE_RETIRED = "volume_instance.retired"
    VOLUME_INSTANCE_REMOVING = "volume_instance.removing"
    VOLUME_INSTANCE_REMOVED = "volume_instance.removed"
    # a node declared lost (node declare-lost): each of its volume instances by its volume's policy
    VOLUME_INSTANCE_WAITING = "volume_instance.waiting"  # wait, or restore with no backup / no node
    VOLUME_INSTANCE_RESTORING = "volume_instance.restoring"
    VOLUME_INSTANCE_RESTORED = "volume_instance.restored"
    VOLUME_INSTANCE_RESTORE_FAILED = "volume_instance.restore_failed"
    VOLUME_INSTANCE_RECREATED = "volume_instance.recreated"  # its instance starts EMPTY elsewhere
    VOLUME_INSTANCE_STALE = "volume_instance.stale"  # the superseded copy kept on the lost node
    # nodes (the hub; drained: node drain)
    NODE_JOINED = "node.joined"
    NODE_ONLINE = "node.online"
    NODE_OFFLINE = "node.offline"
    NODE_DRAINED = "node.drained"
    NODE_UNDRAINED = "node.undrained"
    NODE_LOST = "node.lost"  # moorage node declare-lost
    NODE_RETURNED = "node.returned"  # a node declared lost is back: it is fenced
    # what users did, with the name of the token they used
    VOLUME_CREATED = "volume.created"
    VOLUME_UPDATED = "volume.updated"
    VOLUME_REMOVED = "volume.removed"
    STACK_INSTALLED = "stack.installed"
    STACK_UPGRADED = "stack.upgraded"
    STACK_REMOVED = "stack.removed"
    SERVICE_CREATED = "service.created"
    SERVICE_SCALED = "service.scaled"
    SERVICE_REMOVED = "service.removed"
    TOKEN_CREATED = "token.created"
    TOKEN_ROTATED = "token.rotated"
    TOKEN_REVOKED = "token.revoked"

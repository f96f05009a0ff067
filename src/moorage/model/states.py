"""The states of an instance and of a volume instance, as the store keeps them and the API shows them.

The values are the strings stored in the database and sent on the wire; a ``StrEnum`` member
equals its string, so rows and JSON read back compare equal to these members.

Instance (``instances.state``):

    pending ──▶ scheduled ──▶ created | running | restarting | exited | error   (what its agent saw)
    failed: could not be placed, and will not be until the user changes something

``pending``: not placed yet, but may be without the user acting (its node is away, or no node
fits now). ``scheduled``: placed; its container is in its node's desired state. ``unknown`` is
never stored: views show it for what an agent saw while that agent's node is offline.

Volume instance (``volume_instances.state``):

    pending ──▶ present | missing | error   (what its node's agent saw)
    unused: no instance would use it (a scale-down, its service or stack removed), since
            ``unused_since``; its Docker volume stays on its node, and a placement that needs it
            again makes it ``pending`` (``store/volume_use.py`` decides both ways)
    removing: its volume was removed (or ``volume prune`` took it); the agent deletes the Docker
            volume, then the row goes
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["InstanceState", "VolumeInstanceState"]


class InstanceState(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    CREATED = "created"
    RUNNING = "running"
    RESTARTING = "restarting"
    EXITED = "exited"
    ERROR = "error"
    FAILED = "failed"
    UNKNOWN = "unknown"  # shown only, see store.services.shown_state


class VolumeInstanceState(StrEnum):
    PENDING = "pending"
    PRESENT = "present"
    MISSING = "missing"
    ERROR = "error"
    UNUSED = "unused"
    REMOVING = "removing"

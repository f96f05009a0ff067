"""Every sentence the scheduler says, in one place.

Per-node reasons are worded to add up across nodes (Kubernetes style):
``0/3 nodes available: 2 node(s) didn't match affinity label==zone=c, 1 node(s) offline``.
Tests pin these words; change them here and nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from moorage.model.node_loss import (
    PINNED_NODE_LOST,
    PINNED_NODE_OFFLINE,
    WAYS_OUT_DECLARE,
    WAYS_OUT_DECLARE_AGAIN,
    WAYS_OUT_NOT_RESTORED,
    WAYS_OUT_WAIT,
    WHAT_RECREATE,
    WHAT_RESTORE,
    pinned_node_reason,
)

__all__ = [
    "AFFINITY_MISMATCH",
    "ALREADY_HAS_INSTANCE",
    "HOLDS_VOLUME_COPY",
    "MISSING_DRIVERS",
    "NODE_DRAINED",
    "NODE_LOST",
    "NODE_OFFLINE",
    "NOT_HOLDING_VOLUME",
    "NO_NODES",
    "NO_NODE_HAS_DRIVERS",
    "OUTSIDE_VOLUME_DOMAIN",
    "PINNED_NODE_LOST",
    "PINNED_NODE_OFFLINE",
    "PINNED_NODE_REMOVED",
    "PORT_IN_USE",
    "STILL_REMOVING_VOLUME",
    "SUMMARY",
    "TOO_LITTLE_CPU",
    "TOO_LITTLE_MEMORY",
    "WAYS_OUT_DECLARE",
    "WAYS_OUT_DECLARE_AGAIN",
    "WAYS_OUT_NOT_RESTORED",
    "WAYS_OUT_WAIT",
    "WHAT_RECREATE",
    "WHAT_RESTORE",
    "driver_list",
    "pinned_node_reason",
    "summarize",
]

# --- per node: counted across nodes -------------------------------------------------------------
NODE_OFFLINE = "node(s) offline"
NODE_DRAINED = "node(s) drained"
NODE_LOST = "node(s) declared lost"
AFFINITY_MISMATCH = "node(s) didn't match affinity {rule}"
PORT_IN_USE = "node(s) had port {port} in use"
TOO_LITTLE_MEMORY = "node(s) had too little memory"
TOO_LITTLE_CPU = "node(s) had too little CPU"
MISSING_DRIVERS = "node(s) missing volume driver(s) {drivers}"
NOT_HOLDING_VOLUME = "node(s) don't hold volume instance {volume_instance}"
OUTSIDE_VOLUME_DOMAIN = "node(s) outside {label} {value} of volume instance {volume_instance}"
ALREADY_HAS_INSTANCE = "node(s) already run an instance of this daemon service"
STILL_REMOVING_VOLUME = "node(s) still removing the Docker volume {volume_instance} of a removed volume"
HOLDS_VOLUME_COPY = (
    "node(s) already hold a Docker volume {volume_instance} (a retired copy: "
    "'moorage volume purge' removes it)"
)

# --- per instance: one line -----------------------------------------------------------------------
# (an instance waiting for the offline or lost node holding its data: model.node_loss, which the
# store also says when a node goes offline)
SUMMARY = "0/{total} nodes available: {counts}"
NO_NODES = "0/0 nodes available: the grid has no nodes"
NO_NODE_HAS_DRIVERS = "Did not find any nodes with required volume drivers: {drivers}; {summary}"
PINNED_NODE_REMOVED = (
    "volume instance {volume_instance} lives on a removed node: "
    "remove the service and run 'moorage volume rm {volume}' to start over with an empty volume"
)


def driver_list(drivers: Iterable[str]) -> str:
    """``[d1, d2]``: sorted, the way every driver list is shown."""
    return "[" + ", ".join(sorted(drivers)) + "]"


def summarize(total: int, counts: Mapping[str, int]) -> str:
    """``0/3 nodes available: 2 node(s) ..., 1 node(s) ...``, by count (highest first), then text."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return SUMMARY.format(total=total, counts=", ".join(f"{n} {reason}" for reason, n in ordered))

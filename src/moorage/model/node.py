"""Nodes: one Docker Engine plus one agent, as the master knows them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from moorage.model.quoting import shown

__all__ = [
    "LABEL_RE",
    "NODE_ID_RE",
    "NODE_NAME_RE",
    "DriverInfo",
    "Node",
    "NodeInfo",
    "NodeStatus",
    "label_error",
    "node_id_error",
    "parse_label",
]

NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
NODE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")  # agents make a uuid4 hex
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*=[^\s]*$")


class NodeStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """A volume driver a node's engine has; scope is the plugin's capability (local/global) if known."""

    name: str
    version: str | None = None
    scope: str | None = None


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """What the agent reports about its engine."""

    engine_version: str | None = None
    cpus: int = 0
    memory: int = 0
    drivers: tuple[DriverInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    grid: str
    name: str
    status: NodeStatus
    status_since: datetime
    last_seen_at: datetime
    labels: dict[str, str] = field(default_factory=dict)
    info: NodeInfo = field(default_factory=NodeInfo)
    created_at: datetime | None = None
    master: str | None = None  # the name of the master its agent is connected to (while online)
    drained: bool = False  # takes no instance until undrained
    lost_at: datetime | None = None  # ``node declare-lost``: when (None again once it is back)

    @property
    def zone(self) -> str | None:
        return self.labels.get("zone")


def node_id_error(node_id: str) -> str | None:
    if NODE_ID_RE.fullmatch(node_id):
        return None
    return (
        "The node id is not valid: use 8 to 64 letters, digits, '_' or '-' "
        "(delete the agent's node_id file and it makes a new one)"
    )


def label_error(label: str) -> str | None:
    if LABEL_RE.fullmatch(label):
        return None
    return f"Label '{shown(label)}' is not valid: write it as key=value, e.g. zone=a"


def parse_label(label: str) -> tuple[str, str]:
    """``k=v`` → (k, v). The caller has checked ``label_error``."""
    key, _, value = label.partition("=")
    return key, value

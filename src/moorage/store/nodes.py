"""Node repository: registration by agents, status transitions, labels.

Each node is its own principal: at its first hello the master issues it a credential (the
secret goes to the agent once; only its SHA-256 hash is kept here). A hello for a node id the
store knows must come with that node's credential; the grid's join token only admits new node
ids, and, once, a node that joined before credentials existed (it gets one then).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moorage.errors import Conflict, Forbidden, InvalidInput, NotFound
from moorage.model.events import EventKind
from moorage.model.node import DriverInfo, Node, NodeInfo, NodeStatus, label_error, parse_label
from moorage.model.states import VolumeInstanceState
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import get_grid_row
from moorage.store.node_loss import node_returned, wait_for_node
from moorage.store.removal import delete_found
from moorage.store.tables import GridRow, InstanceRow, MasterRow, NodeRow, VolumeInstanceRow
from moorage.store.tokens import hash_token, new_token

__all__ = [
    "Residents",
    "add_labels",
    "get_node",
    "list_nodes",
    "mark_all_offline",
    "node_by_credential",
    "register_node",
    "remove_labels",
    "remove_node",
    "residents",
    "set_drained",
    "set_info",
    "set_status",
    "to_node",
]


def _info(raw: dict[str, Any]) -> NodeInfo:
    drivers = tuple(
        DriverInfo(name=d["name"], version=d.get("version"), scope=d.get("scope"))
        for d in raw.get("drivers", [])
    )
    return NodeInfo(
        engine_version=raw.get("engine_version"),
        cpus=int(raw.get("cpus", 0)),
        memory=int(raw.get("memory", 0)),
        drivers=drivers,
    )


def to_node(row: NodeRow, grid: str, master: str | None = None) -> Node:
    return Node(
        id=row.id,
        grid=grid,
        name=row.name,
        status=NodeStatus(row.status),
        status_since=row.status_since,
        last_seen_at=row.last_seen_at,
        labels=dict(row.labels),
        info=_info(row.info),
        created_at=row.created_at,
        master=master if row.status == NodeStatus.ONLINE.value else None,
        drained=bool(row.drained),
        lost_at=row.lost_at,
    )


def list_nodes(session: Session, grid: str) -> list[Node]:
    grid_row = get_grid_row(session, grid)
    rows = session.execute(
        select(NodeRow, MasterRow.name)
        .outerjoin(MasterRow, MasterRow.id == NodeRow.master_id)
        .where(NodeRow.grid_id == grid_row.id)
        .order_by(NodeRow.name)
    ).tuples()
    return [to_node(row, grid, master) for row, master in rows]


def _node_row(session: Session, grid_row: GridRow, name: str) -> NodeRow:
    row = session.scalar(select(NodeRow).where(NodeRow.grid_id == grid_row.id, NodeRow.name == name))
    if row is None:
        raise NotFound(_no_node(grid_row, name))
    return row


def _no_node(grid_row: GridRow, name: str) -> str:
    return f"Node {name} not found in grid {grid_row.name}"


def get_node(session: Session, grid: str, name: str) -> Node:
    grid_row = get_grid_row(session, grid)
    row = _node_row(session, grid_row, name)
    master = session.scalar(select(MasterRow.name).where(MasterRow.id == row.master_id))
    return to_node(row, grid, master)


def node_by_credential(session: Session, credential: str) -> NodeRow | None:
    return session.scalar(select(NodeRow).where(NodeRow.credential_hash == hash_token(credential)))


def register_node(
    session: Session,
    grid_row: GridRow,
    node_id: str,
    name: str,
    labels: Iterable[str],
    info: dict[str, Any],
    *,
    credential_of: str | None = None,
    master_id: str | None = None,
) -> tuple[Node, str | None]:
    """An agent said hello: create the node, or bring a known one online with fresh info.

    ``credential_of`` is the node id whose credential admitted the connection (None: the grid's
    join token did). Returns the node and, when one was issued now, its new credential.
    ``master_id``: the master the agent is connected to now.

    Labels given by the agent seed a new node; afterwards the master's labels (set with
    ``moorage node label``) are the truth and an agent restart does not undo them.
    """
    now = datetime.now(UTC)
    if credential_of is not None and credential_of != node_id:
        raise Forbidden(
            f"This agent's credential belongs to node id {credential_of}, not {node_id}; "
            "each node reconnects with its own credential (node_credential in its --data-dir)"
        )
    row = session.get(NodeRow, node_id)
    if row is not None and row.grid_id != grid_row.id:
        raise Conflict(f"Node id {node_id} belongs to another grid; give this agent its own --data-dir")
    if row is not None and credential_of is None and row.credential_hash is not None:
        raise Forbidden(
            f"Node {row.name} ({node_id}) already has its own credential and only that credential "
            "reconnects it, not the join token. If this agent lost its --data-dir, remove the node "
            f"('moorage node rm {row.name}') and start the agent with a new --data-dir"
        )
    clash = session.scalar(
        select(NodeRow).where(NodeRow.grid_id == grid_row.id, NodeRow.name == name, NodeRow.id != node_id)
    )
    if clash is not None:
        raise Conflict(
            f"Node name {name} is already used by another node in grid {grid_row.name}; "
            f"start the agent with another --name, or remove the old node with 'moorage node rm {name}'"
        )
    credential: str | None = None
    if row is None or row.credential_hash is None:  # a new node, or one from before 0006 (once)
        credential = new_token()
    if row is None:
        seeded: dict[str, str] = {}
        for label in labels:
            if label_error(label) is None:
                key, value = parse_label(label)
                seeded[key] = value
        row = NodeRow(
            id=node_id,
            grid_id=grid_row.id,
            name=name,
            status=NodeStatus.ONLINE.value,
            status_since=now,
            last_seen_at=now,
            labels=seeded,
            info=info,
            credential_hash=hash_token(credential) if credential else None,
            created_at=now,
            updated_at=now,
            master_id=master_id,
        )
        session.add(row)
        record_events(
            session,
            NewEvent(
                grid_row.id, EventKind.NODE_JOINED, f"node {name} joined grid {grid_row.name}",
                node_id=node_id, node=name,
            ),
        )  # fmt: skip
    else:
        if credential is not None:
            row.credential_hash = hash_token(credential)
        row.name = name
        if row.status != NodeStatus.ONLINE.value:
            row.status = NodeStatus.ONLINE.value
            row.status_since = now
            record_events(
                session,
                NewEvent(
                    grid_row.id, EventKind.NODE_ONLINE, f"node {name} online: its agent connected",
                    node_id=node_id, node=name,
                ),
            )  # fmt: skip
        node_returned(session, row, now)  # declared lost, and back: fenced (store/node_loss.py)
        row.last_seen_at = now
        row.info = info
        row.updated_at = now
        row.master_id = master_id
    try:
        session.flush()
    except IntegrityError as err:  # another hello for this node id or name won the race
        raise Conflict(
            f"Another agent registered node {name} ({node_id}) at the same moment; "
            "only one agent may run per node name (this one retries)"
        ) from err
    return to_node(row, grid_row.name), credential


def set_info(session: Session, node_id: str, info: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    session.execute(update(NodeRow).where(NodeRow.id == node_id).values(info=info, updated_at=now))


def set_status(
    session: Session,
    node_id: str,
    status: NodeStatus,
    last_seen_at: datetime,
    why: str | None = None,
    master_id: str | None = None,
) -> bool:
    """Move a node to ``status`` (an event says so, and ``why``); returns False if it already
    was there (or is gone). With a ``master_id``, only while the node's agent is that master's
    (it may have moved to another master since, which made it online there)."""
    row = session.get(NodeRow, node_id)
    if row is None or (master_id is not None and row.master_id != master_id):
        return False
    row.last_seen_at = max(row.last_seen_at, last_seen_at)
    if row.status == status.value:
        return False
    row.status = status.value
    row.status_since = datetime.now(UTC)
    row.updated_at = row.status_since
    kind = EventKind.NODE_ONLINE if status is NodeStatus.ONLINE else EventKind.NODE_OFFLINE
    message = f"node {row.name} {status.value}" + (f": {why}" if why else "")
    record_events(session, NewEvent(row.grid_id, kind, message, node_id=node_id, node=row.name))
    if status is NodeStatus.OFFLINE:
        wait_for_node(session, row)  # what only it holds the data of waits for it, and says why
    return True


def set_drained(session: Session, grid: str, name: str, drained: bool) -> tuple[Node, bool]:
    """Drain (``True``) or undrain a node; the same again changes nothing. The node, and whether
    it changed. A change touches the row's ``updated_at``, so planning reads the grid's nodes
    afresh."""
    grid_row = get_grid_row(session, grid)
    row = _node_row(session, grid_row, name)
    changed = row.drained != drained
    if changed:
        row.drained = drained
        row.updated_at = datetime.now(UTC)
    return to_node(row, grid), changed


@dataclass(frozen=True, slots=True)
class Residents:
    """A node and the instances meant to run on it (what a drain moves off)."""

    node: Node
    instances: frozenset[tuple[int, int]]  # (service row id, instance number)

    @property
    def service_ids(self) -> list[int]:
        """The services of those instances (row ids, ascending: the order a drain deploys them)."""
        return sorted({service_id for service_id, _ in self.instances})


def residents(session: Session, grid: str, name: str) -> Residents:
    """The node ``name`` and the instances meant to run on it."""
    node = get_node(session, grid, name)
    rows = session.execute(
        select(InstanceRow.service_id, InstanceRow.number).where(InstanceRow.node_id == node.id)
    ).tuples()
    return Residents(node, frozenset((service_id, number) for service_id, number in rows))


def mark_all_offline(session: Session) -> None:
    """At master start no agent is connected yet: every node is offline until it says hello."""
    now = datetime.now(UTC)
    session.execute(
        update(NodeRow)
        .where(NodeRow.status == NodeStatus.ONLINE.value)
        .values(status=NodeStatus.OFFLINE.value, status_since=now, updated_at=now)
    )


def _checked_labels(labels: Iterable[str]) -> list[tuple[str, str]]:
    labels = list(labels)
    if not labels:
        raise InvalidInput.one("labels", "Give at least one label, e.g. zone=a")
    problems = {f"labels[{i}]": p for i, label in enumerate(labels) if (p := label_error(label))}
    if problems:
        raise InvalidInput(problems)
    return [parse_label(label) for label in labels]


def add_labels(session: Session, grid: str, name: str, labels: Iterable[str]) -> Node:
    pairs = _checked_labels(labels)
    grid_row = get_grid_row(session, grid)
    row = _node_row(session, grid_row, name)
    merged = dict(row.labels)
    merged.update(pairs)
    row.labels = merged
    row.updated_at = datetime.now(UTC)
    return to_node(row, grid)


def remove_labels(session: Session, grid: str, name: str, keys: Iterable[str]) -> Node:
    keys = [k.partition("=")[0] for k in keys]
    grid_row = get_grid_row(session, grid)
    row = _node_row(session, grid_row, name)
    missing = [k for k in keys if k not in row.labels]
    if missing:
        raise NotFound(
            f"Node {name} has no label {', '.join(missing)}; 'moorage node show {name}' lists them"
        )
    row.labels = {k: v for k, v in row.labels.items() if k not in keys}
    row.updated_at = datetime.now(UTC)
    return to_node(row, grid)


def remove_node(session: Session, grid: str, name: str, connected: bool) -> None:
    grid_row = get_grid_row(session, grid)
    row = _node_row(session, grid_row, name)
    if connected:
        raise Conflict(
            f"Node {name} is online; stop its agent first, then run 'moorage node rm {name}' again"
        )
    held = list(
        session.scalars(
            select(VolumeInstanceRow.name)
            .where(
                VolumeInstanceRow.node_id == row.id, VolumeInstanceRow.state != VolumeInstanceState.REMOVING
            )
            .order_by(VolumeInstanceRow.name)
        )
    )
    if held:
        shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
        raise Conflict(
            f"Node {name} holds volume instances ({shown}); removing it would lose track of their data. "
            "Bring the node back, or remove the services using them and 'moorage volume rm' the volumes first"
        )
    delete_found(
        session,
        NodeRow,
        _no_node(grid_row, name),
        NodeRow.id == row.id,
        NodeRow.grid_id == grid_row.id,
        NodeRow.name == name,
    )

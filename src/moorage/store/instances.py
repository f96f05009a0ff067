"""Instance and volume instance rows: what agents report, and what a node should have."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from moorage.model.events import EventKind
from moorage.model.stack import NULL_STACK, full_service_id
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.protocol import DockerVolumeWire, InstanceStatus, VolumeStatus
from moorage.store.events import NewEvent, record_events
from moorage.store.placements import chunks
from moorage.store.tables import GridRow, InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow

__all__ = [
    "NodeVolumeInstance",
    "apply_docker_volumes",
    "apply_instance_status",
    "apply_volume_status",
    "new_id",
    "node_containers",
    "node_volume_instances",
]


# What an agent's report of a volume instance makes its state (a removed one it no longer has is missing).
_VOLUME_STATES = {
    "present": VolumeInstanceState.PRESENT,
    "missing": VolumeInstanceState.MISSING,
    "error": VolumeInstanceState.ERROR,
    "removed": VolumeInstanceState.MISSING,
}


@dataclass(frozen=True, slots=True)
class NodeVolumeInstance:
    """A volume instance on a node, with the name of the volume it was made from (None once
    that volume was removed)."""

    id: str
    name: str  # the Docker volume name
    driver: str
    driver_opts: dict[str, Any]
    state: str
    volume: str | None


def node_containers(session: Session, node_id: str) -> list[dict[str, Any]]:
    """The desired containers (stored ``ContainerSpec`` documents) placed on a node, by service and number."""
    found = session.scalars(
        select(InstanceRow.container)
        .where(InstanceRow.node_id == node_id, InstanceRow.container.is_not(None))
        .order_by(InstanceRow.service_id, InstanceRow.number)
    )
    return [container for container in found if container is not None]


def node_volume_instances(session: Session, node_id: str) -> list[NodeVolumeInstance]:
    """The volume instances on a node, by Docker volume name."""
    rows = session.execute(
        select(
            VolumeInstanceRow.id,
            VolumeInstanceRow.name,
            VolumeInstanceRow.driver,
            VolumeInstanceRow.driver_opts,
            VolumeInstanceRow.state,
            VolumeRow.name,
        )
        .outerjoin(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        .where(VolumeInstanceRow.node_id == node_id)
        .order_by(VolumeInstanceRow.name)
    ).tuples()
    return [NodeVolumeInstance(*row) for row in rows]


def new_id() -> str:
    return uuid.uuid4().hex


def _parse_started(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def apply_instance_status(session: Session, node_id: str, statuses: Iterable[InstanceStatus]) -> int:
    """Record what the node's agent saw; reports about instances placed elsewhere are ignored."""
    statuses = list(statuses)
    if not statuses:
        return 0
    node = session.get(NodeRow, node_id)
    if node is None:
        return 0
    grid = session.get(GridRow, node.grid_id)
    assert grid is not None
    rows = session.execute(
        select(InstanceRow, ServiceRow.stack, ServiceRow.name)
        .join(ServiceRow, ServiceRow.id == InstanceRow.service_id)
        .where(InstanceRow.node_id == node_id)
    ).tuples()
    by_key = {
        (full_service_id(grid.name, stack, name), row.number): (row, stack, name) for row, stack, name in rows
    }
    now = datetime.now(UTC)
    changed = 0
    events: list[NewEvent] = []
    for status in statuses:
        found = by_key.get((status.service_id, status.instance))
        if found is None:
            continue
        row, stack, service = found
        state = InstanceState.ERROR if status.state == "missing" else InstanceState(status.state)
        started = _parse_started(status.started_at)
        reason = status.error
        if (row.state, row.observed_hash, row.exit_code, row.reason, row.started_at) != (
            state,
            status.config_hash,
            status.exit_code,
            reason,
            started,
        ):
            if row.state != state:
                events.append(
                    _instance_event(grid.id, node, stack, service, row.number, row.state, state, status)
                )
            row.state = state
            row.observed_hash = status.config_hash
            row.exit_code = status.exit_code
            row.reason = reason
            row.started_at = started
            row.updated_at = now
            changed += 1
    record_events(
        session, *events
    )  # transitions only, one INSERT; a report that changes nothing writes nothing
    return changed


def _instance_event(
    grid_id: int,
    node: NodeRow,
    stack: str,
    service: str,
    number: int,
    before: str,
    after: InstanceState,
    status: InstanceStatus,
) -> NewEvent:
    label = f"{service}-{number}" if stack == NULL_STACK else f"{stack}/{service}-{number}"
    why = status.error or (f"exit code {status.exit_code}" if after == InstanceState.EXITED else None)
    return NewEvent(
        grid_id,
        EventKind.INSTANCE_STATE,
        f"{label} on {node.name}: {before} -> {after}" + (f" ({why})" if why else ""),
        stack=stack,
        service=service,
        instance=number,
        node_id=node.id,
        node=node.name,
    )


def apply_volume_status(session: Session, node_id: str, statuses: Iterable[VolumeStatus]) -> int:
    """Record what the node's agent saw of its volume instances; reports about volume instances
    on other nodes, or unknown, are ignored. A ``removing`` one the engine no longer has goes."""
    statuses = list(statuses)
    if not statuses:
        return 0
    ids = sorted({status.volume_instance_id for status in statuses})
    rows, volumes, nodes = _reported_rows(session, ids)
    changed = 0
    now = datetime.now(UTC)
    gone: list[str] = []
    events: list[tuple[VolumeInstanceRow, str, str | None]] = []  # (row, what happened, volume)
    for status in statuses:
        row = rows.get(status.volume_instance_id)
        if row is None or row.node_id != node_id:
            continue
        if row.state == VolumeInstanceState.REMOVING:
            if status.state in ("removed", "missing"):
                gone.append(row.id)
                del rows[row.id]  # a later report of it in the same message finds it gone
                events.append((row, "removed", None))
                changed += 1
            elif status.error != row.error:
                row.error = status.error
                row.updated_at = now
                changed += 1
            continue
        if row.state == VolumeInstanceState.UNUSED:
            continue  # a report made before it was released (unused ones are not in the desired state)
        state = _VOLUME_STATES[status.state]
        if (row.state, row.error) != (state, status.error):
            if row.state != state:
                events.append((row, f"{row.state} -> {state}", volumes.get(row.id)))
            row.state = state
            row.error = status.error
            row.updated_at = now
            changed += 1
    for part in chunks(gone):
        session.execute(delete(VolumeInstanceRow).where(VolumeInstanceRow.id.in_(part)))
    if events:
        _volume_events(session, node_id, nodes.get(node_id, node_id), events)
    return changed


def apply_docker_volumes(session: Session, node_id: str, reported: Iterable[DockerVolumeWire] | None) -> int:
    """Record the driver and options the node's engine has for each of its volume instances'
    Docker volumes (by name on the node; one it does not list has none recorded); None: the
    agent does not report them, and nothing changes. Only rows that differ are written.

    An ``unused`` volume instance is in no desired state, so only this listing tells whether its
    Docker volume still exists: one deleted outside Moorage becomes ``missing`` (still unused,
    ``unused_since`` kept), and ``unused`` again if the engine lists it once more."""
    if reported is None:
        return 0
    engine = {volume.name: volume for volume in reported}
    rows = session.execute(
        select(
            VolumeInstanceRow.id,
            VolumeInstanceRow.name,
            VolumeInstanceRow.reported_driver,
            VolumeInstanceRow.reported_driver_opts,
            VolumeInstanceRow.state,
            VolumeInstanceRow.unused_since,
        ).where(VolumeInstanceRow.node_id == node_id)
    ).tuples()
    changes: list[dict[str, Any]] = []
    vanished: list[str] = []
    back: list[str] = []
    for row_id, name, driver, opts, state, unused_since in rows:
        found = engine.get(name)
        now_driver = found.driver if found is not None else None
        now_opts = dict(found.options) if found is not None else None
        if (driver, opts) != (now_driver, now_opts):
            changes.append({"id": row_id, "reported_driver": now_driver, "reported_driver_opts": now_opts})
        if state == VolumeInstanceState.UNUSED and found is None:
            vanished.append(row_id)
        elif state == VolumeInstanceState.MISSING and unused_since is not None and found is not None:
            back.append(row_id)
    if changes:
        session.execute(update(VolumeInstanceRow), changes)
    return len(changes) + _unused_seen(session, node_id, vanished, back)


def _unused_seen(session: Session, node_id: str, vanished: list[str], back: list[str]) -> int:
    """Unused volume instances whose Docker volume the engine no longer lists (``missing``), or
    lists again (``unused``), with an event each."""
    if not vanished and not back:
        return 0
    rows, volumes, nodes = _reported_rows(session, vanished + back)
    now = datetime.now(UTC)
    events: list[tuple[VolumeInstanceRow, str, str | None]] = []
    for ids, state, error in (
        (
            vanished,
            VolumeInstanceState.MISSING,
            "its Docker volume is gone from the node (deleted outside Moorage?)",
        ),
        (back, VolumeInstanceState.UNUSED, None),
    ):
        for row_id in ids:
            row = rows[row_id]
            events.append((row, f"{row.state} -> {state}", volumes.get(row_id)))
            row.state, row.error, row.updated_at = state, error, now
    _volume_events(session, node_id, nodes.get(node_id, node_id), events)
    return len(events)


def _reported_rows(
    session: Session, ids: list[str]
) -> tuple[dict[str, VolumeInstanceRow], dict[str, str | None], dict[str, str]]:
    """The volume instances a report names, the name of each one's volume (None once removed),
    and the names of their nodes, for the events."""
    rows: dict[str, VolumeInstanceRow] = {}
    volumes: dict[str, str | None] = {}
    nodes: dict[str, str] = {}
    for part in chunks(ids):  # one query for the whole report (up to CHUNK ids)
        query = (
            select(VolumeInstanceRow, VolumeRow.name, NodeRow.name)
            .outerjoin(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
            .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
            .where(VolumeInstanceRow.id.in_(part))
        )
        for found, volume, node in session.execute(query).tuples():
            rows[found.id] = found
            volumes[found.id] = volume
            nodes[found.node_id] = node
    return rows, volumes, nodes


def _volume_events(
    session: Session, node_id: str, name: str, changes: list[tuple[VolumeInstanceRow, str, str | None]]
) -> None:
    found = []
    for row, what, volume in changes:
        of = f" of volume {volume}" if volume else ""
        error = f" ({row.error})" if row.error and what != "removed" else ""
        if what == "removed":
            kind, message = (
                EventKind.VOLUME_INSTANCE_REMOVED,
                f"Docker volume {row.name} deleted on node {name}",
            )
        else:
            kind, message = (
                EventKind.VOLUME_INSTANCE_STATE,
                f"volume instance {row.name}{of} on {name}: {what}{error}",
            )
        found.append(
            NewEvent(
                row.grid_id, kind, message, volume=volume, volume_instance=row.id, node_id=node_id, node=name
            )
        )
    record_events(session, *found)

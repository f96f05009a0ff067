"""Volume moves and the copies they retire: the rows behind ``master/volume_moves.py``.

move_subject   what a move plans from: the volume instance, its instance(s), the grid's nodes
begin_move     the job row; the volume instance held by it (one move at a time, checked by count)
stop_instances its instances' containers out of the source's desired state (kept in the job)
switch         ONE transaction: the volume instance's node becomes the target, its instances
               are planned there with the containers they had, the source is retired
fail           the instances back on the source as they were; the hold released
retired_*      the retired copies: shown, purged (state purging: the agent deletes the Docker
               volume, labelled as that volume instance, then the row goes)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from moorage.errors import Conflict, NotFound
from moorage.model.stack import NULL_STACK
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.model.volume import VolumeScope
from moorage.protocol import VolumeStatus
from moorage.store.grids import get_grid_row
from moorage.store.masters import of_gone_masters
from moorage.store.tables import (
    GridRow,
    InstanceRow,
    NodeRow,
    RetiredVolumeRow,
    ServiceRow,
    VolumeInstanceRow,
    VolumeMoveRow,
    VolumeRow,
)

__all__ = [
    "KEPT",
    "MOVED",
    "STALE",
    "Cleanup",
    "MoveNode",
    "MoveSubject",
    "MoveView",
    "RetiredView",
    "StoppedInstance",
    "begin_move",
    "cleanup_done",
    "fail_move",
    "holders",
    "kept_copy",
    "move_by_id",
    "move_subject",
    "move_view",
    "moves_of",
    "node_is_drained",
    "pending_cleanups",
    "purge_expired",
    "purge_retired",
    "retired_of",
    "retired_removals",
    "retired_removed",
    "set_progress",
    "stop_instances",
    "switch",
    "unfinished_moves",
]

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
KEPT, PURGING = "kept", "purging"
MOVED, STALE = "moved", "stale"  # why a copy is kept (RetiredVolumeRow.why)


def node_is_drained(row: NodeRow) -> bool:
    """Whether the node is drained (``moorage node drain``: migration 0011 adds ``nodes.drained``).
    The one place a move asks; False until that column exists."""
    return bool(getattr(row, "drained", False))


@dataclass(frozen=True, slots=True)
class MoveNode:
    """A node of the grid as a move sees it (a ``model.volume.DomainNode``)."""

    id: str
    name: str
    online: bool
    drained: bool
    labels: dict[str, str]
    drivers: dict[str, str | None]
    elsewhere: bool = False  # online in the store, under a master this one cannot reach now

    @property
    def zone(self) -> str | None:
        return self.labels.get("zone")


@dataclass(frozen=True, slots=True)
class StoppedInstance:
    service_row_id: int
    number: int
    label: str  # service-n or stack/service-n, as the CLI names instances
    container: dict[str, Any] | None  # its desired container when the move began
    desired_hash: str | None


@dataclass(frozen=True, slots=True)
class MoveSubject:
    grid_id: int
    grid: str
    volume_id: int
    volume: str
    scope: str
    topology: str
    volume_instance_id: str
    docker_name: str
    driver: str
    driver_opts: dict[str, Any]
    node_id: str
    zone: str | None
    region: str | None
    move_id: str | None
    instances: tuple[StoppedInstance, ...]
    nodes: tuple[MoveNode, ...]
    holding: frozenset[str]  # nodes with a (live or retired) Docker volume of this name
    companions: tuple[str, ...] = ()  # other instance-scope volume instances its instances mount

    def node(self, node_id: str) -> MoveNode | None:
        return next((n for n in self.nodes if n.id == node_id), None)

    def named(self, name: str) -> MoveNode | None:
        return next((n for n in self.nodes if n.name == name), None)


def _label(stack: str, service: str, number: int) -> str:
    return f"{service}-{number}" if stack == NULL_STACK else f"{stack}/{service}-{number}"


def _mounts(container: dict[str, Any] | None, docker_name: str) -> bool:
    mounts = (container or {}).get("mounts") or []
    return any(m.get("kind") == "volume" and m.get("source") == docker_name for m in mounts)


def move_subject(session: Session, grid: str, volume: str, docker_name: str) -> MoveSubject:
    grid_row = get_grid_row(session, grid)
    volume_row = session.scalar(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume)
    )
    if volume_row is None:
        raise NotFound(f"Volume {grid}/{volume} not found")
    vi = session.scalar(
        select(VolumeInstanceRow).where(
            VolumeInstanceRow.grid_id == grid_row.id,
            VolumeInstanceRow.volume_id == volume_row.id,
            VolumeInstanceRow.name == docker_name,
            VolumeInstanceRow.state != VolumeInstanceState.REMOVING,
        )
    )
    if vi is None:
        raise NotFound(
            f"Volume {grid}/{volume} has no volume instance {docker_name}; "
            f"'moorage volume show {volume}' lists them"
        )
    nodes = tuple(
        MoveNode(
            id=row.id,
            name=row.name,
            online=row.status == "online",
            drained=node_is_drained(row),
            labels={str(k): str(v) for k, v in (row.labels or {}).items()},
            drivers={
                str(d.get("name")): d.get("scope")
                for d in (row.info or {}).get("drivers") or []
                if d.get("name")
            },
        )
        for row in session.scalars(
            select(NodeRow).where(NodeRow.grid_id == grid_row.id).order_by(NodeRow.name)
        )
    )
    rows = session.execute(
        select(InstanceRow, ServiceRow.stack, ServiceRow.name)
        .join(ServiceRow, ServiceRow.id == InstanceRow.service_id)
        .where(ServiceRow.grid_id == grid_row.id, InstanceRow.node_id == vi.node_id)
    ).tuples()
    instances = tuple(
        StoppedInstance(
            row.service_id, row.number, _label(stack, name, row.number), row.container, row.desired_hash
        )
        for row, stack, name in rows
        if _mounts(row.container, docker_name)
    )
    holding = holders(session, grid_row.id, [docker_name]).get(docker_name, frozenset())
    mounted = {
        str(m.get("source"))
        for i in instances
        for m in (i.container or {}).get("mounts") or []
        if m.get("kind") == "volume" and m.get("source") and m.get("source") != docker_name
    }
    companions = tuple(
        sorted(
            session.scalars(
                select(VolumeInstanceRow.name)
                .join(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
                .where(
                    VolumeInstanceRow.grid_id == grid_row.id,
                    VolumeInstanceRow.name.in_(sorted(mounted)),
                    VolumeRow.scope == VolumeScope.INSTANCE,
                )
            )
        )
        if mounted
        else ()
    )
    return MoveSubject(
        grid_id=grid_row.id,
        grid=grid_row.name,
        volume_id=volume_row.id,
        volume=volume_row.name,
        scope=volume_row.scope,
        topology=volume_row.topology,
        volume_instance_id=vi.id,
        docker_name=vi.name,
        driver=vi.driver,
        driver_opts=dict(vi.driver_opts or {}),
        node_id=vi.node_id,
        zone=vi.zone,
        region=vi.region,
        move_id=vi.move_id,
        instances=instances,
        nodes=nodes,
        holding=holding,
        companions=companions,
    )


def holders(session: Session, grid_id: int, names: Iterable[str]) -> dict[str, frozenset[str]]:
    """Docker volume name -> the nodes that hold a Docker volume of that name (a volume instance,
    or a copy a move retired): a copy of that name cannot be written there."""
    wanted = sorted(set(names))
    found: dict[str, set[str]] = {}
    if not wanted:
        return {}
    live = select(VolumeInstanceRow.name, VolumeInstanceRow.node_id).where(
        VolumeInstanceRow.grid_id == grid_id, VolumeInstanceRow.name.in_(wanted)
    )
    retired = select(RetiredVolumeRow.name, RetiredVolumeRow.node_id).where(
        RetiredVolumeRow.grid_id == grid_id, RetiredVolumeRow.name.in_(wanted)
    )
    for statement in (live, retired):
        for name, node_id in session.execute(statement).tuples():
            found.setdefault(name, set()).add(node_id)
    return {name: frozenset(nodes) for name, nodes in found.items()}


def begin_move(
    session: Session,
    subject: MoveSubject,
    target: MoveNode,
    method: str,
    bytes_total: int,
    files: int,
    master_id: str | None = None,
    phase: str = "plan",
) -> str:
    """Record the job (run by master ``master_id``) and hold the volume instance for it; a 409
    when another move holds it. ``phase``: ``queued`` when it waits for its turn (a drain's moves)."""
    now = datetime.now(UTC)
    move_id = uuid.uuid4().hex
    held = cast(
        CursorResult[Any],
        session.execute(
            update(VolumeInstanceRow)
            .where(VolumeInstanceRow.id == subject.volume_instance_id, VolumeInstanceRow.move_id.is_(None))
            .values(move_id=move_id)
        ),
    ).rowcount
    if held != 1:
        raise Conflict(
            f"Volume instance {subject.docker_name} is being moved already; "
            f"'moorage volume show {subject.volume}' says where to"
        )
    source = subject.node(subject.node_id)
    session.add(
        VolumeMoveRow(
            id=move_id,
            grid_id=subject.grid_id,
            volume=subject.volume,
            volume_instance_id=subject.volume_instance_id,
            docker_name=subject.docker_name,
            source_node_id=subject.node_id,
            target_node_id=target.id,
            source_node=source.name if source else subject.node_id,
            target_node=target.name,
            method=method,
            state=RUNNING,
            phase=phase,
            master_id=master_id,
            bytes_total=bytes_total,
            bytes_done=0,
            files=files,
            instances=[
                {
                    "service_row_id": i.service_row_id,
                    "number": i.number,
                    "label": i.label,
                    "container": i.container,
                    "desired_hash": i.desired_hash,
                }
                for i in subject.instances
            ],
            message=None,
            cleanup="none",
            created_at=now,
            updated_at=now,
            stopped_at=None,
            switched_at=None,
            finished_at=None,
        )
    )
    return move_id


@dataclass(frozen=True, slots=True)
class MoveView:
    id: str
    grid: str
    volume: str
    docker_name: str
    source_node: str
    target_node: str
    source_node_id: str
    target_node_id: str
    volume_instance_id: str
    method: str
    state: str
    phase: str
    bytes_total: int
    bytes_done: int
    files: int
    instances: tuple[str, ...]
    message: str | None
    cleanup: str
    created_at: datetime
    updated_at: datetime
    stopped_at: datetime | None
    switched_at: datetime | None
    finished_at: datetime | None


def _view(row: VolumeMoveRow, grid: str) -> MoveView:
    return MoveView(
        id=row.id,
        grid=grid,
        volume=row.volume,
        docker_name=row.docker_name,
        source_node=row.source_node,
        target_node=row.target_node,
        source_node_id=row.source_node_id,
        target_node_id=row.target_node_id,
        volume_instance_id=row.volume_instance_id,
        method=row.method,
        state=row.state,
        phase=row.phase,
        bytes_total=row.bytes_total,
        bytes_done=row.bytes_done,
        files=row.files,
        instances=tuple(str(i.get("label")) for i in row.instances or []),
        message=row.message,
        cleanup=row.cleanup,
        created_at=row.created_at,
        updated_at=row.updated_at,
        stopped_at=row.stopped_at,
        switched_at=row.switched_at,
        finished_at=row.finished_at,
    )


def _row(session: Session, move_id: str) -> VolumeMoveRow:
    row = session.get(VolumeMoveRow, move_id)
    if row is None:
        raise NotFound(f"Move {move_id} not found")
    return row


def move_view(session: Session, grid: str, volume: str, move_id: str) -> MoveView:
    grid_row = get_grid_row(session, grid)
    row = session.get(VolumeMoveRow, move_id)
    if row is None or row.grid_id != grid_row.id or row.volume != volume:
        raise NotFound(f"Move {move_id} of volume {grid}/{volume} not found")
    return _view(row, grid_row.name)


def move_by_id(session: Session, move_id: str) -> MoveView:
    row = _row(session, move_id)
    grid_row = session.get(GridRow, row.grid_id)
    return _view(row, grid_row.name if grid_row is not None else "?")


def moves_of(session: Session, grid: str, volume: str) -> list[MoveView]:
    grid_row = get_grid_row(session, grid)
    rows = session.scalars(
        select(VolumeMoveRow)
        .where(VolumeMoveRow.grid_id == grid_row.id, VolumeMoveRow.volume == volume)
        .order_by(VolumeMoveRow.created_at.desc())
        .limit(50)
    )
    return [_view(row, grid_row.name) for row in rows]


def set_progress(
    session: Session, move_id: str, phase: str, bytes_done: int | None = None, bytes_total: int | None = None
) -> None:
    row = _row(session, move_id)
    row.phase = phase
    if bytes_done is not None:
        row.bytes_done = bytes_done
    if bytes_total is not None:
        row.bytes_total = bytes_total
    row.updated_at = datetime.now(UTC)


def _stopped_reason(row: VolumeMoveRow) -> str:
    return (
        f"stopped while its volume instance {row.docker_name} moves to node {row.target_node} "
        f"(move {row.id[:12]}); it starts again when the move ends"
    )


def stop_instances(session: Session, move_id: str) -> set[str]:
    """Take the move's instances out of their node's desired state (their agent removes the
    containers); the nodes whose desired state changed. A move failed meanwhile (its master was
    taken for gone) stops nothing."""
    row = _row(session, move_id)
    if row.state != RUNNING:
        raise Conflict(f"move {move_id} is {row.state}: {row.message}")
    now = datetime.now(UTC)
    row.phase, row.stopped_at, row.updated_at = "stop", now, now
    for item in row.instances or []:
        session.execute(
            update(InstanceRow)
            .where(InstanceRow.service_id == item["service_row_id"], InstanceRow.number == item["number"])
            .values(
                node_id=row.source_node_id,
                container=None,
                desired_hash=None,
                state=InstanceState.PENDING,
                reason=_stopped_reason(row),
                updated_at=now,
            )
        )
    return {row.source_node_id}


def _place_instances(session: Session, row: VolumeMoveRow, node_id: str, now: datetime) -> None:
    for item in row.instances or []:
        container = item.get("container")
        session.execute(
            update(InstanceRow)
            .where(InstanceRow.service_id == item["service_row_id"], InstanceRow.number == item["number"])
            .values(
                node_id=node_id,
                container=container,
                desired_hash=item.get("desired_hash") if container is not None else None,
                state=InstanceState.SCHEDULED if container is not None else InstanceState.PENDING,
                reason=None,
                updated_at=now,
            )
        )


def kept_copy(
    vi: VolumeInstanceRow, node_id: str, now: datetime, *, move_id: str | None = None, why: str = MOVED
) -> RetiredVolumeRow:
    """The record that volume instance ``vi``'s Docker volume stays on ``node_id``, kept (never
    deleted by an agent on its own): the source a move left (``move_id``), or a lost node's
    superseded copy (``why`` STALE)."""
    return RetiredVolumeRow(
        id=uuid.uuid4().hex,
        grid_id=vi.grid_id,
        volume_id=vi.volume_id,
        node_id=node_id,
        name=vi.name,
        volume_instance_id=vi.id,
        driver=vi.driver,
        move_id=move_id,
        state=KEPT,
        since=now,
        why=why,
    )


def switch(session: Session, move_id: str, zone: str | None, region: str | None) -> set[str]:
    """The move succeeded: in this one transaction the volume instance's node becomes the target
    (with the target's zone and region), its instances are planned there with the containers they
    had, and (for a copy) the source Docker volume is retired. The nodes whose desired state changed."""
    row = _row(session, move_id)
    now = datetime.now(UTC)
    vi = session.get(VolumeInstanceRow, row.volume_instance_id)
    if vi is None or vi.move_id != move_id:
        raise Conflict(f"volume instance {row.docker_name} was removed during the move")
    vi.node_id, vi.zone, vi.region = row.target_node_id, zone, region
    vi.state, vi.error, vi.move_id, vi.updated_at = VolumeInstanceState.PRESENT, None, None, now
    if row.method == "copy":
        session.add(kept_copy(vi, row.source_node_id, now, move_id=row.id))
    session.flush()  # the volume instance is on the target before its instances are
    _place_instances(session, row, row.target_node_id, now)
    row.state, row.phase, row.switched_at, row.finished_at, row.updated_at = SUCCEEDED, "done", now, now, now
    return {row.source_node_id, row.target_node_id}


def fail_move(session: Session, move_id: str, message: str, *, cleanup: bool) -> set[str]:
    """The move failed: its instances go back on the source as they were, the hold is released,
    and (``cleanup``) the partial copy on the target is still to be removed."""
    row = _row(session, move_id)
    if row.state != RUNNING:
        return set()
    now = datetime.now(UTC)
    vi = session.get(VolumeInstanceRow, row.volume_instance_id)
    if vi is not None and vi.move_id == move_id:
        vi.move_id = None
    if row.stopped_at is not None:
        _place_instances(session, row, row.source_node_id, now)
    row.state, row.message, row.finished_at, row.updated_at = FAILED, message, now, now
    row.cleanup = "pending" if cleanup else "none"
    return {row.source_node_id}


def unfinished_moves(session: Session, *, live: Collection[str] | None = None) -> list[str]:
    """The running moves; with ``live``, only those whose master is not among these (gone, or
    from before masters were recorded)."""
    query = select(VolumeMoveRow.id).where(VolumeMoveRow.state == RUNNING)
    if live is not None:
        query = query.where(of_gone_masters(VolumeMoveRow.master_id, live))
    return list(session.scalars(query))


@dataclass(frozen=True, slots=True)
class Cleanup:
    move_id: str
    node_id: str
    docker_name: str
    volume_instance_id: str


def pending_cleanups(session: Session) -> list[Cleanup]:
    rows = session.scalars(select(VolumeMoveRow).where(VolumeMoveRow.cleanup == "pending"))
    return [Cleanup(r.id, r.target_node_id, r.docker_name, r.volume_instance_id) for r in rows]


def cleanup_done(session: Session, move_id: str) -> None:
    row = _row(session, move_id)
    row.cleanup, row.updated_at = "done", datetime.now(UTC)


# -- retired copies -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetiredView:
    name: str
    node: str
    since: datetime
    state: str
    why: str = MOVED  # or STALE: superseded on a node declared lost


def retired_of(session: Session, grid: str, volume: str) -> list[RetiredView]:
    grid_row = get_grid_row(session, grid)
    rows = session.execute(
        select(
            RetiredVolumeRow.name,
            NodeRow.name,
            RetiredVolumeRow.since,
            RetiredVolumeRow.state,
            RetiredVolumeRow.why,
        )
        .join(NodeRow, NodeRow.id == RetiredVolumeRow.node_id)
        .join(VolumeRow, VolumeRow.id == RetiredVolumeRow.volume_id)
        .where(RetiredVolumeRow.grid_id == grid_row.id, VolumeRow.name == volume)
        .order_by(RetiredVolumeRow.since, RetiredVolumeRow.name)
    ).tuples()
    return [RetiredView(*row) for row in rows]


def purge_retired(
    session: Session, grid: str, volume: str, names: Sequence[str]
) -> tuple[list[str], set[str]]:
    """Mark the volume's retired and stale copies (all, or those named) for deletion; (their
    names, their nodes). A name that is no such copy of this volume is a 404 and nothing changes."""
    grid_row = get_grid_row(session, grid)
    volume_row = session.scalar(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume)
    )
    if volume_row is None:
        raise NotFound(f"Volume {grid}/{volume} not found")
    rows = list(
        session.scalars(
            select(RetiredVolumeRow).where(
                RetiredVolumeRow.grid_id == grid_row.id, RetiredVolumeRow.volume_id == volume_row.id
            )
        )
    )
    unknown = sorted(set(names) - {r.name for r in rows})
    if unknown:
        raise NotFound(
            f"Volume {grid}/{volume} has no retired or stale copy {unknown[0]}; "
            f"'moorage volume show {volume}' lists them"
        )
    chosen = [r for r in rows if not names or r.name in names]
    for row in chosen:
        row.state = PURGING
    return sorted({r.name for r in chosen}), {r.node_id for r in chosen}


def purge_expired(session: Session, before: datetime) -> set[str]:
    """Retired copies older than ``before`` are purged (the retention period); their nodes.
    Stale copies (a lost node's) are not: only ``volume purge`` removes those."""
    rows = list(
        session.scalars(
            select(RetiredVolumeRow).where(
                RetiredVolumeRow.state == KEPT,
                RetiredVolumeRow.since < before,
                RetiredVolumeRow.why == MOVED,
            )
        )
    )
    for row in rows:
        row.state = PURGING
    return {row.node_id for row in rows}


@dataclass(frozen=True, slots=True)
class RetiredRemoval:
    name: str
    volume_instance_id: str
    driver: str


def retired_removals(session: Session, node_id: str) -> list[RetiredRemoval]:
    """The retired copies on a node its agent is to delete (desired state ``remove_volumes``)."""
    rows = session.execute(
        select(RetiredVolumeRow.name, RetiredVolumeRow.volume_instance_id, RetiredVolumeRow.driver).where(
            RetiredVolumeRow.node_id == node_id, RetiredVolumeRow.state == PURGING
        )
    ).tuples()
    return [RetiredRemoval(*row) for row in rows]


def retired_removed(session: Session, node_id: str, statuses: Iterable[VolumeStatus]) -> int:
    """A node reported retired copies it was to delete as gone: their rows go. How many."""
    gone = [s.name for s in statuses if s.state in ("removed", "missing")]
    if not gone:
        return 0
    result = cast(
        CursorResult[Any],
        session.execute(
            delete(RetiredVolumeRow).where(
                RetiredVolumeRow.node_id == node_id,
                RetiredVolumeRow.state == PURGING,
                RetiredVolumeRow.name.in_(gone),
            )
        ),
    )
    return int(result.rowcount or 0)

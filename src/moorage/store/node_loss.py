"""A node declared lost, in the store: the node marked, each of its instance-scope volume
instances handled by its volume's policy (``model.node_loss``), the copies left on it recorded as
stale (``retired_volumes`` with ``why`` stale: kept with their data until ``volume purge``), and
the restores from backup that hold a volume instance while they run.

    declare_lost ─▶ node.lost_at; per volume instance on it (not held by a move or a restore):
        wait     ─▶ stays (its instance waits, pending on the node); an event says so
        restore  ─▶ its latest backup (by volume instance id) and a node to restore onto:
                    a restore job, the volume instance held (``restore_job``), its instances
                    stopped (no container: pending, planned nowhere else); none: it waits
        recreate ─▶ the copy on the node becomes stale, the volume instance row goes, its
                    instances wait with no node: the next deploy starts them EMPTY elsewhere
    restored     ─▶ the copy on the lost node becomes stale, the volume instance lives on the
                    node restored onto, the hold goes: the next deploy starts its instances there
    restore_failed ─▶ the hold goes; the instances wait for the node again (nothing else changed)
    node_returned ─▶ lost_at cleared; its stale copies stay as they are

Only ``recreate`` ever drops a volume instance's row (so that its instance gets an empty one
elsewhere), and only here, at the operator's declaration.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, NotFound
from moorage.model.backup import restore_target_error
from moorage.model.docker_labels import GRID as GRID_LABEL
from moorage.model.docker_labels import VOLUME as VOLUME_LABEL
from moorage.model.docker_labels import VOLUME_INSTANCE as VI_LABEL
from moorage.model.events import EventKind
from moorage.model.node import NodeStatus
from moorage.model.node_loss import OnNodeLost, age_text, last_seen_phrase, pinned_node_reason
from moorage.model.stack import NULL_STACK
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.model.volume import VolumeScope, VolumeTopology, docker_volume_name
from moorage.store.backups import create_job, new_job_id
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import get_grid_row
from moorage.store.tables import (
    BackupJobRow,
    BackupRow,
    GridRow,
    InstanceRow,
    NodeRow,
    RetiredVolumeRow,
    ServiceRow,
    VolumeInstanceRow,
    VolumeRow,
)
from moorage.store.volume_moves import STALE, holders, kept_copy
from moorage.store.volumes import services_using

__all__ = [
    "LOST_CAUSE",
    "Declared",
    "LostRestore",
    "Outcome",
    "RestoreCandidate",
    "RestoredView",
    "declare_lost",
    "node_returned",
    "orphaned_holds",
    "restore_candidates",
    "restore_failed",
    "restored",
    "restored_of",
    "wait_for_node",
]

LOST_CAUSE = "node_lost"  # backup_jobs.details["cause"] of the restores a declaration starts
RUNNING = "running"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the declaration did to one volume instance of the lost node (and its instances)."""

    volume: str
    volume_instance: str  # the Docker volume name
    policy: str
    action: str  # waiting | restoring | recreating | held (a move or restore already holds it)
    instances: tuple[str, ...]  # stack/service-n
    message: str
    backup: str | None = None  # restoring: the backup's id
    backup_time: datetime | None = None
    to: str | None = None  # restoring: the node restored onto
    job: str | None = None


@dataclass(frozen=True, slots=True)
class LostRestore:
    """A restore job a declaration started: what the master sends to the node restored onto."""

    job: str
    node_id: str
    node: str
    backup: str
    docker_volume: str
    create: dict[str, Any]


@dataclass
class Declared:
    node_id: str
    node: str
    lost_at: datetime
    last_seen_at: datetime
    was_online: bool
    outcomes: list[Outcome] = field(default_factory=list)
    restores: list[LostRestore] = field(default_factory=list)
    services: set[int] = field(default_factory=set)  # to deploy now (recreate)


@dataclass(frozen=True, slots=True)
class _Use:
    """An instance row that uses a volume instance, and its label."""

    row: InstanceRow
    label: str
    stack: str
    service: str


def _label(stack: str, service: str, number: int) -> str:
    return f"{service}-{number}" if stack == NULL_STACK else f"{stack}/{service}-{number}"


def _users(session: Session, grid_id: int, volume: str, vi_name: str) -> list[_Use]:
    """The instances whose instance-scope Docker volume of ``volume`` is named ``vi_name``: those
    of the grid's services that mount the volume, by the name each of their instances uses."""
    grid_row = session.get(GridRow, grid_id)
    if grid_row is None:
        return []
    users = services_using(session, grid_row).get(volume, [])
    found: list[_Use] = []
    for service_id in users:
        _, stack, service = service_id.split("/", 2)
        service_row = session.scalar(
            select(ServiceRow).where(
                ServiceRow.grid_id == grid_id, ServiceRow.stack == stack, ServiceRow.name == service
            )
        )
        if service_row is None:
            continue
        for row in session.scalars(select(InstanceRow).where(InstanceRow.service_id == service_row.id)):
            if docker_volume_name(VolumeScope.INSTANCE, volume, stack, service, row.number) == vi_name:
                found.append(_Use(row, _label(stack, service, row.number), stack, service))
    return found


def _subjects(uses: list[_Use]) -> list[_Use | None]:
    """One event per instance using a volume instance; one without an instance when none does."""
    return [*uses] if uses else [None]


def _stop(uses: Iterable[_Use], reason: str, now: datetime, *, keep_node: bool) -> None:
    """The instances have no container anywhere now (the lost node's agent removes it, if it ever
    comes back) and wait, pending: on the lost node while a restore holds their data
    (``keep_node``), with no node when they are to start elsewhere."""
    for use in uses:
        row = use.row
        row.container, row.desired_hash, row.host_ports, row.memory, row.cpus = None, None, None, None, None
        row.state, row.reason, row.updated_at = InstanceState.PENDING.value, reason, now
        if not keep_node:
            row.node_id = None


def _waits(uses: Iterable[_Use], reason: str, now: datetime) -> None:
    """The instances wait for the lost node, pending there, their container kept as it is (it runs
    again if the node comes back): only their reason changes."""
    for use in uses:
        if use.row.state != InstanceState.FAILED.value:
            use.row.state, use.row.reason, use.row.updated_at = InstanceState.PENDING.value, reason, now


def _stale(session: Session, vi: VolumeInstanceRow, node_id: str, now: datetime) -> None:
    session.add(kept_copy(vi, node_id, now, why=STALE))


def _drivers(info: dict[str, Any]) -> set[str]:
    return {str(d.get("name")) for d in (info or {}).get("drivers") or [] if isinstance(d, dict)}


def _restore_target(
    session: Session,
    grid_id: int,
    vi: VolumeInstanceRow,
    topology: str,
    connected: Collection[str],
    lost: str,
    only: str | None = None,
) -> tuple[NodeRow | None, str]:
    """The node to restore ``vi`` onto: online, its agent connected to a live master (this one,
    or another that the job reaches it through: ``master/agent_links.py``), not drained nor lost, with the volume's driver, inside the volume's topology
    domain (a zone volume stays in its zone), holding nothing of that Docker name; the one with
    the fewest volume instances (then by name); ``only``: that node (the one the scheduler picked
    for its instance), if it passes. None and why when there is none."""
    nodes = list(
        session.scalars(
            select(NodeRow)
            .where(NodeRow.grid_id == grid_id, NodeRow.id != lost, *([NodeRow.id == only] if only else []))
            .order_by(NodeRow.name)
        )
    )
    taken = set(
        session.scalars(
            select(VolumeInstanceRow.node_id).where(
                VolumeInstanceRow.grid_id == grid_id, VolumeInstanceRow.name == vi.name
            )
        )
    ) | set(
        session.scalars(
            select(RetiredVolumeRow.node_id).where(
                RetiredVolumeRow.grid_id == grid_id, RetiredVolumeRow.name == vi.name
            )
        )
    )
    counts: dict[str, int] = {
        node_id: int(count)
        for node_id, count in session.execute(
            select(VolumeInstanceRow.node_id, func.count())
            .where(VolumeInstanceRow.grid_id == grid_id)
            .group_by(VolumeInstanceRow.node_id)
        ).tuples()
    }
    why: dict[str, str] = {}
    able: list[NodeRow] = []
    for node in nodes:
        labels = {str(k): str(v) for k, v in (node.labels or {}).items()}
        if node.status != NodeStatus.ONLINE.value or node.lost_at is not None:
            why[node.name] = "offline" if node.lost_at is None else "declared lost"
        elif node.id not in connected:
            why[node.name] = "connected to a master not known as live yet"
        elif node.drained:
            why[node.name] = "drained"
        elif vi.driver not in _drivers(node.info):
            why[node.name] = f"no volume driver {vi.driver}"
        elif restore_target_error(topology, vi.zone, vi.region, node.name, labels) is not None:
            why[node.name] = f"outside the volume's {topology}"
        elif node.id in taken:
            why[node.name] = f"already holds a Docker volume {vi.name}"
        else:
            able.append(node)
    if not able:
        said = ", ".join(f"{name}: {reason}" for name, reason in why.items()) or "the grid has no other node"
        return None, f"no node to restore it onto ({said})"
    able.sort(key=lambda n: (counts.get(n.id, 0), n.name))
    return able[0], ""


def _latest_backup(session: Session, grid_id: int, vi: VolumeInstanceRow) -> BackupRow | None:
    return session.scalar(
        select(BackupRow)
        .where(BackupRow.grid_id == grid_id, BackupRow.volume_instance_id == vi.id)
        .order_by(BackupRow.time.desc())
        .limit(1)
    )


def _event(
    kind: EventKind,
    message: str,
    node: NodeRow,
    volume: str | None,
    vi: VolumeInstanceRow | None,
    actor: str | None = None,
    use: _Use | None = None,
) -> NewEvent:
    return NewEvent(
        node.grid_id,
        kind,
        message,
        actor,
        stack=use.stack if use is not None else None,
        service=use.service if use is not None else None,
        instance=use.row.number if use is not None else None,
        volume=volume,
        volume_instance=vi.id if vi is not None else None,
        node_id=node.id,
        node=node.name,
    )


def declare_lost(
    session: Session,
    grid: str,
    name: str,
    *,
    force: bool,
    connected: Collection[str],
    actor: str | None = None,
    now: datetime | None = None,
    master_id: str | None = None,
    targets: Mapping[str, tuple[str | None, str | None]] | None = None,
) -> Declared:
    """The operator says node ``name`` is gone. Refused for an online node unless ``force``.
    Declaring a lost node again applies its volumes' policies again to what is still on it.
    ``targets``: Docker volume name -> (the node the scheduler picked for its instance with its data
    free to go, or None and why none fits), for the restores (``restore_candidates``)."""
    now = now or datetime.now(UTC)
    grid_row = get_grid_row(session, grid)
    node = session.scalar(
        select(NodeRow).where(NodeRow.grid_id == grid_row.id, NodeRow.name == name).with_for_update()
    )
    if node is None:
        raise NotFound(f"Node {name} not found in grid {grid}")
    online = node.status == NodeStatus.ONLINE.value
    if online and not force:
        raise Conflict(
            f"Node {name} is online ({last_seen_phrase(node.last_seen_at)}): declare a node lost only when "
            f"it is gone. To move its data while it runs, use 'moorage volume move' or 'moorage node drain "
            f"{name}'; if you know its engine is gone for good, pass --force (its containers are removed "
            "first, its data is kept there as stale copies)"
        )
    seen = f"{last_seen_phrase(node.last_seen_at)}, {age_text((now - node.last_seen_at).total_seconds())} ago"
    again = node.lost_at is not None
    node.lost_at = node.lost_at or now
    node.updated_at = now  # planning reads the grid's nodes afresh
    declaration = _Declaration(
        session, grid_row, node, Declared(node.id, node.name, node.lost_at, node.last_seen_at, online),
        connected, actor, now, master_id, targets or {},
    )  # fmt: skip
    declaration.events.append(
        _event(
            EventKind.NODE_LOST,
            f"node {name} declared lost{' again' if again else ''} ({'online, --force' if online else seen}); "
            "its volumes' on_node_lost policies apply to the data it holds",
            node,
            None,
            None,
            actor,
        )
    )
    rows = session.execute(
        select(VolumeInstanceRow, VolumeRow)
        .join(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        .where(
            VolumeInstanceRow.node_id == node.id,
            VolumeRow.scope == VolumeScope.INSTANCE.value,
            VolumeInstanceRow.state != VolumeInstanceState.REMOVING.value,
        )
        .order_by(VolumeInstanceRow.name)
    ).all()
    for vi, volume in rows:
        declaration.handle(vi, volume)
    # every service with an instance on it deploys again: what nothing pins there (stateless, or
    # data that re-attaches elsewhere) goes to other nodes; what waits keeps waiting
    declaration.declared.services.update(
        session.scalars(select(InstanceRow.service_id).where(InstanceRow.node_id == node.id).distinct())
    )
    record_events(session, *declaration.events)
    return declaration.declared


@dataclass
class _Declaration:
    """One declaration at work: what it read, and what it records (outcomes, events)."""

    session: Session
    grid_row: GridRow
    node: NodeRow
    declared: Declared
    connected: Collection[str]
    actor: str | None
    now: datetime
    master_id: str | None  # the master sending the restores (their agents' answers come there)
    targets: Mapping[str, tuple[str | None, str | None]]  # the scheduler's picks (declare_lost)
    events: list[NewEvent] = field(default_factory=list)

    def handle(self, vi: VolumeInstanceRow, volume: VolumeRow) -> None:
        uses = _users(self.session, self.grid_row.id, volume.name, vi.name)
        if vi.move_id is not None or vi.restore_job is not None:
            held_by = (
                f"move {vi.move_id[:12]}" if vi.move_id else f"restore job {(vi.restore_job or '')[:12]}"
            )
            self._outcome(vi, volume, uses, "held", f"{vi.name}: {held_by} holds it; left to it")
        elif volume.on_node_lost == OnNodeLost.RECREATE:
            self._recreate(vi, volume, uses)
        elif volume.on_node_lost == OnNodeLost.RESTORE:
            self._restore(vi, volume, uses)
        else:
            self._wait(
                vi,
                volume,
                uses,
                f"volume instance {vi.name} on lost node {self.node.name}: {_who(uses)} waits for "
                f"{self.node.name} (volume {volume.name}: on_node_lost wait); nothing starts elsewhere",
            )

    def _outcome(
        self,
        vi: VolumeInstanceRow,
        volume: VolumeRow,
        uses: list[_Use],
        action: str,
        message: str,
        **more: Any,
    ) -> None:
        labels = tuple(u.label for u in uses)
        self.declared.outcomes.append(
            Outcome(volume.name, vi.name, volume.on_node_lost, action, labels, message, **more)
        )

    def _say(
        self, kind: EventKind, message: str, vi: VolumeInstanceRow, volume: VolumeRow, uses: list[_Use]
    ) -> None:
        self.events += [
            _event(kind, message, self.node, volume.name, vi, self.actor, use) for use in _subjects(uses)
        ]

    def _wait(
        self,
        vi: VolumeInstanceRow,
        volume: VolumeRow,
        uses: list[_Use],
        message: str,
        reason: str | None = None,
    ) -> None:
        """It waits for the node (wait; restore without a backup or a node to restore onto)."""
        if not self.declared.was_online:  # an online node's instances run on (with --force)
            seen = last_seen_phrase(self.node.last_seen_at)
            policy = volume.on_node_lost
            _waits(
                uses,
                reason
                or pinned_node_reason(vi.name, volume.name, self.node.name, seen, lost=True, policy=policy),
                self.now,
            )
        self._say(EventKind.VOLUME_INSTANCE_WAITING, message, vi, volume, uses)
        self._outcome(vi, volume, uses, "waiting", message)

    def _recreate(self, vi: VolumeInstanceRow, volume: VolumeRow, uses: list[_Use]) -> None:
        name = self.node.name
        message = (
            f"volume instance {vi.name} on lost node {name} superseded: {_who(uses)} starts with an EMPTY "
            f"volume on another node (volume {volume.name}: on_node_lost recreate); the old copy stays on "
            f"{name} as a stale copy until 'moorage volume purge {volume.name}'"
        )
        _stop(uses, f"its node {name} was declared lost: it starts with an empty volume elsewhere "
              "(on_node_lost recreate)", self.now, keep_node=False)  # fmt: skip
        self.declared.services.update(u.row.service_id for u in uses)
        _stale(self.session, vi, self.node.id, self.now)
        self._say(EventKind.VOLUME_INSTANCE_RECREATED, message, vi, volume, uses)
        self.session.flush()
        self.session.execute(delete(VolumeInstanceRow).where(VolumeInstanceRow.id == vi.id))
        self._outcome(vi, volume, uses, "recreating", message)

    def _restore(self, vi: VolumeInstanceRow, volume: VolumeRow, uses: list[_Use]) -> None:
        name, now = self.node.name, self.now
        if not self.grid_row.backup_repo:
            self._wait(
                vi,
                volume,
                uses,
                f"volume instance {vi.name} on lost node {name} cannot be restored: grid {self.grid_row.name} "
                f"has no backup repository ('moorage grid backup-repo set URL'); {_who(uses)} waits for {name}",
            )
            return
        backup = _latest_backup(self.session, self.grid_row.id, vi)
        if backup is None:
            self._wait(
                vi,
                volume,
                uses,
                f"volume instance {vi.name} on lost node {name} has no backup to restore: {_who(uses)} waits "
                f"for {name} (volume {volume.name}: on_node_lost restore); nothing starts elsewhere",
            )
            return
        picked, unfit = self.targets.get(vi.name, (None, None))
        if vi.name in self.targets and picked is None:
            target, why = None, f"no node can run its instance with its data: {unfit}"
        else:
            target, why = _restore_target(
                self.session, self.grid_row.id, vi, volume.topology, self.connected, self.node.id, picked
            )
        if target is None:
            message = (
                f"volume instance {vi.name} on lost node {name} was not restored: {why}; {_who(uses)} waits "
                f"(declare {name} lost again once a node can take it)"
            )
            self._wait(vi, volume, uses, message, reason=f"{message}; or bring {name} back")
            return
        job_id = new_job_id()
        create_job(
            self.session,
            self.grid_row,
            job_id=job_id,
            master_id=self.master_id,
            kind="restore",
            volume=volume.name,
            node_id=target.id,
            node=target.name,
            docker_volumes=[vi.name],
            backup_id=backup.id,
            details={
                "mode": "move",
                "cause": LOST_CAUSE,
                "lost_node": name,
                "lost_node_id": self.node.id,
                "volume_instance": vi.id,
                "backup_time": backup.time.isoformat(),
                "size": backup.size,
            },
        )
        vi.restore_job = job_id
        _stop(
            uses,
            f"its node {name} was declared lost: its volume instance {vi.name} is being restored "
            f"from backup {backup.id[:8]} on {target.name}",
            now,
            keep_node=True,
        )
        message = (
            f"volume instance {vi.name} on lost node {name}: restoring backup {backup.id[:8]} of "
            f"{backup.time.strftime('%Y-%m-%d %H:%M')} UTC ({age_text((now - backup.time).total_seconds())} old) "
            f"on {target.name} for {_who(uses)} (volume {volume.name}: on_node_lost restore)"
        )
        self._say(EventKind.VOLUME_INSTANCE_RESTORING, message, vi, volume, uses[:1])
        grid = self.grid_row.name
        self.declared.restores.append(
            LostRestore(
                job=job_id,
                node_id=target.id,
                node=target.name,
                backup=backup.id,
                docker_volume=vi.name,
                create={
                    "name": vi.name,
                    "volume_instance_id": vi.id,
                    "driver": vi.driver,
                    "driver_opts": {str(k): str(v) for k, v in vi.driver_opts.items()},
                    "labels": {GRID_LABEL: grid, VOLUME_LABEL: f"{grid}/{volume.name}", VI_LABEL: vi.id},
                },
            )
        )
        self._outcome(
            vi,
            volume,
            uses,
            "restoring",
            message,
            backup=backup.id,
            backup_time=backup.time,
            to=target.name,
            job=job_id,
        )


def _who(uses: list[_Use]) -> str:
    return ", ".join(u.label for u in uses) or "its instance"


@dataclass(frozen=True, slots=True)
class RestoreCandidate:
    """An instance a declaration would restore the data of: where to is the scheduler's pick."""

    docker_volume: str
    service_row_id: int
    number: int


def restore_candidates(
    session: Session, grid: str, name: str
) -> tuple[str | None, list[RestoreCandidate], dict[str, frozenset[str]]]:
    """What declaring ``name`` lost would restore: the node's id, the instances whose restore-policy
    data only it holds, and the nodes that hold a Docker volume of each name already (no restore
    goes there)."""
    grid_row = get_grid_row(session, grid)
    node = session.scalar(select(NodeRow).where(NodeRow.grid_id == grid_row.id, NodeRow.name == name))
    if node is None:
        return None, [], {}
    rows = session.execute(
        select(VolumeInstanceRow.name, VolumeRow.name)
        .join(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        .where(
            VolumeInstanceRow.node_id == node.id,
            VolumeRow.scope == VolumeScope.INSTANCE.value,
            VolumeRow.on_node_lost == OnNodeLost.RESTORE.value,
            VolumeInstanceRow.state != VolumeInstanceState.REMOVING.value,
            VolumeInstanceRow.move_id.is_(None),
            VolumeInstanceRow.restore_job.is_(None),
        )
    ).tuples()
    found = [
        RestoreCandidate(vi_name, use.row.service_id, use.row.number)
        for vi_name, volume in rows
        for use in _users(session, grid_row.id, volume, vi_name)
    ]
    return node.id, found, holders(session, grid_row.id, [c.docker_volume for c in found])


def _job_vi(session: Session, job: BackupJobRow) -> VolumeInstanceRow | None:
    vi_id = str((job.details or {}).get("volume_instance") or "")
    vi = session.get(VolumeInstanceRow, vi_id) if vi_id else None
    return vi if vi is not None and vi.restore_job == job.id else None


def restored(session: Session, job_id: str, now: datetime | None = None) -> tuple[set[int], str | None]:
    """A lost node's volume instance was restored: its copy on the lost node is stale now, the
    volume instance lives on the node restored onto, and the hold goes. (The services to deploy
    again, which start its instances there; the lost node's id.)"""
    now = now or datetime.now(UTC)
    job = session.get(BackupJobRow, job_id)
    if job is None:
        return set(), None
    vi = _job_vi(session, job)
    target = session.get(NodeRow, job.node_id) if job.node_id else None
    if vi is None or target is None:
        return set(), None
    lost = session.get(NodeRow, vi.node_id)
    volume = session.get(VolumeRow, vi.volume_id) if vi.volume_id is not None else None
    uses = _users(session, vi.grid_id, volume.name, vi.name) if volume is not None else []
    lost_name = str(job.details.get("lost_node") or (lost.name if lost else "?"))
    _stale(session, vi, vi.node_id, now)
    labels = target.labels or {}
    vi.node_id, vi.state, vi.error, vi.restore_job = target.id, VolumeInstanceState.PRESENT.value, None, None
    vi.zone, vi.region, vi.updated_at = labels.get("zone"), labels.get("region"), now
    for use in uses:
        use.row.node_id = target.id
        use.row.reason = f"restored from backup {(job.backup_id or '')[:8]} on {target.name}; starting there"
        use.row.updated_at = now
    backup_time = _backup_time(job)
    age = f", {age_text((now - backup_time).total_seconds())} old" if backup_time is not None else ""
    when = backup_time.strftime("%Y-%m-%d %H:%M") + " UTC" if backup_time is not None else "?"
    message = (
        f"volume instance {vi.name} restored from backup {(job.backup_id or '')[:8]} of {when}{age} on "
        f"{target.name} (node {lost_name} declared lost); the copy on {lost_name} is kept stale until "
        f"'moorage volume purge {volume.name if volume else ''}'"
    )
    subject = lost if lost is not None else target
    record_events(
        session,
        *[
            _event(
                EventKind.VOLUME_INSTANCE_RESTORED,
                message,
                target,
                volume.name if volume else None,
                vi,
                None,
                u,
            )
            for u in _subjects(uses)
        ],
        _event(
            EventKind.VOLUME_INSTANCE_STALE,
            f"Docker volume {vi.name} on {lost_name} superseded by its restore on {target.name}: kept stale, "
            "with its data; its container there never starts again",
            subject,
            volume.name if volume else None,
            vi,
        ),
    )
    return {u.row.service_id for u in uses}, lost.id if lost is not None else None


def _backup_time(job: BackupJobRow) -> datetime | None:
    raw = (job.details or {}).get("backup_time")
    try:
        return datetime.fromisoformat(str(raw)) if raw else None
    except ValueError:
        return None


def restore_failed(session: Session, job_id: str, error: str, now: datetime | None = None) -> None:
    """The restore of a lost node's volume instance failed: the hold goes, and its instances wait
    for the lost node again, their data where it was (the agent removed its partial copy)."""
    now = now or datetime.now(UTC)
    job = session.get(BackupJobRow, job_id)
    if job is None:
        return
    vi = _job_vi(session, job)
    if vi is None:
        return
    vi.restore_job = None
    node = session.get(NodeRow, vi.node_id)
    volume = session.get(VolumeRow, vi.volume_id) if vi.volume_id is not None else None
    lost_name = node.name if node is not None else "?"
    for use in _users(session, vi.grid_id, volume.name, vi.name) if volume is not None else []:
        use.row.reason = (
            f"its restore from backup failed ({error}); it waits for {lost_name} again: "
            f"'moorage node declare-lost {lost_name}' tries again"
        )
        use.row.updated_at = now
    if node is not None:
        record_events(
            session,
            _event(
                EventKind.VOLUME_INSTANCE_RESTORE_FAILED,
                f"restore of volume instance {vi.name} onto {job.node} failed: {error}; it waits for {lost_name} "
                f"(nothing started elsewhere; 'moorage node declare-lost {lost_name}' tries again)",
                node,
                volume.name if volume is not None else None,
                vi,
            ),
        )


def orphaned_holds(session: Session) -> list[str]:
    """Restore jobs that hold a volume instance but no longer run (a master stopped during them):
    their ids, for ``restore_failed``."""
    return list(
        session.scalars(
            select(VolumeInstanceRow.restore_job)
            .join(BackupJobRow, BackupJobRow.id == VolumeInstanceRow.restore_job)
            .where(VolumeInstanceRow.restore_job.is_not(None), BackupJobRow.state != RUNNING)
        )
    )


@dataclass(frozen=True, slots=True)
class RestoredView:
    """A volume instance a lost node's declaration restored: from which backup, of when, where."""

    docker_volume: str
    node: str
    backup: str
    backup_time: datetime | None
    restored_at: datetime
    lost_node: str


def restored_of(session: Session, grid: str, volume: str) -> list[RestoredView]:
    """The latest restore after a node loss of each of the volume's Docker volumes."""
    grid_row = get_grid_row(session, grid)
    rows = session.scalars(
        select(BackupJobRow)
        .where(
            BackupJobRow.grid_id == grid_row.id,
            BackupJobRow.volume == volume,
            BackupJobRow.kind == "restore",
            BackupJobRow.state == "done",
        )
        .order_by(BackupJobRow.finished_at)
    )
    latest: dict[str, RestoredView] = {}
    for job in rows:
        if (job.details or {}).get("cause") != LOST_CAUSE or job.finished_at is None:
            continue
        for name in job.docker_volumes:
            latest[str(name)] = RestoredView(
                str(name),
                job.node,
                job.backup_id or "",
                _backup_time(job),
                job.finished_at,
                str(job.details.get("lost_node") or "?"),
            )
    return [latest[name] for name in sorted(latest)]


def wait_for_node(session: Session, node: NodeRow) -> int:
    """The node went offline: the instances on it whose data only it holds (an instance-scope
    volume instance of topology ``node``) wait for it, ``pending`` with the reason that names the
    volume instance, the node, when it was last seen and the ways out (by the volume's
    ``on_node_lost``), without waiting for a deploy to say so. Their node and container stay as
    they are (a report of their agent says what runs once the node is back). How many."""
    pins = {
        vi_name: (volume, policy)
        for vi_name, volume, policy in session.execute(
            select(VolumeInstanceRow.name, VolumeRow.name, VolumeRow.on_node_lost)
            .join(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
            .where(
                VolumeInstanceRow.node_id == node.id,
                VolumeRow.scope == VolumeScope.INSTANCE.value,
                VolumeRow.topology == VolumeTopology.NODE.value,
                VolumeInstanceRow.state != VolumeInstanceState.REMOVING.value,
            )
        ).tuples()
    }
    if not pins:
        return 0
    seen = last_seen_phrase(node.last_seen_at)
    waiting = 0
    for row in session.scalars(
        select(InstanceRow).where(InstanceRow.node_id == node.id, InstanceRow.container.is_not(None))
    ):
        if row.state in (InstanceState.PENDING.value, InstanceState.FAILED.value):
            continue
        mounted = [
            str(m.get("source"))
            for m in (row.container or {}).get("mounts") or []
            if m.get("kind") == "volume" and str(m.get("source")) in pins
        ]
        if not mounted:
            continue
        row.state = InstanceState.PENDING.value
        row.reason = "; ".join(
            pinned_node_reason(
                name, pins[name][0], node.name, seen, lost=node.lost_at is not None, policy=pins[name][1]
            )
            for name in mounted
        )
        row.updated_at = datetime.now(UTC)
        waiting += 1
    return waiting


def node_returned(session: Session, row: NodeRow, now: datetime | None = None) -> None:
    """A node declared lost is back (its agent's hello): it is a node like any other again; what
    was superseded on it stays stale (its agent is told to run only what its desired state says)."""
    if row.lost_at is None:
        return
    now = now or datetime.now(UTC)
    stale = list(
        session.scalars(
            select(RetiredVolumeRow.name).where(
                RetiredVolumeRow.node_id == row.id, RetiredVolumeRow.why == STALE
            )
        )
    )
    lost_for = age_text((now - row.lost_at).total_seconds())
    kept = (
        f"its {len(stale)} superseded Docker volume(s) stay, stale, with their data ({', '.join(sorted(stale)[:5])}"
        f"{' ...' if len(stale) > 5 else ''}); their containers never start there"
        if stale
        else "nothing of it was superseded"
    )
    record_events(
        session,
        NewEvent(
            row.grid_id,
            EventKind.NODE_RETURNED,
            f"node {row.name} is back, {lost_for} after it was declared lost: {kept}",
            node_id=row.id,
            node=row.name,
        ),
    )
    row.lost_at = None

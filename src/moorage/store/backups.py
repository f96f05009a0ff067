"""Backups in the store: a grid's repository, the jobs agents run on volume data (backup,
restore, verify) and the snapshots they took; what a backup of a volume reads (its volume
instances, their nodes and the containers mounting each)."""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.model.backup import RetentionPolicy
from moorage.model.states import VolumeInstanceState
from moorage.store.grids import get_grid_row
from moorage.store.masters import of_gone_masters
from moorage.store.tables import (
    BackupJobRow,
    BackupRow,
    GridRow,
    InstanceRow,
    NodeRow,
    VolumeInstanceRow,
    VolumeRow,
)

__all__ = [
    "BackupTarget",
    "BackupView",
    "JobView",
    "RepoSettings",
    "backup_targets",
    "create_job",
    "fail_running_jobs",
    "find_backup",
    "finish_job",
    "get_job",
    "job_progress",
    "list_backups",
    "record_backup",
    "repo_settings",
    "set_backup_repo",
    "set_verified",
]

RUNNING, DONE, FAILED = "running", "done", "failed"


@dataclass(frozen=True)
class RepoSettings:
    url: str
    password: str = field(repr=False)


def repo_settings(session: Session, grid: str) -> RepoSettings:
    row = get_grid_row(session, grid)
    if row.backup_repo is None or row.backup_password is None:
        raise Conflict(
            f"Grid {grid} has no backup repository; set one with "
            "'moorage grid backup-repo set URL --password-file F'"
        )
    return RepoSettings(row.backup_repo, row.backup_password)


def set_backup_repo(session: Session, grid: str, url: str, password: str) -> None:
    row = get_grid_row(session, grid)
    row.backup_repo, row.backup_password = url, password
    row.updated_at = datetime.now(UTC)


# -- jobs -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobView:
    id: str
    grid: str
    kind: str
    state: str
    volume: str
    node: str
    docker_volumes: tuple[str, ...]
    backup_id: str | None
    details: dict[str, Any]
    progress: dict[str, Any]
    message: str | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    backups: tuple[str, ...] = ()  # the snapshots a finished backup job took


def _job_view(row: BackupJobRow, grid: str, backups: Sequence[str] = ()) -> JobView:
    return JobView(
        id=row.id,
        grid=grid,
        kind=row.kind,
        state=row.state,
        volume=row.volume,
        node=row.node,
        docker_volumes=tuple(row.docker_volumes),
        backup_id=row.backup_id,
        details=dict(row.details),
        progress=dict(row.progress),
        message=row.message,
        error=row.error,
        created_at=row.created_at,
        finished_at=row.finished_at,
        backups=tuple(backups),
    )


def new_job_id() -> str:
    return secrets.token_hex(8)


def create_job(
    session: Session,
    grid_row: GridRow,
    *,
    kind: str,
    volume: str,
    node_id: str,
    node: str,
    docker_volumes: Sequence[str],
    details: dict[str, Any],
    backup_id: str | None = None,
    job_id: str | None = None,
    master_id: str | None = None,
) -> JobView:
    """A running job of an agent, started by master ``master_id`` (its answers come there)."""
    row = BackupJobRow(
        id=job_id or new_job_id(),
        master_id=master_id,
        grid_id=grid_row.id,
        kind=kind,
        state=RUNNING,
        volume=volume,
        node_id=node_id,
        node=node,
        docker_volumes=list(docker_volumes),
        backup_id=backup_id,
        details=details,
        progress={},
        message=None,
        error=None,
        created_at=datetime.now(UTC),
        finished_at=None,
    )
    session.add(row)
    session.flush()
    return _job_view(row, grid_row.name)


def job_progress(session: Session, job_id: str, progress: dict[str, Any]) -> None:
    session.execute(
        update(BackupJobRow)
        .where(BackupJobRow.id == job_id, BackupJobRow.state == RUNNING)
        .values(progress=progress)
    )


def finish_job(session: Session, job_id: str, error: str | None, message: str | None = None) -> bool:
    """End a running job (done, or failed with ``error``); False if it was not running."""
    done = session.execute(
        update(BackupJobRow)
        .where(BackupJobRow.id == job_id, BackupJobRow.state == RUNNING)
        .values(
            state=FAILED if error else DONE,
            error=error,
            message=message,
            finished_at=datetime.now(UTC),
        )
    )
    return bool(getattr(done, "rowcount", 0))


def running_job(session: Session, job_id: str) -> BackupJobRow | None:
    return session.scalar(
        select(BackupJobRow).where(BackupJobRow.id == job_id, BackupJobRow.state == RUNNING)
    )


def fail_running_jobs(
    session: Session,
    node_id: str | None,
    error: str,
    *,
    live: Collection[str] | None = None,
    only: Collection[str] | None = None,
) -> list[str]:
    """Fail the running jobs of a node (all nodes: None); with ``live``, only those whose master
    is not among these (gone, or from before masters were recorded); with ``only``, only those of
    these ids. Their ids."""
    query = select(BackupJobRow.id).where(BackupJobRow.state == RUNNING)
    if node_id is not None:
        query = query.where(BackupJobRow.node_id == node_id)
    if only is not None:
        query = query.where(BackupJobRow.id.in_(sorted(only)))
    if live is not None:
        query = query.where(of_gone_masters(BackupJobRow.master_id, live))
    ids = list(session.scalars(query))
    for job_id in ids:
        finish_job(session, job_id, error)
    return ids


def get_job(session: Session, grid: str, job_id: str) -> JobView:
    grid_row = get_grid_row(session, grid)
    row = session.scalar(
        select(BackupJobRow).where(BackupJobRow.grid_id == grid_row.id, BackupJobRow.id == job_id)
    )
    if row is None:
        raise NotFound(f"Backup job {job_id} not found in grid {grid}")
    taken = session.scalars(select(BackupRow.id).where(BackupRow.group_id == job_id).order_by(BackupRow.id))
    return _job_view(row, grid, list(taken))


def list_jobs(session: Session, grid: str, limit: int = 100) -> list[JobView]:
    grid_row = get_grid_row(session, grid)
    rows = session.scalars(
        select(BackupJobRow)
        .where(BackupJobRow.grid_id == grid_row.id)
        .order_by(BackupJobRow.created_at.desc())
        .limit(limit)
    )
    return [_job_view(row, grid) for row in rows]


# -- backups ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupView:
    id: str
    grid: str
    volume: str
    docker_volume: str
    volume_instance_id: str | None
    node: str
    group_id: str
    time: datetime
    size: int
    files: int
    added: int
    duration: float
    quiesce: str
    verified_at: datetime | None
    verify_error: str | None
    manifest: dict[str, Any] | None = field(default=None, repr=False)


def _backup_view(row: BackupRow, grid: str) -> BackupView:
    return BackupView(
        id=row.id,
        grid=grid,
        volume=row.volume,
        docker_volume=row.docker_volume,
        volume_instance_id=row.volume_instance_id,
        node=row.node,
        group_id=row.group_id,
        time=row.time,
        size=row.size,
        files=row.files,
        added=row.added,
        duration=row.duration,
        quiesce=row.quiesce,
        verified_at=row.verified_at,
        verify_error=row.verify_error,
        manifest=row.manifest,
    )


def record_backup(session: Session, grid_id: int, **fields: Any) -> None:
    session.add(BackupRow(grid_id=grid_id, verified_at=None, verify_error=None, **fields))


def list_backups(session: Session, grid: str, volume: str | None = None) -> list[BackupView]:
    grid_row = get_grid_row(session, grid)
    query = select(BackupRow).where(BackupRow.grid_id == grid_row.id)
    if volume is not None:
        query = query.where(BackupRow.volume == volume)
    rows = session.scalars(query.order_by(BackupRow.time, BackupRow.docker_volume))
    return [_backup_view(row, grid) for row in rows]


def parent_backup(session: Session, grid_id: int, docker_volume: str) -> tuple[str, list[Any]] | None:
    """The newest backup of a Docker volume that has a manifest: (its id, the manifest's rows)."""
    row = session.scalar(
        select(BackupRow)
        .where(
            BackupRow.grid_id == grid_id,
            BackupRow.docker_volume == docker_volume,
            BackupRow.manifest.is_not(None),
        )
        .order_by(BackupRow.time.desc())
        .limit(1)
    )
    if row is None or not isinstance(row.manifest, dict) or not isinstance(row.manifest.get("rows"), list):
        return None
    return row.id, list(row.manifest["rows"])


def last_backups(session: Session, grid_id: int, volume: str) -> tuple[BackupRow | None, BackupRow | None]:
    """The volume's newest backup and its newest verified (or failed to verify) one."""
    base = select(BackupRow).where(BackupRow.grid_id == grid_id, BackupRow.volume == volume)
    last = session.scalar(base.order_by(BackupRow.time.desc()).limit(1))
    checked = session.scalar(
        base.where(BackupRow.verified_at.is_not(None)).order_by(BackupRow.verified_at.desc()).limit(1)
    )
    return last, checked


def find_backup(session: Session, grid: str, backup_id: str) -> BackupView:
    """The backup whose id is ``backup_id`` or starts with it (as restic takes short ids)."""
    if not backup_id or len(backup_id) > 64 or any(c not in "0123456789abcdef" for c in backup_id):
        raise InvalidInput.one(
            "id", f"'{backup_id}' is not a backup id: give the hex id 'moorage volume backup ls' shows"
        )
    grid_row = get_grid_row(session, grid)
    rows = list(
        session.scalars(
            select(BackupRow)
            .where(BackupRow.grid_id == grid_row.id, BackupRow.id.startswith(backup_id))
            .limit(2)
        )
    )
    if not rows:
        raise NotFound(f"Backup {backup_id} not found in grid {grid}; 'moorage volume backup ls' lists them")
    if len(rows) > 1:
        raise InvalidInput.one("id", f"'{backup_id}' names more than one backup: give more of its id")
    return _backup_view(rows[0], grid)


def set_verified(session: Session, backup_id: str, error: str | None) -> None:
    session.execute(
        update(BackupRow)
        .where(BackupRow.id == backup_id)
        .values(verified_at=datetime.now(UTC), verify_error=error)
    )


def forget_backups(session: Session, grid_id: int, ids: Sequence[str]) -> None:
    if ids:
        session.execute(delete(BackupRow).where(BackupRow.grid_id == grid_id, BackupRow.id.in_(list(ids))))


# -- what a backup reads ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BackupTarget:
    """One volume instance to back up: its Docker volume, its node, and the containers of this
    grid's instances on that node that mount it (paused or stopped for the read)."""

    volume: str
    volume_instance_id: str
    docker_volume: str
    node_id: str
    node: str
    node_online: bool
    containers: tuple[str, ...]
    instances: tuple[int, ...]  # row ids of the instances those containers belong to


def _mounting(session: Session, node_id: str) -> dict[str, list[tuple[str, int]]]:
    """Docker volume name -> (container name, instance row id) of the desired containers on a node."""
    found: dict[str, list[tuple[str, int]]] = {}
    rows = session.execute(
        select(InstanceRow.id, InstanceRow.container).where(
            InstanceRow.node_id == node_id, InstanceRow.container.is_not(None)
        )
    )
    for instance_id, container in rows:
        for mount in (container or {}).get("mounts") or []:
            if mount.get("kind") == "volume" and mount.get("source"):
                found.setdefault(str(mount["source"]), []).append((str(container["name"]), instance_id))
    return found


def backup_targets(
    session: Session, grid: str, volume: str, docker_volumes: Sequence[str] = ()
) -> tuple[GridRow, VolumeRow, list[BackupTarget]]:
    grid_row = get_grid_row(session, grid)
    volume_row = session.scalar(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume)
    )
    if volume_row is None:
        raise NotFound(f"Volume {volume} not found in grid {grid}")
    rows = session.execute(
        select(VolumeInstanceRow, NodeRow.name, NodeRow.status)
        .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
        .where(VolumeInstanceRow.volume_id == volume_row.id)
        .order_by(VolumeInstanceRow.name, NodeRow.name)
    ).all()
    wanted = set(docker_volumes)
    known = {vi.name for vi, _, _ in rows}
    if unknown := sorted(wanted - known):
        raise NotFound(
            f"Volume {volume} has no Docker volume {', '.join(unknown)}; its Docker volumes: "
            f"{', '.join(sorted(known)) or 'none yet (deploy a service that uses it)'}"
        )
    mounts: dict[str, dict[str, list[tuple[str, int]]]] = {}
    targets = []
    for vi, node_name, status in rows:
        if wanted and vi.name not in wanted:
            continue
        if vi.state in (VolumeInstanceState.REMOVING.value, VolumeInstanceState.PENDING.value):
            continue
        users = mounts.setdefault(vi.node_id, _mounting(session, vi.node_id)).get(vi.name, [])
        targets.append(
            BackupTarget(
                volume=volume,
                volume_instance_id=vi.id,
                docker_volume=vi.name,
                node_id=vi.node_id,
                node=node_name,
                node_online=status == "online",
                containers=tuple(sorted({name for name, _ in users})),
                instances=tuple(sorted({i for _, i in users})),
            )
        )
    if not targets:
        raise Conflict(
            f"Volume {volume} has no Docker volume on any node yet: deploy a service that uses it, "
            "then back it up"
        )
    return grid_row, volume_row, targets


def service_of_instance(session: Session, instance_id: int) -> tuple[int, int] | None:
    """(service row id, instance number) of an instance row."""
    row = session.execute(
        select(InstanceRow.service_id, InstanceRow.number).where(InstanceRow.id == instance_id)
    ).first()
    return (row[0], row[1]) if row is not None else None


def volume_schedule(session: Session, grid: str, volume: str) -> tuple[str | None, RetentionPolicy | None]:
    grid_row = get_grid_row(session, grid)
    row = session.scalar(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume))
    if row is None:
        raise NotFound(f"Volume {volume} not found in grid {grid}")
    return row.backup_schedule, RetentionPolicy.of(row.backup_keep)


# -- restores ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestorePlan:
    """What a restore does: ``mode`` new (a Docker volume of its own, ``--as``), over (the volume
    instance's own Docker volume, staged then swapped), or move (the volume instance's data made
    anew on another node, which it then lives on: its instances start there)."""

    grid_id: int
    backup: BackupView
    repo: RepoSettings
    mode: str
    node_id: str
    node: str
    docker_volume: str
    create: VolumeSpecDoc | None
    stop: tuple[str, ...]
    volume_instance_id: str | None
    old_node_id: str | None


VolumeSpecDoc = dict[str, Any]


def _node_drivers(info: dict[str, Any]) -> set[str]:
    return {str(d.get("name")) for d in (info or {}).get("drivers") or [] if isinstance(d, dict)}


def _node_row(session: Session, grid_row: GridRow, name: str) -> NodeRow:
    row = session.scalar(select(NodeRow).where(NodeRow.grid_id == grid_row.id, NodeRow.name == name))
    if row is None:
        raise NotFound(f"Node {name} not found in grid {grid_row.name}")
    return row


def _restore_node(
    session: Session, grid_row: GridRow, to: str | None, home: NodeRow | None, backup: BackupView, driver: str
) -> NodeRow:
    if to is not None:
        node = _node_row(session, grid_row, to)
    elif home is not None:
        node = home
    else:
        node = _node_row(session, grid_row, backup.node)
    if node.status != "online":
        raise Conflict(f"Node {node.name} is offline: restore onto an online node (--to NODE)")
    if driver not in _node_drivers(node.info):
        raise Conflict(
            f"Node {node.name} has no volume driver {driver}: restore onto a node that has it (--to NODE)"
        )
    return node


def _running_users(session: Session, node_id: str, docker_volume: str) -> tuple[list[str], list[str]]:
    """The containers on the node that mount the Docker volume; those whose instance runs."""
    users = _mounting(session, node_id).get(docker_volume, [])
    running = [
        name
        for name, instance_id in users
        if session.scalar(select(InstanceRow.state).where(InstanceRow.id == instance_id))
        in ("running", "created", "restarting", "scheduled")
    ]
    return [name for name, _ in users], running


def restore_plan(
    session: Session, grid: str, backup_id: str, *, to: str | None, as_volume: str | None, stop: bool
) -> RestorePlan:
    from moorage.model.backup import docker_volume_name_error, restore_target_error
    from moorage.model.docker_labels import GRID as GRID_LABEL
    from moorage.model.docker_labels import VOLUME as VOLUME_LABEL
    from moorage.model.docker_labels import VOLUME_INSTANCE as VI_LABEL

    backup = find_backup(session, grid, backup_id)
    repo = repo_settings(session, grid)
    grid_row = get_grid_row(session, grid)
    volume_row = session.scalar(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == backup.volume)
    )
    vi = session.get(VolumeInstanceRow, backup.volume_instance_id) if backup.volume_instance_id else None
    if vi is not None and vi.state == VolumeInstanceState.REMOVING.value:
        vi = None
    home = session.get(NodeRow, vi.node_id) if vi is not None else None
    driver = vi.driver if vi is not None else (volume_row.driver if volume_row is not None else "local")
    node = _restore_node(session, grid_row, to, home, backup, driver)
    plan = RestorePlan(
        grid_id=grid_row.id,
        backup=backup,
        repo=repo,
        mode="new",
        node_id=node.id,
        node=node.name,
        docker_volume="",
        create=None,
        stop=(),
        volume_instance_id=vi.id if vi is not None else None,
        old_node_id=vi.node_id if vi is not None else None,
    )
    opts = {str(k): str(v) for k, v in vi.driver_opts.items()} if vi is not None else {}
    if as_volume is not None:
        if (problem := docker_volume_name_error(as_volume)) is not None:
            raise InvalidInput.one("as", problem)
        spec = {"name": as_volume, "volume_instance_id": "", "driver": driver, "driver_opts": opts}
        return replace(plan, docker_volume=as_volume, create={**spec, "labels": {GRID_LABEL: grid}})
    if vi is None:
        raise Conflict(
            f"The volume instance backup {backup.id[:8]} was taken of is gone: restore it --as NEW_NAME"
        )
    if node.id == vi.node_id:
        users, running = _running_users(session, node.id, vi.name)
        if running and not stop:
            raise Conflict(
                f"Docker volume {vi.name} on {node.name} is in use by {', '.join(running)}: restoring over "
                "it stops that instance for the restore and starts it on the restored data; say so with "
                "--stop (or restore --as NEW_NAME, or --to another node)"
            )
        return replace(plan, mode="over", docker_volume=vi.name, stop=tuple(users))
    topology = volume_row.topology if volume_row is not None else "node"
    labels = {str(k): str(v) for k, v in (node.labels or {}).items()}
    if (problem := restore_target_error(topology, vi.zone, vi.region, node.name, labels)) is not None:
        raise Conflict(f"Backup {backup.id[:8]} cannot be restored onto {node.name}: {problem}")
    vi_labels = {GRID_LABEL: grid, VOLUME_LABEL: f"{grid}/{backup.volume}", VI_LABEL: vi.id}
    spec = {"name": vi.name, "volume_instance_id": vi.id, "driver": vi.driver, "driver_opts": opts}
    return replace(plan, mode="move", docker_volume=vi.name, create={**spec, "labels": vi_labels})


def detach_instances(session: Session, volume_instance_id: str, reason: str) -> tuple[list[int], str | None]:
    """Take the desired containers that mount the volume instance off its node (their instances
    wait, pending on that node, so nothing else places them); their service ids and that node."""
    vi = session.get(VolumeInstanceRow, volume_instance_id)
    if vi is None:
        return [], None
    users = _mounting(session, vi.node_id).get(vi.name, [])
    services: set[int] = set()
    for _, instance_id in users:
        row = session.get(InstanceRow, instance_id)
        if row is None:
            continue
        services.add(row.service_id)
        row.container, row.desired_hash, row.host_ports, row.memory, row.cpus = None, None, None, None, None
        row.state, row.reason, row.updated_at = "pending", reason, datetime.now(UTC)
    return sorted(services), vi.node_id


def rehome_volume_instance(session: Session, volume_instance_id: str, node_id: str) -> None:
    """The volume instance now lives on ``node_id`` (its data was restored there)."""
    vi = session.get(VolumeInstanceRow, volume_instance_id)
    node = session.get(NodeRow, node_id)
    if vi is None or node is None:
        raise NotFound("The volume instance or its new node was removed during the restore")
    labels = node.labels or {}
    vi.node_id, vi.state, vi.error = node_id, VolumeInstanceState.PRESENT.value, None
    vi.zone, vi.region = labels.get("zone"), labels.get("region")
    vi.updated_at = datetime.now(UTC)


def scratch_node(session: Session, backup: BackupView, grid_row: GridRow) -> NodeRow:
    """Where a verify restores: an online node with the volume's driver other than the one the
    backup was taken on (that one when it is the only such node)."""
    driver = "local"
    vi = session.get(VolumeInstanceRow, backup.volume_instance_id) if backup.volume_instance_id else None
    if vi is not None:
        driver = vi.driver
    nodes = session.scalars(
        select(NodeRow)
        .where(NodeRow.grid_id == grid_row.id, NodeRow.status == "online")
        .order_by(NodeRow.name)
    ).all()
    able = [n for n in nodes if driver in _node_drivers(n.info)]
    if not able:
        raise Conflict(f"No online node has volume driver {driver} to verify backup {backup.id[:8]} on")
    others = [n for n in able if n.name != backup.node]
    return (others or able)[0]


def job_node(session: Session, job_id: str) -> str | None:
    return session.scalar(select(BackupJobRow.node_id).where(BackupJobRow.id == job_id))


def running_job_view(session: Session, job_id: str, node_id: str) -> JobView | None:
    row = session.scalar(
        select(BackupJobRow).where(
            BackupJobRow.id == job_id, BackupJobRow.state == RUNNING, BackupJobRow.node_id == node_id
        )
    )
    if row is None:
        return None
    grid = session.get(GridRow, row.grid_id)
    return _job_view(row, grid.name if grid is not None else "")


def job_summary(session: Session, job_id: str, summary: dict[str, Any]) -> None:
    row = session.get(BackupJobRow, job_id)
    if row is not None:
        row.progress = {**row.progress, **summary, "finished": True}


def volume_instance_driver(session: Session, volume_instance_id: str) -> str | None:
    return session.scalar(select(VolumeInstanceRow.driver).where(VolumeInstanceRow.id == volume_instance_id))


# -- schedules --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueBackup:
    grid: str
    volume: str
    volume_id: int
    slot: datetime
    keep: RetentionPolicy | None
    previous: datetime | None = None  # the last slot run before (mark_slot claims from it)


def _volume_row(session: Session, grid: str, volume: str) -> VolumeRow:
    grid_row = get_grid_row(session, grid)
    row = session.scalar(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume))
    if row is None:
        raise NotFound(f"Volume {volume} not found in grid {grid}")
    return row


def set_schedule(
    session: Session,
    grid: str,
    volume: str,
    schedule: str | None,
    keep: RetentionPolicy | None,
    now: datetime,
) -> None:
    """Back the volume up on ``schedule`` (None: no more), keeping ``keep`` after each. The slot
    before now counts as done: a new schedule waits for its next time."""
    from moorage.model.backup import last_slot, schedule_error

    if schedule is not None and (problem := schedule_error(schedule)) is not None:
        raise InvalidInput.one("backup_schedule", problem)
    row = _volume_row(session, grid, volume)
    row.backup_schedule = schedule
    row.backup_keep = keep.as_dict() if keep is not None else None
    row.backup_last_slot = last_slot(schedule, now) if schedule is not None else None
    row.updated_at = now


def due_backups(session: Session, now: datetime) -> list[DueBackup]:
    """Scheduled volumes whose latest slot has not run: one run each, however many slots passed."""
    from moorage.model.backup import last_slot

    rows = session.execute(
        select(VolumeRow, GridRow.name)
        .join(GridRow, GridRow.id == VolumeRow.grid_id)
        .where(VolumeRow.backup_schedule.is_not(None))
    ).all()
    due = []
    for row, grid in rows:
        slot = last_slot(str(row.backup_schedule), now)
        if row.backup_last_slot is None or row.backup_last_slot < slot:
            due.append(
                DueBackup(
                    grid, row.name, row.id, slot, RetentionPolicy.of(row.backup_keep), row.backup_last_slot
                )
            )
    return due


def mark_slot(session: Session, volume_id: int, slot: datetime, before: datetime | None) -> bool:
    """Claim the scheduled run of ``slot``: True once, for the first to move the volume's last
    slot from ``before`` to it (a run is started once, whichever master looked)."""
    claimed = session.execute(
        update(VolumeRow)
        .where(
            VolumeRow.id == volume_id,
            VolumeRow.backup_last_slot.is_(None) if before is None else VolumeRow.backup_last_slot == before,
        )
        .values(backup_last_slot=slot)
    )
    return cast(CursorResult[Any], claimed).rowcount == 1


def volume_backup_status(session: Session, grid: str, volume: str) -> dict[str, Any]:
    row = _volume_row(session, grid, volume)
    last, checked = last_backups(session, row.grid_id, volume)
    return {
        "volume": volume,
        "schedule": row.backup_schedule,
        "keep": (RetentionPolicy.of(row.backup_keep) or RetentionPolicy()).text()
        if row.backup_keep
        else None,
        "last_slot": row.backup_last_slot,
        "last_backup": {"id": last.id, "time": last.time} if last is not None else None,
        "last_verify": (
            {"id": checked.id, "verified_at": checked.verified_at, "error": checked.verify_error}
            if checked is not None
            else None
        ),
    }

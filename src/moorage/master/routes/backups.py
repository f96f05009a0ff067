"""Backups of volume data: a grid's repository (``PUT /v1/grids/{grid}/backup-repo``), backups
(``/v1/backups/{grid}``), restores, verifies, retention, and the jobs agents run for them
(``/v1/backup-jobs/{grid}``). The work is ``master/backups.py``'s; routes read and answer."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from moorage.errors import InvalidInput
from moorage.master.backup_schemas import (
    BackupCreate,
    BackupIdPath,
    BackupList,
    BackupOut,
    ForgetIn,
    ForgetOut,
    JobIdPath,
    JobList,
    JobOut,
    RepoIn,
    RepoOut,
    RestoreIn,
    ScheduleIn,
    VolumeBackupsOut,
    backup_out,
    job_out,
    snapshot_ref,
)
from moorage.master.routing import api_router
from moorage.master.schemas import GridPath, VolumePath
from moorage.master.state import State
from moorage.model.backup import Quiesce, RetentionPolicy
from moorage.store import backups as store

__all__ = ["router"]

router = api_router("/v1", "backups")


@router.put("/grids/{grid}/backup-repo")
async def set_repo(grid: GridPath, body: RepoIn, state: State) -> RepoOut:
    """Where the grid's backups go: a restic repository, opened, or made when there is none.
    The password is kept for the agents and never returned."""
    made = await state.backups.set_repository(grid, body.url, body.password)
    return RepoOut(grid=grid, url=body.url, initialized=made)


@router.post("/backups/{grid}", status_code=201)
async def create(grid: GridPath, body: BackupCreate, state: State) -> JobList:
    """Back up a volume's Docker volumes: one job per node and service instance (one pause
    window), one snapshot per Docker volume."""
    jobs = await state.backups.start_backup(
        grid, body.volume, body.docker_volumes, Quiesce(body.quiesce), body.pause_limit
    )
    return JobList(jobs=[job_out(j) for j in jobs])


@router.get("/backups/{grid}")
async def index(grid: GridPath, state: State, volume: str | None = None) -> BackupList:
    views = await state.db.read(lambda session: store.list_backups(session, grid, volume))
    return BackupList(backups=[backup_out(v) for v in views])


@router.get("/backups/{grid}/{backup_id}")
async def show(grid: GridPath, backup_id: BackupIdPath, state: State) -> BackupOut:
    return backup_out(await state.db.read(lambda session: store.find_backup(session, grid, backup_id)))


@router.post("/backups/{grid}/{backup_id}/restore", status_code=201)
async def restore(grid: GridPath, backup_id: BackupIdPath, body: RestoreIn, state: State) -> JobOut:
    job = await state.backups.start_restore(
        grid, backup_id, to=body.to, as_volume=body.as_volume, stop=body.stop
    )
    return job_out(job)


@router.post("/backups/{grid}/{backup_id}/verify", status_code=201)
async def verify(grid: GridPath, backup_id: BackupIdPath, state: State) -> JobOut:
    return job_out(await state.backups.start_verify(grid, backup_id))


@router.post("/backup-forget/{grid}")
async def forget(grid: GridPath, body: ForgetIn, state: State) -> ForgetOut:
    """restic's retention policy over the volume's snapshots (per Docker volume); what goes."""
    policy = RetentionPolicy(
        last=body.keep_last,
        hourly=body.keep_hourly,
        daily=body.keep_daily,
        weekly=body.keep_weekly,
        monthly=body.keep_monthly,
        yearly=body.keep_yearly,
    )
    result = await state.backups.forget(grid, body.volume, policy, dry_run=body.dry_run)
    return ForgetOut(
        dry_run=result.dry_run,
        keep=[snapshot_ref(s) for s in result.keep],
        remove=[snapshot_ref(s) for s in result.remove],
    )


@router.get("/backup-jobs/{grid}")
async def jobs(grid: GridPath, state: State) -> JobList:
    return JobList(jobs=[job_out(j) for j in await state.db.read(lambda s: store.list_jobs(s, grid))])


@router.get("/backup-jobs/{grid}/{job_id}")
async def job(grid: GridPath, job_id: JobIdPath, state: State) -> JobOut:
    return job_out(await state.db.read(lambda session: store.get_job(session, grid, job_id)))


@router.put("/volume-backups/{grid}/{name}")
async def set_schedule(grid: GridPath, name: VolumePath, body: ScheduleIn, state: State) -> VolumeBackupsOut:
    """The volume's backup schedule (cron, UTC) and the retention applied after each run."""
    keep = None
    if body.backup_keep is not None:
        try:
            keep = RetentionPolicy.parse(body.backup_keep)
        except ValueError as err:
            raise InvalidInput.one("backup_keep", str(err)) from err
    now = datetime.now(UTC)

    def work(session: Session) -> VolumeBackupsOut:
        store.set_schedule(session, grid, name, body.backup_schedule, keep, now)
        return VolumeBackupsOut.model_validate(store.volume_backup_status(session, grid, name))

    return await state.db.run(work)


@router.get("/volume-backups/{grid}/{name}")
async def volume_status(grid: GridPath, name: VolumePath, state: State) -> VolumeBackupsOut:
    """The volume's schedule, its last backup and its last verify."""
    return await state.db.read(
        lambda session: VolumeBackupsOut.model_validate(store.volume_backup_status(session, grid, name))
    )

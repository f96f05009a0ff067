"""Backup jobs, from the API to the agents and back.

    POST backup  ─▶ targets (volume instances, their nodes, the containers mounting each)
                 ─▶ one job per node and service instance (one pause window) ─▶ backup_run
    POST restore ─▶ plan (new | over | move) ─▶ restore_run ─▶ [move: the instances leave the old
                    node, the volume instance lives on the new one, their services deploy again]
    POST verify  ─▶ restore_run into a scratch volume on another node ─▶ verified-at | its error
    job_progress ─▶ the job's row;  job_done ─▶ snapshots recorded (each one's full id and time
                 as the agent read them off a repository on a path of its node; else from restic)

restic runs here too, for what concerns the repository and not a volume's data: init and open
(``grid backup-repo set``), the snapshots' full ids of a repository the agent cannot read as a
folder (``sftp:``, ``s3:``, ``rest:``), ``forget``. The password is read from the
store for each call and goes to restic in its environment, to agents in their messages, and
nowhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from anyio import to_thread
from pydantic import SecretStr
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput
from moorage.master.agent_links import AgentLinks
from moorage.master.leadership import Leadership
from moorage.model.backup import Quiesce, RetentionPolicy, repository_error, restic_host, snapshot_tags
from moorage.protocol import (
    BackupRun,
    BackupVolume,
    JobDone,
    JobProgress,
    RepositoryWire,
    RestoreRun,
    VolumeSpec,
)
from moorage.restic.command import Repository
from moorage.store import backups as store
from moorage.store.database import Database
from moorage.store.grids import get_grid_row
from moorage.store.node_loss import LOST_CAUSE

__all__ = ["BackupJobs", "ForgetResult"]

log = logging.getLogger("moorage.master.backups")

DEFAULT_PAUSE_LIMIT = 600.0
DETACH_TIMEOUT = 60.0
SCHEDULE_INTERVAL = 20.0  # seconds between looks at the schedules
MASTER_GONE = "the master that ran the job stopped during it; run it again"


@dataclass(frozen=True)
class ForgetResult:
    keep: list[dict[str, Any]]
    remove: list[dict[str, Any]]
    dry_run: bool


def _wire(repo: store.RepoSettings) -> RepositoryWire:
    return RepositoryWire(url=repo.url, password=SecretStr(repo.password))


class BackupJobs:
    """Backup, restore and verify jobs, and the schedules. With several masters: a job's agent
    answers the master that started it (``master_id`` on the job); the schedules are run by the
    leader, each slot claimed once; the leader fails the jobs of masters that are gone."""

    def __init__(self, db: Database, links: AgentLinks, leadership: Leadership) -> None:
        self.db = db
        self.links = links  # the agents, connected here or through their master
        self.hub = links.hub
        self.leadership = leadership
        self.master_id = leadership.me.id
        self.deployer: Any = None  # set by app.py: restores that move a volume instance deploy again
        # set by app.py: the restores a node's declared loss started end there (master/node_loss.py)
        self.lost_restore_ended: Callable[[str, str | None], Awaitable[None]] | None = None
        self._followups: dict[str, store.RestorePlan] = {}  # restore job id -> its plan
        self._verifies: dict[str, str] = {}  # verify job id -> backup id
        self._tasks: set[asyncio.Task[None]] = set()
        self._scheduled: dict[str, tuple[str, str, RetentionPolicy | None, set[str]]] = {}
        self._schedule_loop: asyncio.Task[None] | None = None
        self.schedule_interval = SCHEDULE_INTERVAL

    async def start(self) -> None:
        """Jobs a previous master left running are over: their agents' answers went to it. Then
        the schedules are looked at (a slot missed while no master ran runs once, now)."""
        if self.leadership.solo:  # one master on its SQLite file: every running job was its own
            await self.db.run(lambda session: store.fail_running_jobs(session, None, MASTER_GONE))
        self._schedule_loop = asyncio.create_task(self._run_schedules(), name="backup-schedules")

    async def stop(self) -> None:
        if self._schedule_loop is not None:
            self._schedule_loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._schedule_loop

    async def fail_orphans(self, live: set[str]) -> None:
        """(The leader, after each look at the masters) fail the jobs of masters that are gone."""
        failed = await self.db.fenced(self.leadership.fence).run(
            lambda session: store.fail_running_jobs(session, None, MASTER_GONE, live=live)
        )
        if failed:
            log.info("backup jobs %s failed: their master is gone", ", ".join(failed))
        for job_id in failed:
            if self.lost_restore_ended is not None:  # a lost node's restore: its hold goes
                await self.lost_restore_ended(job_id, MASTER_GONE)

    async def _run_schedules(self) -> None:
        while True:
            try:
                if self.leadership.is_leader:
                    await self.run_due(datetime.now(UTC))
            except Exception as err:  # one bad volume or a store hiccup: try again next time
                log.warning("scheduled backups: %s: %s", type(err).__name__, err)
            await asyncio.sleep(self.schedule_interval)

    async def run_due(self, now: datetime) -> list[str]:
        """Start the backups whose slot came; the retention is applied once each run is done."""
        started = []
        for due in await self.db.read(lambda session: store.due_backups(session, now)):
            if not await self.db.fenced(self.leadership.fence).run(partial(_mark_slot, due)):
                continue  # another master ran this slot
            try:
                jobs = await self.start_backup(due.grid, due.volume)
            except Exception as err:
                log.warning("scheduled backup of %s/%s not started: %s", due.grid, due.volume, err)
                continue
            run = {job.id for job in jobs}
            for job in jobs:
                self._scheduled[job.id] = (due.grid, due.volume, due.keep, run)
            started += sorted(run)
            log.info(
                "scheduled backup of %s/%s (slot %s): jobs %s", due.grid, due.volume, due.slot, sorted(run)
            )
        return started

    async def _after_scheduled(self, job_id: str) -> None:
        found = self._scheduled.pop(job_id, None)
        if found is None:
            return
        grid, volume, keep, run = found
        run.discard(job_id)
        if run or keep is None:
            return
        try:
            result = await self.forget(grid, volume, keep, dry_run=False)
            log.info(
                "retention of %s/%s (%s): %d kept, %d removed",
                grid,
                volume,
                keep.text(),
                len(result.keep),
                len(result.remove),
            )
        except Exception as err:
            log.warning("retention of %s/%s failed: %s", grid, volume, err)

    # -- the repository ----------------------------------------------------------------------------

    async def set_repository(self, grid: str, url: str, password: str) -> bool:
        """Open (or initialise) the repository at ``url``, then keep it for the grid; True: made now."""
        if (problem := repository_error(url)) is not None:
            raise InvalidInput.one("url", problem)
        if not password:
            raise InvalidInput.one("password", "give the repository's password (--password-file F)")
        await self.db.read(lambda session: get_grid_row(session, grid))  # 404 first
        made = await to_thread.run_sync(Repository(url, password).ensure)
        await self.db.run(lambda session: store.set_backup_repo(session, grid, url, password))
        log.info("grid %s backs up to %s (%s)", grid, url, "initialised" if made else "opened")
        return made

    async def _repository(self, grid: str) -> Repository:
        repo = await self.db.read(lambda session: store.repo_settings(session, grid))
        return Repository(repo.url, repo.password)

    # -- backup ------------------------------------------------------------------------------------

    async def start_backup(
        self,
        grid: str,
        volume: str,
        docker_volumes: Sequence[str] = (),
        quiesce: Quiesce = Quiesce.PAUSE,
        pause_limit: float = DEFAULT_PAUSE_LIMIT,
    ) -> list[store.JobView]:
        def plan(session: Session) -> tuple[list[tuple[store.JobView, BackupRun]], list[str]]:
            repo = store.repo_settings(session, grid)
            grid_row, _volume_row, targets = store.backup_targets(session, grid, volume, docker_volumes)
            offline = sorted({t.node for t in targets if not t.node_online})
            if offline:
                raise Conflict(
                    f"Node(s) {', '.join(offline)} holding Docker volumes of {volume} are offline: "
                    "back up when they are online, or name the other Docker volumes"
                )
            groups: dict[tuple[str, tuple[str, ...]], list[store.BackupTarget]] = {}
            for target in targets:
                key = (target.node_id, target.containers or (target.docker_volume,))
                groups.setdefault(key, []).append(target)
            now = datetime.now(UTC)
            made = []
            parents = {
                t.docker_volume: store.parent_backup(session, grid_row.id, t.docker_volume) for t in targets
            }
            for (node_id, _), members in groups.items():
                job_id = store.new_job_id()
                run = BackupRun(
                    job=job_id,
                    repository=_wire(repo),
                    volumes=[
                        BackupVolume(
                            docker_volume=t.docker_volume,
                            host=restic_host(grid, t.docker_volume),
                            tags=snapshot_tags(
                                grid=grid,
                                volume=volume,
                                docker_volume=t.docker_volume,
                                node=t.node,
                                time=now,
                                group=job_id,
                            ),
                            parent=(parents[t.docker_volume] or (None, None))[0],
                            parent_manifest=(parents[t.docker_volume] or (None, None))[1],
                        )
                        for t in members
                    ],
                    quiesce=quiesce.value,
                    containers=sorted({c for t in members for c in t.containers}),
                    pause_limit=pause_limit,
                )
                job = store.create_job(
                    session,
                    grid_row,
                    job_id=job_id,
                    master_id=self.master_id,
                    kind="backup",
                    volume=volume,
                    node_id=node_id,
                    node=members[0].node,
                    docker_volumes=[t.docker_volume for t in members],
                    details={
                        "quiesce": quiesce.value,
                        "pause_limit": pause_limit,
                        "containers": run.containers,
                        "volume_instances": {t.docker_volume: t.volume_instance_id for t in members},
                    },
                )
                made.append((job, run))
            return made, []

        made, _ = await self.db.run(plan)
        for job, run in made:
            await self._send(job, run)
        return [job for job, _ in made]

    async def _send(self, job: store.JobView, message: BackupRun | RestoreRun) -> None:
        node_id = await self.db.read(lambda session: store.job_node(session, job.id))
        try:
            conn = await self.links.reach(node_id or "")
        except Conflict as err:  # its master would not or could not link to it
            await self._finish(job.id, f"could not reach node {job.node}: {err.message}")
            return
        if conn is None:
            await self._finish(job.id, f"node {job.node} is not connected to any master")
            return
        self.links.sent_job(conn, job.id)  # before it goes: its end may come back at once
        try:
            await conn.send(message.model_dump_json())
        except Exception as err:  # the connection is going away
            await self._finish(job.id, f"could not reach node {job.node}: {type(err).__name__}")

    async def _finish(self, job_id: str, error: str | None, message: str | None = None) -> None:
        await self.db.run(lambda session: store.finish_job(session, job_id, error, message))

    # -- restore and verify ------------------------------------------------------------------------

    async def start_restore(
        self, grid: str, backup_id: str, *, to: str | None, as_volume: str | None, stop: bool
    ) -> store.JobView:
        def plan(session: Session) -> tuple[store.JobView, store.RestorePlan]:
            restore = store.restore_plan(session, grid, backup_id, to=to, as_volume=as_volume, stop=stop)
            job = store.create_job(
                session,
                get_grid_row(session, grid),
                master_id=self.master_id,
                kind="restore",
                volume=restore.backup.volume,
                node_id=restore.node_id,
                node=restore.node,
                docker_volumes=[restore.docker_volume],
                backup_id=restore.backup.id,
                details={"mode": restore.mode, "stop": list(restore.stop), "size": restore.backup.size},
            )
            return job, restore

        job, restore = await self.db.run(plan)
        if restore.mode == "move":
            self._followups[job.id] = restore
        await self._send(
            job,
            RestoreRun(
                job=job.id,
                repository=_wire(restore.repo),
                snapshot=restore.backup.id,
                docker_volume=restore.docker_volume,
                create=VolumeSpec.model_validate(restore.create) if restore.create is not None else None,
                replace=restore.mode == "over",
                stop=list(restore.stop),
            ),
        )
        return job

    async def start_verify(self, grid: str, backup_id: str) -> store.JobView:
        def plan(session: Session) -> tuple[store.JobView, RestoreRun]:
            backup = store.find_backup(session, grid, backup_id)
            repo = store.repo_settings(session, grid)
            grid_row = get_grid_row(session, grid)
            node = store.scratch_node(session, backup, grid_row)
            job_id = store.new_job_id()
            scratch = f"moorage-verify-{job_id}"
            driver = "local"
            if backup.volume_instance_id:
                driver = store.volume_instance_driver(session, backup.volume_instance_id) or "local"
            job = store.create_job(
                session,
                grid_row,
                job_id=job_id,
                master_id=self.master_id,
                kind="verify",
                volume=backup.volume,
                node_id=node.id,
                node=node.name,
                docker_volumes=[scratch],
                backup_id=backup.id,
                details={"size": backup.size},
            )
            run = RestoreRun(
                job=job_id,
                repository=_wire(repo),
                snapshot=backup.id,
                docker_volume=scratch,
                create=VolumeSpec(name=scratch, volume_instance_id="", driver=driver, labels={}),
                scratch=True,
                expect=(backup.manifest or {}).get("rows"),
            )
            return job, run

        job, run = await self.db.run(plan)
        self._verifies[job.id] = job.backup_id or ""
        await self._send(job, run)
        return job

    # -- forget ------------------------------------------------------------------------------------

    async def forget(self, grid: str, volume: str, policy: RetentionPolicy, *, dry_run: bool) -> ForgetResult:
        if policy.empty:
            raise InvalidInput.one(
                "keep", "give at least one of --keep-last, --keep-daily, --keep-weekly, --keep-monthly"
            )
        repository = await self._repository(grid)
        tags = [f"grid={grid}", f"volume={volume}"]
        groups = await to_thread.run_sync(lambda: repository.forget(tags, policy, dry_run=dry_run))
        keep = [s for g in groups for s in g.get("keep") or []]
        remove = [s for g in groups for s in g.get("remove") or []]
        if not dry_run:
            grid_id = await self.db.read(lambda session: get_grid_row(session, grid).id)
            gone = [str(s.get("id")) for s in remove]
            await self.db.run(lambda session: store.forget_backups(session, grid_id, gone))
        return ForgetResult(keep=keep, remove=remove, dry_run=dry_run)

    # -- what agents say ---------------------------------------------------------------------------

    async def from_agent(self, node_id: str, msg: JobProgress | JobDone) -> None:
        if isinstance(msg, JobProgress):
            progress = msg.model_dump(exclude={"type", "job"})
            await self.db.run(lambda session: store.job_progress(session, msg.job, progress))
            return
        task = asyncio.create_task(self._done(node_id, msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _done(self, node_id: str, msg: JobDone) -> None:
        try:
            job = await self.db.read(lambda session: store.running_job_view(session, msg.job, node_id))
            if job is None:
                return  # not this node's, or over already (failed when the node went away)
            if job.details.get("cause") == LOST_CAUSE:
                await self._lost_restore_done(job, msg)
                return
            if msg.error is not None:
                self._followups.pop(msg.job, None)
                self._scheduled.pop(msg.job, None)  # no retention after a run that failed
                if job.kind == "verify":
                    backup_id = job.backup_id or ""
                    named = msg.error.startswith(("manifest differs", "manifest missing"))
                    error = msg.error if named else f"restore failed: {msg.error}"
                    await self.db.run(lambda session: store.set_verified(session, backup_id, error))
                    await self._finish(msg.job, error)
                    return
                await self._finish(msg.job, msg.error)
                return
            summary = {"seconds": msg.seconds, "bytes": msg.bytes, "files": msg.files}
            if job.kind == "backup":
                await self._record_snapshots(job, msg)
            elif job.kind == "verify":
                backup_id = job.backup_id or ""
                await self.db.run(lambda session: store.set_verified(session, backup_id, None))
            elif msg.job in self._followups:
                await self._move_instances(self._followups.pop(msg.job))
            await self.db.run(lambda session: store.job_summary(session, msg.job, summary))
            await self._finish(msg.job, None)
            await self._after_scheduled(msg.job)
        except Exception as err:  # a job must end, whatever failed here
            log.warning("job %s could not be completed: %s: %s", msg.job, type(err).__name__, err)
            await self._finish(msg.job, f"the master could not complete the job: {err}")

    async def _lost_restore_done(self, job: store.JobView, msg: JobDone) -> None:
        """A restore of a lost node's data ended: the job's row, then what follows it (node_loss)."""
        if msg.error is None:
            summary = {"seconds": msg.seconds, "bytes": msg.bytes, "files": msg.files}
            await self.db.run(lambda session: store.job_summary(session, msg.job, summary))
        await self._finish(msg.job, msg.error)
        if self.lost_restore_ended is not None:
            await self.lost_restore_ended(msg.job, msg.error)

    async def send_restore(self, grid: str, job_id: str, run: RestoreRun) -> None:
        """Send a restore job recorded elsewhere (a node's declared loss) to its node's agent; a
        node not connected here fails the job (and so ends it)."""
        job = await self.db.read(lambda session: store.get_job(session, grid, job_id))
        await self._send(job, run)
        if self.lost_restore_ended is not None:
            failed = await self.db.read(lambda session: store.get_job(session, grid, job_id))
            if failed.state == "failed":
                await self.lost_restore_ended(job_id, failed.error or "the job could not be sent")

    async def _record_snapshots(self, job: store.JobView, msg: JobDone) -> None:
        full: dict[str, dict[str, Any]] = {}
        if any(t.snapshot_id is None or t.time is None for t in msg.snapshots):
            # the agent could not read them off the repository (not on a path of its node): restic can
            repository = await self._repository(job.grid)
            listed = await to_thread.run_sync(lambda: repository.snapshots([f"group={job.id}"]))
            full = {str(s.get("short_id")): s for s in listed}
        grid_id = await self.db.read(lambda session: get_grid_row(session, job.grid).id)
        instances = job.details.get("volume_instances") or {}

        def record(session: Session) -> None:
            for taken in msg.snapshots:
                snapshot = full.get(taken.snapshot[:8]) or {}
                snapshot_id = taken.snapshot_id or str(snapshot.get("id") or taken.snapshot)
                when = taken.time or _time(snapshot.get("time")) or datetime.now(UTC)
                store.record_backup(
                    session,
                    grid_id,
                    id=snapshot_id,
                    volume=job.volume,
                    docker_volume=taken.docker_volume,
                    volume_instance_id=instances.get(taken.docker_volume),
                    node=job.node,
                    group_id=job.id,
                    time=when,
                    size=taken.size,
                    files=taken.files,
                    added=taken.added,
                    duration=taken.duration,
                    quiesce=str(job.details.get("quiesce", "pause")),
                    manifest={"rows": taken.manifest} if taken.manifest is not None else None,
                )

        await self.db.run(record)

    async def _move_instances(self, plan: store.RestorePlan) -> None:
        """The data is on the new node: the instances leave the old one (their containers gone
        there first: never two of one instance), then the volume instance lives on the new node
        and their services deploy again, which starts them there on the restored data."""
        vi_id = plan.volume_instance_id or ""
        reason = f"restoring its volume from backup {plan.backup.id[:8]} on {plan.node}"
        services, old_node = await self.db.run(lambda session: store.detach_instances(session, vi_id, reason))
        if old_node is not None:
            await self.links.push_and_wait(old_node, DETACH_TIMEOUT)
        await self.db.run(lambda session: store.rehome_volume_instance(session, vi_id, plan.node_id))
        if services and self.deployer is not None:
            grid = plan.backup.grid
            await self.deployer.deploy(grid, services, f"{grid}/restore {plan.backup.id[:8]}")

    async def connection_lost(self, node_id: str, name: str) -> None:
        error = f"the agent of node {name} went away during the job (a paused container is unpaused by its watchdog)"
        await self._lost(node_id, error)

    async def link_lost(self, node_id: str, name: str, why: str, jobs: set[str]) -> None:
        """The link to node ``name`` through its master ended: the jobs this master sent over it
        and heard no end of fail (an answer that comes later, to that master, finds them over)."""
        if jobs:
            await self._lost(node_id, f"{why} (a paused container is unpaused by its agent's watchdog)", jobs)

    async def _lost(self, node_id: str, error: str, only: set[str] | None = None) -> None:
        failed = await self.db.run(
            lambda session: store.fail_running_jobs(session, node_id, error, only=only)
        )
        for job_id in failed:
            self._followups.pop(job_id, None)
            self._verifies.pop(job_id, None)
            self._scheduled.pop(job_id, None)
            if self.lost_restore_ended is not None:  # no-op for a job that holds nothing
                await self.lost_restore_ended(job_id, error)


def _mark_slot(due: store.DueBackup, session: Session) -> bool:
    return store.mark_slot(session, due.volume_id, due.slot, due.previous)


def _time(value: object) -> datetime | None:
    """restic's RFC 3339 time (nanoseconds, ``Z`` or an offset) as an aware datetime."""
    if not isinstance(value, str):
        return None
    found = re.match(r"^([0-9-]+T[0-9:]+)(?:\.([0-9]+))?(Z|[+-][0-9:]+)$", value)
    if found is None:
        return None
    whole, fraction, zone = found.groups()
    text = (
        whole + (f".{fraction[:6].ljust(6, '0')}" if fraction else "") + ("+00:00" if zone == "Z" else zone)
    )
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None

"""``moorage node declare-lost NODE``: the operator says a node is gone, and each volume's declared
policy (``on_node_lost``, ``model.node_loss``) decides what becomes of the data it held.

    declare(node) ──leader only, one fenced unit of work (store/node_loss.declare_lost)──▶
        node lost; per volume instance on it: wait | restore (job recorded, data held) |
        recreate (stale copy, its instances freed)
      ├─▶ the node's agent, if it is connected (--force): its desired state without those
      │   containers, and its report waited for (never two containers of one instance)
      ├─▶ recreate: the services deploy (their instances start EMPTY elsewhere)
      └─▶ restore: a restore job to the node restored onto (BackupJobs sends it)
    restore ended ──▶ done: the volume instance lives there, the lost node's copy is stale,
                       the services deploy (their instances start on the restored data)
                  └─▶ failed: the hold goes, the instances wait for the node again

Once-only work: declarations and what follows them run on the leader only (another master
answers 409), and their writes carry the leader's fence (``Leadership.fence``). The agent of a
node that comes back is told only what its desired state says: superseded containers are
removed there without ever starting (their restart policy is the agent's, ``agent/engine.py``),
their Docker volumes stay, stale, until ``moorage volume purge``.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from pydantic import SecretStr
from sqlalchemy.orm import Session

from moorage.errors import MoorageError
from moorage.master.agent_links import AgentLinks
from moorage.master.backups import BackupJobs
from moorage.master.deploy_gate import DeployGate
from moorage.master.leadership import Leadership
from moorage.model.node_loss import aged
from moorage.protocol import RepositoryWire, RestoreRun, VolumeSpec
from moorage.store import node_loss as store
from moorage.store.backups import repo_settings
from moorage.store.database import Database
from moorage.store.tables import BackupJobRow, GridRow

__all__ = ["DETACH_TIMEOUT", "NodeLoss"]

log = logging.getLogger("moorage.master.node_loss")

DETACH_TIMEOUT = 60.0  # how long a connected lost node (--force) gets to remove its containers


class NodeLoss:
    def __init__(
        self, db: Database, links: AgentLinks, gate: DeployGate, jobs: BackupJobs, leadership: Leadership
    ) -> None:
        self.db = db
        self.fenced = db.fenced(leadership.fence)
        self.links = links  # the agents, connected here or to another live master
        self.gate = gate
        self.jobs = jobs
        self.leadership = leadership
        self._tasks: set[asyncio.Task[None]] = set()
        jobs.lost_restore_ended = self.restore_ended

    async def start(self) -> None:
        """Holds a stopped master's restores left (their jobs were failed at start) are released:
        their instances wait for the lost node again, and say so."""
        for job_id in await self.db.read(store.orphaned_holds):
            await self.db.run(
                partial(
                    _failed,
                    job_id=job_id,
                    error="the master stopped during the restore; declare the node lost again",
                )
            )

    async def declare(self, grid: str, name: str, *, force: bool, actor: str | None) -> store.Declared:
        self.gate.require_leading()  # the leader declares nodes lost and runs what follows
        try:
            targets = await self._targets(grid, name)
        except MoorageError:
            raise  # the grid or node is not there: said as it is
        except Exception as err:  # the preview failed: the restores fall back to the emptiest fit
            log.warning(
                "declare-lost %s: no scheduler preview of the restores (%s: %s)",
                name,
                type(err).__name__,
                err,
            )
            targets = {}
        connected = self.links.connected_ids()
        declared = await self.fenced.run(
            lambda session: store.declare_lost(
                session,
                grid,
                name,
                force=force,
                connected=connected,
                actor=actor,
                master_id=self.jobs.master_id,  # its agents' answers come here; orphaned if it dies
                targets=targets,
            )
        )
        for outcome in declared.outcomes:
            log.info("node %s declared lost: %s", name, outcome.message)
        if declared.services or declared.restores:
            await self._detach(declared.node_id)
        if declared.services:
            await self.gate.deploy(grid, sorted(declared.services), f"{grid}/declare-lost {name}")
        if declared.restores:
            repo = await self.db.read(lambda session: repo_settings(session, grid))
            wire = RepositoryWire(url=repo.url, password=SecretStr(repo.password))
            for restore in declared.restores:
                run = RestoreRun(
                    job=restore.job,
                    repository=wire,
                    snapshot=restore.backup,
                    docker_volume=restore.docker_volume,
                    create=VolumeSpec.model_validate(restore.create),
                    replace=False,
                    stop=[],
                )
                await self.jobs.send_restore(grid, restore.job, run)
        self.gate.nodes_changed()  # the reasons of what waits on it change
        return declared

    async def _targets(self, grid: str, name: str) -> dict[str, tuple[str | None, str | None]]:
        """Where each restore goes: the node the scheduler picks for its instance (its services
        planned again, recording nothing, with the lost node drained and that data free to go with
        them, except to nodes that hold a Docker volume of its name), as ``node drain`` picks where
        data moves; or None and the scheduler's reason when no node fits."""
        node_id, candidates, taken = await self.db.read(
            lambda session: store.restore_candidates(session, grid, name)
        )
        if node_id is None or not candidates:
            return {}
        lifted = {c.docker_volume: taken.get(c.docker_volume, frozenset()) for c in candidates}
        service_ids = sorted({c.service_row_id for c in candidates})
        plans = await self.gate.preview(grid, service_ids, drain=frozenset({node_id}), lifted=lifted)
        items = {(plan.service_row_id, item.number): item for plan in plans for item in plan.instances}
        targets: dict[str, tuple[str | None, str | None]] = {}
        for candidate in candidates:
            item = items.get((candidate.service_row_id, candidate.number))
            if item is not None and item.kind in ("start", "replace") and item.node_id not in (None, node_id):
                targets[candidate.docker_volume] = (item.node_id, None)
            else:
                why = aged(item.reason) if item is not None else None
                targets[candidate.docker_volume] = (None, why or "its instance is not planned")
        return targets

    async def _detach(self, node_id: str) -> None:
        """A lost node whose agent is still connected (--force) removes the superseded containers
        before anything starts elsewhere: its new desired state is pushed, its report awaited."""
        await self.links.push_and_wait(node_id, DETACH_TIMEOUT)

    async def restore_ended(self, job_id: str, error: str | None) -> None:
        """A restore job ended (BackupJobs): what follows runs as a task of its own."""
        task = asyncio.create_task(self._after_restore(job_id, error), name=f"lost-restore-{job_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after_restore(self, job_id: str, error: str | None) -> None:
        try:
            if error is not None:
                await self.fenced.run(partial(_failed, job_id=job_id, error=error))
                self.gate.nodes_changed()
                return
            services, lost, grid = await self.fenced.run(partial(_restored, job_id=job_id))
            if lost is not None:
                await self._detach(lost)
            if services and grid is not None:
                await self.gate.deploy(grid, sorted(services), f"{grid}/restore after node loss")
        except Exception as err:  # the job is over; what waits says so through its reason
            log.warning("after restore job %s: %s: %s", job_id, type(err).__name__, err)


def _failed(session: Session, *, job_id: str, error: str) -> None:
    store.restore_failed(session, job_id, error)


def _restored(session: Session, *, job_id: str) -> tuple[set[int], str | None, str | None]:
    job = session.get(BackupJobRow, job_id)
    grid = session.get(GridRow, job.grid_id) if job is not None else None
    services, lost = store.restored(session, job_id)
    return services, lost, grid.name if grid is not None else None

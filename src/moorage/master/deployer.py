"""Deployments: plan placements, then roll them out batch by batch and watch the agents converge.

deploy(services) ──plan (one transaction)──▶ deployment row, pending/failed instances recorded,
                                             scaled-down instances removed
    └─▶ roll out, per service in dependency order:
          batch 0: every instance that has no container yet, all at once
          then:    instances whose node or config changes, ``batch_size`` at a time; a batch's
                   containers run before the next batch's old ones are stopped
          each batch: record volume instances and containers ─▶ push desired state to the
                      nodes ─▶ wait until their agents report the new config running
                      (or an error reported after the push, or the batch timeout); an
                      instance whose node goes offline is still on its way, not settled
          first:   unchanged instances not running yet (a batch in flight when the master
                   stopped) are waited for before any other is touched: success means every
                   instance runs, and a failure counts only from a report made after the
                   deployment pushed (the agent retries what had failed, then reports)
          offline: an instance the scheduler keeps on an offline node (its volume instance is
                   there) is recorded ``pending`` and reported; its container there keeps its
                   old config, so the node's return changes nothing at once: once the node is
                   back, the deployer deploys that service again, and it is rolled in batches
    └─▶ deployment ``success`` or ``error`` with one line per instance that did not make it

A master that stops leaves its rollouts ``running`` (its deployer stops before the agents'
sockets close, so no node looks offline to it); the next master resumes each where it was,
once the agents are back (or after ``resume_grace``), batch by batch.

With several masters the deployer runs on the leader alone (``master/leadership.py`` starts and
stops it); ``adopt`` takes up the deployments another master recorded, and a unit of work that
finds the lease lost (``LeaseLost``, from the fenced store) leaves the deployment to the next leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Collection, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

from sqlalchemy.orm import Session

from moorage.master.planning import InstancePlan, ServicePlan, plan_services
from moorage.master.wakeups import Wakeups
from moorage.model.deployment import SUPERSEDED
from moorage.model.node_loss import aged
from moorage.model.stack import instance_label
from moorage.model.states import InstanceState
from moorage.store.database import Database
from moorage.store.deployments import (
    InstanceReport,
    UnfinishedDeployment,
    create_deployment,
    deployment_grid_id,
    deployment_services,
    finish_deployment,
    instance_reports,
    node_names,
    remove_instances,
    service_nodes,
    services_pending_on_nodes,
    unfinished_deployments,
    waiting_services,
)
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import get_grid_row
from moorage.store.masters import LeaseLost
from moorage.store.placements import mark_pending, write_placements

__all__ = ["Agents", "Deployer", "batches", "kept_while_away", "record_batch", "record_unplaced"]

log = logging.getLogger("moorage.master.deployer")

MIN_HEALTH = 0.8  # Kontena's default: keep at least 80% of a service's instances up during a rollout
BATCH_TIMEOUT = 180.0
RESCHEDULE_SETTLE = 0.5  # seconds to gather a burst of node changes before placing waiting instances
RESUME_GRACE = 15.0  # after a restart, how long a resumed rollout waits for its nodes' agents
NODE_POLL = 0.2  # seconds between looks at which nodes are connected, while waiting for some

# an instance reported in one of these states with the new config did not make it
_STOPPED = (InstanceState.ERROR, InstanceState.EXITED, InstanceState.RESTARTING)


class Agents(Protocol):
    """What the deployer needs of the agent hub."""

    def connected_ids(self) -> set[str]:
        """The ids of the nodes whose agents are connected now."""
        ...

    async def push_desired(self, node_ids: Iterable[str]) -> None:
        """Send each connected node among ``node_ids`` its whole desired state."""
        ...

    def reported_since_push(self, node_id: str) -> bool:
        """Whether the node's last report answers the last desired state sent to it."""
        ...


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    line: str | None = None


def _label(plan: InstancePlan) -> str:
    return instance_label(plan.service_id, plan.number)


def batches(plan: ServicePlan) -> list[list[InstancePlan]]:
    """A service's rollout: every new instance at once, then the changed ones ``max(1, 20%)`` of
    the service's instances at a time (so at least ``MIN_HEALTH`` of them stay up)."""
    starts = [i for i in plan.instances if i.kind == "start"]
    replaces = [i for i in plan.instances if i.kind == "replace"]
    size = max(1, math.floor(len(plan.instances) * (1 - MIN_HEALTH)))
    return ([starts] if starts else []) + [replaces[i : i + size] for i in range(0, len(replaces), size)]


def kept_while_away(item: InstancePlan, connected: Collection[str]) -> bool:
    """Pending on a node that is away, where it has its container: it keeps that container as it
    is (only its state and reason are written). When that container has an older config, a
    deployment gives it the new one in a batch once the node is back: were the new config
    recorded now, the node would converge all such instances at once on its return."""
    return (
        item.kind == "pending"
        and item.config_here is not None
        and item.node_id is not None
        and item.node_id not in connected
    )


def record_unplaced(
    session: Session, grid_id: int, plans: Sequence[ServicePlan], connected: Collection[str]
) -> set[str]:
    """What a deployment records without waiting: scale-down removals, pending and failed instances.

    An instance that could not be placed but still has a container keeps it as it was; the
    deployment reports why it was not changed. So does one ``kept_while_away`` (given the nodes
    ``connected``), marked ``pending``.
    """
    touched: set[str] = set()
    for plan in plans:
        if plan.remove_numbers:
            touched |= remove_instances(session, plan.service_row_id, plan.remove_numbers)
    items = [item for plan in plans for item in plan.instances]
    kept = [item for item in items if kept_while_away(item, connected)]
    mark_pending(session, [(item.service_row_id, item.number, item.reason) for item in kept])
    keys = {(item.service_row_id, item.number) for item in kept}
    writes = [
        item.write(InstanceState(item.kind))
        for item in items
        if (item.kind == "pending" and (item.service_row_id, item.number) not in keys)
        or (item.kind == "failed" and not item.had_container)
    ]
    return touched | write_placements(session, grid_id, writes)


def record_batch(session: Session, grid_id: int, batch: Sequence[InstancePlan]) -> set[str]:
    """Record a batch of placed instances (their volume instances first) as ``scheduled``."""
    return write_placements(session, grid_id, [item.write(InstanceState.SCHEDULED) for item in batch])


def _outcome(
    item: InstancePlan, report: InstanceReport | None, where: str, online: bool, fresh: bool, unchanged: bool
) -> _Outcome | None:
    """One instance's outcome from what the store holds of it; None while it is on its way.

    Running the new config is success; a failure counts only from a report the node made after
    the deployment pushed to it (``fresh``), never from an old one. An instance on an offline
    node is on its way (the rollout waits for it) unless it is ``unchanged``: then nothing of
    the rollout waits on it and it is reported.
    """
    assert item.container is not None
    if report is None or report.desired_hash != item.container.config_hash:
        return _Outcome(True)  # removed or superseded since
    settled = report.observed_hash == report.desired_hash
    if settled and report.state == InstanceState.RUNNING:
        return _Outcome(True)
    if settled and report.state in _STOPPED and online and fresh:
        exited = f"exited with code {report.exit_code}" if report.exit_code is not None else None
        return _Outcome(False, f"{_label(item)}{where}: {report.reason or exited or report.state}")
    if not online and unchanged:
        return _Outcome(False, f"{_label(item)}{where}: node is offline; it starts when the node is back")
    return None


class Deployer:
    def __init__(
        self,
        db: Database,
        agents: Agents,
        wakeups: Wakeups,
        batch_timeout: float = BATCH_TIMEOUT,
        resume_grace: float = RESUME_GRACE,
    ) -> None:
        self.db = db
        self.agents = agents
        self.wakeups = wakeups  # the hub's reports; app.py gives the hub the same object
        self.batch_timeout = batch_timeout
        self.resume_grace = resume_grace
        self.snapshots = GridSnapshots()  # the grids' nodes, kept between deployments
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._owner: dict[int, str] = {}  # service row id -> the deployment rolling it out
        # service row id -> (grid, service id, the away nodes where it has instances kept_while_away
        # with an older config)
        self._behind: dict[int, tuple[str, str, frozenset[str]]] = {}
        self._rescheduler: asyncio.Task[None] | None = None
        # deployments rolling while nodes changed, with an instance waiting for a node: their end
        # nudges the rescheduler (it left their services to them)
        self._nudge_at_end: set[str] = set()
        self._stopping = False
        self._deploying = 0  # deploy() calls between their plan and their launch
        self._adopt_again = False  # adopt() came while one was: it runs again after
        self._adopter: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Resume the rollouts a stopped master left running (a newer one of the same services
        supersedes an older one), then place waiting instances whenever nodes change, and deploy
        again the services with instances pending on a node once it is back."""
        self._stopping = False
        self._behind.clear()
        self._nudge_at_end.clear()
        for waiting, node_id in await self.db.run(services_pending_on_nodes):
            _, _, nodes = self._behind.get(waiting.service_row_id, ("", "", frozenset()))
            self._behind[waiting.service_row_id] = (waiting.grid, waiting.service_id, nodes | {node_id})
        await self.adopt()
        self._rescheduler = asyncio.create_task(self._reschedule_on_nudge(), name="rescheduler")

    async def _adopt_quietly(self) -> None:
        try:
            await self.adopt()
        except Exception as err:  # the leader's next look adopts again
            log.warning("could not take up the deployments recorded elsewhere: %s", err)

    async def adopt(self) -> None:
        """Roll out the ``running`` deployments nobody here rolls out (left by a stopped master, or
        recorded by a master that does not lead); the newest of a service's supersedes the others."""
        if self._deploying:
            self._adopt_again = True  # its row may be committed and not launched yet
            return
        unfinished = await self.db.run(unfinished_deployments)
        taken: set[int] = set()
        for deployment in reversed(unfinished):  # newest first
            if taken & set(deployment.service_ids):
                task = self._tasks.get(deployment.id)
                if task is not None:
                    task.cancel()  # it finishes as superseded
                else:
                    await self._finish(deployment.id, "error", [SUPERSEDED])
                continue
            taken |= set(deployment.service_ids)
            if deployment.id in self._tasks:
                continue
            log.info(
                "resuming deployment %s (left by a stopped master, or recorded by one that does not lead)",
                deployment.id,
            )
            for service_id in deployment.service_ids:
                previous = self._owner.get(service_id)
                if previous in self._tasks:
                    self._tasks[previous].cancel()  # older: it finishes as superseded
            self._launch(deployment.id, deployment.grid, deployment.service_ids, self._resume(deployment))

    async def stop(self) -> None:
        """Stop every rollout where it is, leaving its deployment ``running`` for the next master."""
        self._stopping = True
        if self._rescheduler is not None:
            self._rescheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rescheduler
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def nodes_changed(self) -> None:
        """A node's labels changed (the API): instances waiting for a node may place now."""
        self.wakeups.nodes_changed()

    async def _reschedule_on_nudge(self) -> None:
        while True:
            await self.wakeups.wait_nodes()
            await asyncio.sleep(RESCHEDULE_SETTLE)  # a master restart brings every node back at once
            self.wakeups.clear_nodes()
            try:
                await self._reschedule_waiting()
            except Exception:
                log.exception("placing waiting instances failed; the next change tries again")

    async def _reschedule_waiting(self) -> None:
        for waiting in await self.db.run(waiting_services):
            owner = self._owner.get(waiting.service_row_id)
            if owner is not None and owner in self._tasks:
                # its own deployment is rolling it out: planned before this change, it places
                # the waiting instance nowhere, so its end looks again
                self._nudge_at_end.add(owner)
                log.debug(
                    "%s waits for a node; deployment %s rolls it, then it is placed",
                    waiting.service_id,
                    owner,
                )
                continue
            log.info("deploying %s again: it has instances waiting for a node", waiting.service_id)
            await self.deploy(waiting.grid, [waiting.service_row_id], waiting.service_id)
        connected = self.agents.connected_ids()
        for row_id, (grid, service_id, nodes) in list(self._behind.items()):
            if not nodes & connected or self._owner.get(row_id) in self._tasks:
                continue  # not back yet, or its deployment is rolling (its end nudges again)
            del self._behind[row_id]  # the deployment notes it again if a node is still away
            log.info("deploying %s again: a node it has instances pending on is back", service_id)
            await self.deploy(grid, [row_id], service_id)

    def _note_behind(self, grid: str, plans: Sequence[ServicePlan], connected: Collection[str]) -> None:
        """Remember the services with instances kept at an older config on an away node, to deploy
        them again once it is back."""
        for plan in plans:
            nodes = frozenset(
                i.node_id
                for i in plan.instances
                if i.node_id and kept_while_away(i, connected) and i.older_here
            )
            if nodes:
                self._behind[plan.service_row_id] = (grid, plan.service_id, nodes)

    # -- deploy ---------------------------------------------------------------------------------

    async def deploy(self, grid: str, service_ids: Sequence[int], target: str) -> str:
        """Start a deployment of these services (in this order); returns its id at once."""
        deployment_id, _ = await self.deploy_planned(grid, service_ids, target)
        return deployment_id

    async def deploy_planned(
        self, grid: str, service_ids: Sequence[int], target: str
    ) -> tuple[str, list[ServicePlan]]:
        """``deploy``, also returning the plans it rolls out (what drain reports)."""
        # It begins now, before it stops the ones it supersedes: they finish after it began.
        begun = datetime.now(UTC)
        for service_id in service_ids:
            previous = self._owner.get(service_id)
            if previous in self._tasks:
                self._tasks[previous].cancel()
            self._behind.pop(service_id, None)  # planned again now
        connected = self.agents.connected_ids()
        self._deploying += 1
        try:
            deployment_id, plans, nodes = await self.db.run(
                lambda session: self._plan(session, grid, list(service_ids), target, connected, begun)
            )
            self._note_behind(grid, plans, connected)
            await self.agents.push_desired(nodes)
            self._launch(deployment_id, grid, service_ids, self._roll_out(deployment_id, plans))
        finally:
            self._deploying -= 1
            if not self._deploying and self._adopt_again and not self._stopping:
                self._adopt_again = False
                self._adopter = asyncio.create_task(self._adopt_quietly(), name="adopt")
        return deployment_id, plans

    async def preview(
        self,
        grid: str,
        service_ids: Sequence[int],
        drain: frozenset[str] = frozenset(),
        lifted: Mapping[str, frozenset[str]] | None = None,
    ) -> list[ServicePlan]:
        """The plans a deployment of these services would roll out now, with the nodes ``drain``
        drained too and the volume instances ``lifted`` free to go with their instances
        (``plan_services``); records nothing (``node drain``: its dry run, and where its data
        moves go)."""
        connected = self.agents.connected_ids()

        def plan(session: Session) -> list[ServicePlan]:
            grid_row = get_grid_row(session, grid)
            rows = deployment_services(session, list(service_ids))
            return plan_services(session, grid_row, rows, connected, GridSnapshots(), drain, lifted)

        return await self.db.run(plan)

    def _launch(
        self, deployment_id: str, grid: str, service_ids: Sequence[int], rollout: Coroutine[Any, Any, None]
    ) -> None:
        task = asyncio.create_task(rollout, name=f"deploy-{deployment_id}")
        self._tasks[deployment_id] = task
        for service_id in service_ids:
            self._owner[service_id] = deployment_id
        task.add_done_callback(lambda _t: self._ended(deployment_id))

    def _ended(self, deployment_id: str) -> None:
        self._tasks.pop(deployment_id, None)
        nudge = deployment_id in self._nudge_at_end
        self._nudge_at_end.discard(deployment_id)
        if (self._behind or nudge) and not self._stopping:
            # a service it held back may have its node back by now, or one of its instances waits
            # for a node that came while it rolled
            self.wakeups.nodes_changed()

    async def wait_finished(self, deployment_id: str) -> None:
        """Return once this deployment's rollout has ended and recorded how (at once if it has)."""
        task = self._tasks.get(deployment_id)
        if task is not None:
            await asyncio.wait({task})

    async def wait_change(self, deployment_id: str, seen: int, timeout: float) -> None:
        """Return once this deployment's rollout has ended, or an agent reported something after
        ``seen`` reports (``wakeups.status_count``), or after ``timeout``: how a client follows a
        deployment without polling it."""
        waiter = asyncio.ensure_future(self.wakeups.wait_status(seen, timeout))
        task = self._tasks.get(deployment_id)
        try:
            await asyncio.wait(
                {waiter} if task is None else {waiter, task}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()

    async def services_removed(self, node_ids: Iterable[str]) -> None:
        await self.agents.push_desired(node_ids)

    def _plan(
        self,
        session: Session,
        grid: str,
        service_ids: list[int],
        target: str,
        connected: set[str],
        begun: datetime,
    ) -> tuple[str, list[ServicePlan], set[str]]:
        grid_row = get_grid_row(session, grid)
        plans = plan_services(
            session, grid_row, deployment_services(session, service_ids), connected, self.snapshots
        )
        deployment_id = create_deployment(session, grid_row.id, target, service_ids, begun)
        return deployment_id, plans, record_unplaced(session, grid_row.id, plans, connected)

    async def _replan(self, grid: str, service_ids: list[int]) -> list[ServicePlan]:
        """Plan these services again as they are now (what is rolled is unchanged), record what
        needs no waiting and push it."""
        connected = self.agents.connected_ids()

        def plan(session: Session) -> tuple[list[ServicePlan], set[str]]:
            grid_row = get_grid_row(session, grid)
            plans = plan_services(
                session, grid_row, deployment_services(session, service_ids), connected, self.snapshots
            )
            return plans, record_unplaced(session, grid_row.id, plans, connected)

        for service_id in service_ids:
            self._behind.pop(service_id, None)
        plans, nodes = await self.db.run(plan)
        self._note_behind(grid, plans, connected)
        await self.agents.push_desired(nodes)
        return plans

    async def _resume(self, deployment: UnfinishedDeployment) -> None:
        """Go on with a deployment a stopped master left running, once its nodes are back."""
        nodes = await self.db.run(lambda session: service_nodes(session, deployment.service_ids))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.resume_grace
        while not nodes <= self.agents.connected_ids() and loop.time() < deadline:
            await asyncio.sleep(NODE_POLL)
        plans = await self._replan(deployment.grid, list(deployment.service_ids))
        await self._roll_out(deployment.id, plans)

    # -- roll out -------------------------------------------------------------------------------

    async def _roll_out(self, deployment_id: str, plans: list[ServicePlan]) -> None:
        lines: list[str] = []
        try:
            grid_id = await self.db.run(lambda session: deployment_grid_id(session, deployment_id))
            for plan in plans:
                lines += await self._roll_service(grid_id, plan)
            await self._finish(deployment_id, "error" if lines else "success", lines)
        except LeaseLost:
            log.info(
                "deployment %s left running: this master lost the lease; the leader resumes it", deployment_id
            )
            raise
        except asyncio.CancelledError:
            if self._stopping:
                log.info("deployment %s left running; the next master resumes it", deployment_id)
            else:
                await self._finish(deployment_id, "error", [*lines, SUPERSEDED])
            raise
        except Exception as err:
            log.exception("deployment %s failed", deployment_id)
            await self._finish(deployment_id, "error", [*lines, f"internal error: {err}"])

    async def _roll_service(self, grid_id: int, plan: ServicePlan) -> list[str]:
        """Roll one service out; the lines of its instances that did not make it."""
        lines = [f"{_label(i)}: {aged(i.reason)}" for i in plan.instances if i.kind in ("pending", "failed")]
        unchanged = [i for i in plan.instances if i.kind == "unchanged"]
        # what is already at its new config must run before anything else is stopped
        lines += await self._wait_unchanged(unchanged)
        for batch in batches(plan):
            nodes = await self.db.run(partial(record_batch, grid_id=grid_id, batch=batch))
            await self.agents.push_desired(nodes)
            outcomes = await self._wait(batch)
            lines += [o.line for o in outcomes if not o.ok and o.line]
        return lines

    async def _wait_unchanged(self, unchanged: list[InstancePlan]) -> list[str]:
        """Wait for the unchanged instances; those not running yet get a push first, so that
        their agents retry them and report afresh."""
        if not unchanged:
            return []
        pending = [o is None or not o.ok for o in await self._settled(unchanged, unchanged=True)]
        if not any(pending):
            return []
        behind = [i for i, late in zip(unchanged, pending, strict=True) if late]
        await self.agents.push_desired({i.node_id for i in behind if i.node_id})
        return [o.line for o in await self._wait(behind, unchanged=True) if not o.ok and o.line]

    async def _wait(self, batch: list[InstancePlan], *, unchanged: bool = False) -> list[_Outcome]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_timeout
        while True:
            seen = self.wakeups.status_count  # a report from here on wakes the wait below
            outcomes = await self._settled(batch, unchanged=unchanged)
            if all(o is not None for o in outcomes):
                return [o for o in outcomes if o is not None]
            remaining = deadline - loop.time()
            if remaining <= 0:
                return [
                    o
                    if o is not None
                    else _Outcome(False, f"{_label(i)}: not running after {self.batch_timeout:.0f}s")
                    for o, i in zip(outcomes, batch, strict=True)
                ]
            await self.wakeups.wait_status(seen, min(1.0, remaining))

    async def _settled(self, batch: list[InstancePlan], *, unchanged: bool = False) -> list[_Outcome | None]:
        """Each instance's outcome, None while it is still on its way. Two queries per batch."""
        connected = self.agents.connected_ids()
        wanted = [(i.service_row_id, i.number) for i in batch]
        node_ids = {i.node_id for i in batch if i.node_id}
        # Before the read: a node counts as fresh only by a report the store already holds (the
        # hub notes what a report answers once it is stored).
        fresh = {node_id for node_id in node_ids if self.agents.reported_since_push(node_id)}

        def read(session: Session) -> tuple[dict[tuple[int, int], InstanceReport], dict[str, str]]:
            return instance_reports(session, wanted), node_names(session, node_ids)

        reports, names = await self.db.run(read)
        return [
            _outcome(
                item,
                reports.get((item.service_row_id, item.number)),
                f" on {names[item.node_id]}" if item.node_id in names else "",
                item.node_id in connected,
                item.node_id in fresh,
                unchanged,
            )
            for item in batch
        ]

    async def _finish(self, deployment_id: str, state: str, lines: list[str]) -> None:
        await self.db.run(lambda session: finish_deployment(session, deployment_id, state, lines))
        # a look that read it running just before (``GET /v1/deployments/{id}?wait=``) may have
        # missed its task's end: a change it waits on, so it answers now, not at its timeout
        await self.wakeups.status_changed()

"""Deployments: plan placements, then roll them out batch by batch and watch the agents converge.

deploy(services) ──plan (one transaction)──▶ deployment row, pending/failed instances recorded,
                                             scaled-down instances removed
    └─▶ roll out, per service in dependency order:
          batch 0: every instance that has no container yet, all at once
          then:    instances whose node or config changes, ``batch_size`` at a time; a batch's
                   containers run before the next batch's old ones are stopped
          each batch: record volume instances and containers ─▶ push desired state to the
                      nodes ─▶ wait until their agents report the new config running
                      (or an error, the node going away, or the batch timeout)
          last:    unchanged instances are waited for too: success means every instance runs
    └─▶ deployment ``success`` or ``error`` with one line per instance that did not make it
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from anyio import to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from moorage.master.planning import InstancePlan, ServicePlan, plan_services
from moorage.model.stack import NULL_STACK, full_service_id
from moorage.model.states import InstanceState
from moorage.store.database import Database
from moorage.store.grids import get_grid_row
from moorage.store.instances import new_id
from moorage.store.placements import write_placements
from moorage.store.tables import DeploymentRow, GridRow, InstanceRow, NodeRow, ServiceRow

if TYPE_CHECKING:
    from moorage.master.hub import AgentHub

__all__ = ["Deployer", "record_batch", "record_unplaced"]

log = logging.getLogger("moorage.master.deployer")

MIN_HEALTH = 0.8  # Kontena's default: keep at least 80% of a service's instances up during a rollout
BATCH_TIMEOUT = 180.0
RESCHEDULE_SETTLE = 0.5  # seconds to gather a burst of node changes before placing waiting instances


# an instance reported in one of these states with the new config did not make it
_STOPPED = (InstanceState.ERROR, InstanceState.EXITED, InstanceState.RESTARTING)


@dataclass(frozen=True, slots=True)
class _Outcome:
    ok: bool
    line: str | None = None


def _label(plan: InstancePlan) -> str:
    """``stack/service-n``, or ``service-n`` in the null stack: as the CLI names instances."""
    _, stack, service = plan.service_id.split("/", 2)
    return f"{service}-{plan.number}" if stack == NULL_STACK else f"{stack}/{service}-{plan.number}"


def record_unplaced(session: Session, grid_id: int, plans: Sequence[ServicePlan]) -> set[str]:
    """What a deployment records without waiting: scale-down removals, pending and failed instances.

    An instance that could not be placed but still has a container keeps it as it was; the
    deployment reports why it was not changed.
    """
    touched: set[str] = set()
    for plan in plans:
        if plan.remove_numbers:
            where = (
                InstanceRow.service_id == plan.service_row_id,
                InstanceRow.number.in_(plan.remove_numbers),
            )
            touched |= {n for n in session.scalars(select(InstanceRow.node_id).where(*where)) if n}
            session.execute(delete(InstanceRow).where(*where))
    writes = [
        item.write(InstanceState(item.kind))
        for plan in plans
        for item in plan.instances
        if item.kind == "pending" or (item.kind == "failed" and not item.had_container)
    ]
    return touched | write_placements(session, grid_id, writes)


def record_batch(session: Session, grid_id: int, batch: Sequence[InstancePlan]) -> set[str]:
    """Record a batch of placed instances (their volume instances first) as ``scheduled``."""
    return write_placements(session, grid_id, [item.write(InstanceState.SCHEDULED) for item in batch])


class Deployer:
    def __init__(self, db: Database, hub: AgentHub, batch_timeout: float = BATCH_TIMEOUT) -> None:
        self.db = db
        self.hub = hub
        self.batch_timeout = batch_timeout
        self._changed = asyncio.Condition()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._owner: dict[int, str] = {}  # service row id -> the deployment rolling it out
        self._nudged = asyncio.Event()
        self._rescheduler: asyncio.Task[None] | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        await to_thread.run_sync(self._abandon_unfinished)
        self._rescheduler = asyncio.create_task(self._reschedule_on_nudge(), name="rescheduler")

    async def stop(self) -> None:
        if self._rescheduler is not None:
            self._rescheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rescheduler
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def changed(self) -> None:
        """Agents reported something: wake the rollouts that wait on it."""
        async with self._changed:
            self._changed.notify_all()

    def nodes_changed(self) -> None:
        """A node came online or changed, or a Docker volume finished being removed: instances
        waiting for a node (pending, none chosen) may place now. Bursts are handled once."""
        self._nudged.set()

    async def _reschedule_on_nudge(self) -> None:
        while True:
            await self._nudged.wait()
            await asyncio.sleep(RESCHEDULE_SETTLE)  # a master restart brings every node back at once
            self._nudged.clear()
            try:
                await self._reschedule_waiting()
            except Exception:
                log.exception("placing waiting instances failed; the next change tries again")

    async def _reschedule_waiting(self) -> None:
        waiting = await to_thread.run_sync(self._waiting_services)
        for grid, service_id, target in waiting:
            owner = self._owner.get(service_id)
            if owner in self._tasks:
                continue  # its own deployment is rolling it out
            log.info("deploying %s again: it has instances waiting for a node", target)
            await self.deploy(grid, [service_id], target)

    def _waiting_services(self) -> list[tuple[str, int, str]]:
        """(grid, service row id, service id) of the services with an instance pending and no node."""
        with self.db.session() as session:
            rows = session.execute(
                select(GridRow.name, ServiceRow.id, ServiceRow.stack, ServiceRow.name)
                .join(ServiceRow, ServiceRow.grid_id == GridRow.id)
                .where(
                    ServiceRow.id.in_(
                        select(InstanceRow.service_id).where(
                            InstanceRow.node_id.is_(None), InstanceRow.state == InstanceState.PENDING
                        )
                    )
                )
                .order_by(ServiceRow.id)
            ).tuples()
            return [(grid, row_id, full_service_id(grid, stack, name)) for grid, row_id, stack, name in rows]

    # -- deploy ---------------------------------------------------------------------------------

    async def deploy(self, grid: str, service_ids: Sequence[int], target: str) -> str:
        """Start a deployment of these services (in this order); returns its id at once."""
        for service_id in service_ids:
            previous = self._owner.get(service_id)
            if previous in self._tasks:
                self._tasks[previous].cancel()
        deployment_id, plans, nodes = await to_thread.run_sync(self._plan, grid, list(service_ids), target)
        await self.hub.push_desired(nodes)
        task = asyncio.create_task(self._roll_out(deployment_id, plans), name=f"deploy-{deployment_id}")
        self._tasks[deployment_id] = task
        for service_id in service_ids:
            self._owner[service_id] = deployment_id
        task.add_done_callback(lambda _t: self._tasks.pop(deployment_id, None))
        return deployment_id

    async def services_removed(self, node_ids: Iterable[str]) -> None:
        await self.hub.push_desired(node_ids)

    def _plan(
        self, grid: str, service_ids: list[int], target: str
    ) -> tuple[str, list[ServicePlan], set[str]]:
        with self.db.session() as session:
            grid_row = get_grid_row(session, grid)
            rows = {
                r.id: r for r in session.scalars(select(ServiceRow).where(ServiceRow.id.in_(service_ids)))
            }
            ordered = [rows[i] for i in service_ids if i in rows]
            plans = plan_services(session, grid_row, ordered, self.hub.connected_ids())
            deployment = DeploymentRow(
                id=new_id(),
                grid_id=grid_row.id,
                target=target,
                service_ids=service_ids,
                state="running",
                message=None,
                created_at=datetime.now(UTC),
                finished_at=None,
            )
            session.add(deployment)
            touched = record_unplaced(session, grid_row.id, plans)
            return deployment.id, plans, touched

    def _apply_batch(self, batch: list[InstancePlan], grid_id: int) -> set[str]:
        with self.db.session() as session:
            return record_batch(session, grid_id, batch)

    # -- roll out -------------------------------------------------------------------------------

    async def _roll_out(self, deployment_id: str, plans: list[ServicePlan]) -> None:
        lines: list[str] = []
        try:
            grid_id = await to_thread.run_sync(self._grid_of, deployment_id)
            for plan in plans:
                for item in plan.instances:
                    if item.kind in ("pending", "failed"):
                        lines.append(f"{_label(item)}: {item.reason}")
                starts = [i for i in plan.instances if i.kind == "start"]
                replaces = [i for i in plan.instances if i.kind == "replace"]
                size = max(1, math.floor(len(plan.instances) * (1 - MIN_HEALTH)))
                batches = ([starts] if starts else []) + [
                    replaces[i : i + size] for i in range(0, len(replaces), size)
                ]
                for batch in batches:
                    nodes = await to_thread.run_sync(self._apply_batch, batch, grid_id)
                    await self.hub.push_desired(nodes)
                    outcomes = await self._wait(batch)
                    lines += [o.line for o in outcomes if not o.ok and o.line]
                # Unchanged instances need no new container, but the deployment succeeds only once
                # they run too (an earlier deployment may still be starting them).
                unchanged = [i for i in plan.instances if i.kind == "unchanged"]
                if unchanged:
                    outcomes = await self._wait(unchanged)
                    lines += [o.line for o in outcomes if not o.ok and o.line]
            await to_thread.run_sync(self._finish, deployment_id, "error" if lines else "success", lines)
        except asyncio.CancelledError:
            await to_thread.run_sync(
                self._finish, deployment_id, "error", [*lines, "superseded by a newer deployment"]
            )
            raise
        except Exception as err:
            log.exception("deployment %s failed", deployment_id)
            await to_thread.run_sync(self._finish, deployment_id, "error", [*lines, f"internal error: {err}"])

    async def _wait(self, batch: list[InstancePlan]) -> list[_Outcome]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_timeout
        while True:
            outcomes = await to_thread.run_sync(self._settled, batch)
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
            async with self._changed:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), min(1.0, remaining))

    def _settled(self, batch: list[InstancePlan]) -> list[_Outcome | None]:
        """Each instance's outcome, None while it is still on its way. Two queries per batch."""
        connected = self.hub.connected_ids()
        wanted = {(i.service_row_id, i.number) for i in batch}
        node_ids = sorted({i.node_id for i in batch if i.node_id})
        with self.db.session() as session:
            rows = {
                (service_id, number): (desired, observed, state, reason, exit_code)
                for service_id, number, desired, observed, state, reason, exit_code in session.execute(
                    select(
                        InstanceRow.service_id,
                        InstanceRow.number,
                        InstanceRow.desired_hash,
                        InstanceRow.observed_hash,
                        InstanceRow.state,
                        InstanceRow.reason,
                        InstanceRow.exit_code,
                    ).where(InstanceRow.service_id.in_({i.service_row_id for i in batch}))
                ).tuples()
                if (service_id, number) in wanted
            }
            found = session.execute(select(NodeRow.id, NodeRow.name).where(NodeRow.id.in_(node_ids))).tuples()
            names = {node_id: name for node_id, name in found}
        out: list[_Outcome | None] = []
        for item in batch:
            assert item.container is not None
            row = rows.get((item.service_row_id, item.number))
            if row is None or row[0] != item.container.config_hash:
                out.append(_Outcome(True))  # removed or superseded since
                continue
            desired, observed, state, reason, exit_code = row
            where = f" on {names[item.node_id]}" if item.node_id in names else ""
            if observed == desired and state == InstanceState.RUNNING:
                out.append(_Outcome(True))
            elif observed == desired and state in _STOPPED:
                detail = reason or (f"exited with code {exit_code}" if exit_code is not None else state)
                out.append(_Outcome(False, f"{_label(item)}{where}: {detail}"))
            elif item.node_id not in connected:
                out.append(
                    _Outcome(
                        False, f"{_label(item)}{where}: node is offline; it starts when the node is back"
                    )
                )
            else:
                out.append(None)
        return out

    # -- bookkeeping ----------------------------------------------------------------------------

    def _grid_of(self, deployment_id: str) -> int:
        with self.db.session() as session:
            row = session.get(DeploymentRow, deployment_id)
            assert row is not None
            return row.grid_id

    def _finish(self, deployment_id: str, state: str, lines: list[str]) -> None:
        with self.db.session() as session:
            session.execute(
                update(DeploymentRow)
                .where(DeploymentRow.id == deployment_id)
                .values(state=state, message="\n".join(lines) or None, finished_at=datetime.now(UTC))
            )

    def _abandon_unfinished(self) -> None:
        with self.db.session() as session:
            session.execute(
                update(DeploymentRow)
                .where(DeploymentRow.state == "running")
                .values(
                    state="error",
                    message="the master restarted during this deployment; run the deploy again",
                    finished_at=datetime.now(UTC),
                )
            )

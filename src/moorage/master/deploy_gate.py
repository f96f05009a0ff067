"""Where the API's deploy requests go with several masters: to this master's deployer when it
leads; else into the store as a ``running`` deployment nobody rolls out yet, with a ``deploy``
notice to the leader, whose deployer adopts it (``Deployer.adopt``; it also looks every
``ADOPT_EVERY`` seconds, so a lost notice delays a rollout, never loses it). The answer is the
deployment's id either way: its progress is in the store, which every master reads.

The deployer runs on the leader alone: ``on_gain``/``on_loss`` start and stop it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from moorage.errors import Conflict
from moorage.master.deployer import Deployer
from moorage.master.leadership import Leadership
from moorage.master.peers import Peers
from moorage.master.planning_decision import ServicePlan
from moorage.master.wakeups import Wakeups
from moorage.store.database import Database
from moorage.store.deployments import create_deployment
from moorage.store.grids import get_grid_row
from moorage.store.masters import LeaseLost

__all__ = ["DeployGate"]

log = logging.getLogger("moorage.master.deploy_gate")

ADOPT_EVERY = 5.0


class DeployGate:
    def __init__(self, db: Database, deployer: Deployer, leadership: Leadership, peers: Peers) -> None:
        self.db = db
        self.deployer = deployer
        self.leadership = leadership
        self.peers = peers
        self._leading = False
        self._adopter: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()  # one gain or loss at a time

    async def deploy(self, grid: str, service_ids: Sequence[int], target: str) -> str:
        """Start a deployment of these services (in this order); returns its id at once."""
        if self._leading:
            try:
                return await self.deployer.deploy(grid, service_ids, target)
            except LeaseLost:
                log.info("lost the lease while planning %s; recording it for the next leader", target)
        begun = datetime.now(UTC)

        def record(session: Session) -> str:
            return create_deployment(session, get_grid_row(session, grid).id, target, service_ids, begun)

        deployment_id = await self.db.run(record)
        self.peers.deploy_requested()
        return deployment_id

    async def deploy_planned(
        self, grid: str, service_ids: Sequence[int], target: str
    ) -> tuple[str, list[ServicePlan]]:
        """``deploy`` with the plans it rolls out (what a drain reports): on the leader only, since
        only its deployer plans; another master answers 409 and the client asks again."""
        self.require_leading()
        return await self.deployer.deploy_planned(grid, service_ids, target)

    @property
    def leading(self) -> bool:
        return self._leading

    def require_leading(self) -> None:
        """The rule for what only the leader does (a drain's plans, volume moves): another master
        answers 409 and the client asks again."""
        if not self._leading:
            raise Conflict(
                "this master does not lead the grid's deployments; ask again "
                "(the leader is shown by 'moorage master status')"
            )

    async def preview(
        self,
        grid: str,
        service_ids: Sequence[int],
        drain: frozenset[str] = frozenset(),
        lifted: Mapping[str, frozenset[str]] | None = None,
    ) -> list[ServicePlan]:
        """The plans a deployment would roll out now, recording nothing (``node drain``)."""
        return await self.deployer.preview(grid, service_ids, drain, lifted)

    async def services_removed(self, node_ids: Iterable[str]) -> None:
        await self.deployer.services_removed(node_ids)

    def nodes_changed(self) -> None:
        """A node's labels changed (the API): the leader's waiting instances may place now."""
        self.peers.nodes_changed()

    async def wait_finished(self, deployment_id: str) -> None:
        await self.deployer.wait_finished(deployment_id)

    @property
    def wakeups(self) -> Wakeups:
        """The reports this master hears of (its agents', and the other masters' by notice)."""
        return self.deployer.wakeups

    async def wait_change(self, deployment_id: str, seen: int, timeout: float) -> None:
        """Until the rollout ends here, a report after ``seen``, or ``timeout`` (on a master that
        does not lead: a report of any master's agents, or the timeout)."""
        await self.deployer.wait_change(deployment_id, seen, timeout)

    # -- leadership -----------------------------------------------------------------------------

    async def on_gain(self) -> None:
        async with self._lock:
            if self._leading:
                return
            self._leading = True
            await self.deployer.start()
            if not self.leadership.solo:
                self._adopter = asyncio.create_task(self._adopt_requested(), name="adopt-requested")

    async def on_loss(self) -> None:
        async with self._lock:
            if not self._leading:
                return
            self._leading = False
            if self._adopter is not None:
                self._adopter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._adopter
                self._adopter = None
            await self.deployer.stop()

    async def _adopt_requested(self) -> None:
        requested = self.peers.on_deploy_requested
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(requested.wait(), ADOPT_EVERY)
            requested.clear()
            try:
                await self.deployer.adopt()
            except LeaseLost:
                return  # on_loss follows at the leadership's next look
            except Exception as err:
                log.warning("could not take up the deployments other masters recorded: %s", err)

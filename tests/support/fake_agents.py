"""A stand-in for the agent hub, for unit tests of the deployer (``moorage.master.deployer.Agents``).

It records every desired-state push with a snapshot of the store's instances at that moment, and
lets the test play the agents: ``report`` writes what an agent would report, through the store
function the real hub calls, then wakes the deployer as the real hub does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select

from moorage.master.wakeups import Wakeups
from moorage.protocol import InstanceStatus
from moorage.store.database import Database
from moorage.store.instances import apply_instance_status
from moorage.store.tables import InstanceRow, ServiceRow

__all__ = ["FakeAgents", "InstanceSnapshot", "Push"]

WAIT = 20.0  # a safety net: a test that waits this long has already failed


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    service: str  # the service's name
    number: int
    node_id: str | None
    desired_hash: str | None
    observed_hash: str | None
    state: str

    @property
    def runs_desired(self) -> bool:
        return self.state == "running" and self.observed_hash == self.desired_hash


@dataclass(frozen=True, slots=True)
class Push:
    node_ids: frozenset[str]
    instances: dict[tuple[str, int], InstanceSnapshot]  # (service, number): the store as pushed


class FakeAgents:
    def __init__(self, db: Database, wakeups: Wakeups, grid: str, connected: Iterable[str]) -> None:
        self.db = db
        self.wakeups = wakeups
        self.grid = grid
        self.connected = set(connected)
        self.pushes: asyncio.Queue[Push] = asyncio.Queue()
        self._made = 0  # pushes the deployer made
        self._taken = 0  # pushes the test took with next_push
        self.looks: asyncio.Queue[int] = asyncio.Queue()  # per connected_ids() call: pushes made by then
        self._pushed: dict[str, int] = {}  # node id -> the push (count) it last got
        self._answered: dict[str, int] = {}  # node id -> the push its last report answers

    # -- what the deployer calls ----------------------------------------------------------------

    def connected_ids(self) -> set[str]:
        self.looks.put_nowait(self._made)
        return set(self.connected)

    async def push_desired(self, node_ids: Iterable[str]) -> None:
        self._made += 1
        nodes = frozenset(node_ids)
        for node_id in nodes & self.connected:
            self._pushed[node_id] = self._made
        self.pushes.put_nowait(Push(nodes, self.snapshot()))

    def reported_since_push(self, node_id: str) -> bool:
        return self._answered.get(node_id, 0) >= self._pushed.get(node_id, 0)

    # -- what the test calls --------------------------------------------------------------------

    def snapshot(self) -> dict[tuple[str, int], InstanceSnapshot]:
        with self.db.session() as session:
            rows = session.execute(
                select(
                    ServiceRow.name,
                    InstanceRow.number,
                    InstanceRow.node_id,
                    InstanceRow.desired_hash,
                    InstanceRow.observed_hash,
                    InstanceRow.state,
                ).join(ServiceRow, ServiceRow.id == InstanceRow.service_id)
            ).tuples()
            return {(row[0], row[1]): InstanceSnapshot(*row) for row in rows}

    async def next_push(self) -> Push:
        push = await asyncio.wait_for(self.pushes.get(), WAIT)
        self._taken += 1
        return push

    async def next_look(self) -> None:
        """Return once the deployer asks who is connected: it is checking how instances are doing."""
        await asyncio.wait_for(self.looks.get(), WAIT)

    async def look_since_last_push(self) -> None:
        """Return once the deployer has checked on instances after the last push the test took."""
        while await asyncio.wait_for(self.looks.get(), WAIT) < self._taken:
            pass

    def nothing_pushed(self) -> bool:
        return self.pushes.empty()

    def forget_looks(self) -> None:
        while not self.looks.empty():
            self.looks.get_nowait()

    async def report(
        self,
        service: str,
        numbers: Iterable[int],
        state: str = "running",
        exit_code: int | None = None,
    ) -> None:
        """Each instance's agent reports it ``state`` at its desired config, then the hub wakes the deployer."""
        now = self.snapshot()
        by_node: dict[str, list[InstanceStatus]] = {}
        for number in numbers:
            instance = now[(service, number)]
            assert instance.node_id is not None, f"{service}-{number} has no node"
            by_node.setdefault(instance.node_id, []).append(
                InstanceStatus(
                    service_id=f"{self.grid}/{self._stack_of(service)}/{service}",
                    instance=number,
                    state=state,  # type: ignore[arg-type]
                    config_hash=instance.desired_hash,
                    exit_code=exit_code,
                )
            )
        with self.db.session() as session:
            for node_id, statuses in by_node.items():
                apply_instance_status(session, node_id, statuses)
        for node_id in by_node:  # once stored, as the hub does: made after the last push
            self._answered[node_id] = self._pushed.get(node_id, 0)
        await self.wakeups.status_changed()

    def _stack_of(self, service: str) -> str:
        with self.db.session() as session:
            stack = session.scalar(select(ServiceRow.stack).where(ServiceRow.name == service))
            assert stack is not None, service
            return stack

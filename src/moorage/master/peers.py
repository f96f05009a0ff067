"""The other masters on this store, as this master's hub and deployer need them.

- Pushes: the hub pushes a desired state to the agents connected here and hands the other node
  ids to ``push_elsewhere``, which tells the peers (a ``desired`` notice); the master of each
  of those agents pushes it (``_on_desired``) and, once the agent reported on it, answers.
- Reports: ``status_changed`` and ``nodes_changed`` wake this master's deployer and tell the
  peers, whose deployer (the leader's) wakes too.
- The deployer's ``Agents`` (``connected_ids``, ``push_desired``, ``reported_since_push``) over
  every live master's agents: the hub's own, and the nodes online under another live master
  (read from the store at each leadership look and when a peer says nodes changed).
- The leader's sweep: nodes still online under a master that died go offline.

With one master (SQLite) there are no peers: notices are not sent and everything is the hub's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from moorage.master.forwarding import PeerMaster
from moorage.master.hub import AgentHub
from moorage.master.leadership import Leadership
from moorage.master.peer_notices import (
    AnsweredNotice,
    DeployNotice,
    DesiredNotice,
    NodesNotice,
    Notice,
    PeerNotices,
    StatusNotice,
    desired_notices,
)
from moorage.master.wakeups import Wakeups
from moorage.store.database import Database
from moorage.store.masters import list_masters, mark_orphans_offline, online_nodes_of

__all__ = ["Peers"]

log = logging.getLogger("moorage.master.peers")

REFRESH_PAUSE = 0.1  # at most ten reads a second of which nodes the peers hold


class Peers:
    def __init__(self, db: Database, leadership: Leadership, wakeups: Wakeups) -> None:
        self.db = db
        self.leadership = leadership
        self.me = leadership.me.id
        self.wakeups = wakeups
        self.hub: AgentHub | None = None  # set by ``attach`` (the hub is built with our callbacks)
        self.notices: PeerNotices | None = (
            None if leadership.solo else PeerNotices(db, self.me, self._on_notice, self._caught_up)
        )
        self._remote: dict[str, str] = {}  # node id -> the other master it is online under
        self._stale = asyncio.Event()
        self._ask = 0  # numbers this master's push requests to peers
        self._asked: dict[str, int] = {}  # node id -> our last request for it
        self._orphan_sweeps: list[Callable[[set[str]], Awaitable[None]]] = []
        self._answered: dict[str, int] = {}  # node id -> our last request a peer answered
        # node id -> {requesting master: (its request, the seq the hub pushed for it)}
        self._owed: dict[str, dict[str, tuple[int, int]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self.on_deploy_requested: asyncio.Event = asyncio.Event()  # the deployer's gate waits on it

    def attach(self, hub: AgentHub) -> None:
        self.hub = hub

    def _hub(self) -> AgentHub:
        assert self.hub is not None, "Peers.attach(hub) first"
        return self.hub

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.notices is None:
            return
        await self.notices.start()
        await self._refresh()
        self._tasks = [asyncio.create_task(self._refresher(), name="peers-refresh")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.notices is not None:
            await self.notices.stop()

    def on_masters_gone(self, *sweeps: Callable[[set[str]], Awaitable[None]]) -> None:
        """After each look, the leader calls each ``sweep`` with the ids of the masters alive: the
        jobs of the others are over (their agents' answers went to them)."""
        self._orphan_sweeps.extend(sweeps)

    def looked(self) -> None:
        """The leadership looked (``live`` is fresh): read the peers' nodes again."""
        self._stale.set()

    async def _refresher(self) -> None:
        while True:
            await self._stale.wait()
            self._stale.clear()
            try:
                await self._refresh()
            except Exception as err:
                log.warning("could not read which nodes the other masters hold: %s", err)
            await asyncio.sleep(REFRESH_PAUSE)

    async def _refresh(self) -> None:
        others = sorted(self.leadership.live - {self.me})
        if self.leadership.is_leader:
            live = set(self.leadership.live) | await self._started_since_look()
            swept = await self.db.fenced(self.leadership.fence).run(
                lambda session: mark_orphans_offline(session, live)
            )
            if swept:
                log.info("%d nodes offline: their master is gone (until their agents reconnect)", swept)
                self.wakeups.nodes_changed()
                await self.wakeups.status_changed()
            for sweep in self._orphan_sweeps:
                try:
                    await sweep(live)
                except Exception as err:  # the next look sweeps again
                    log.warning("could not end the jobs of the masters that are gone: %s", err)
        before = set(self._remote)
        self._remote = await self.db.read(lambda session: online_nodes_of(session, others))
        if set(self._remote) - before:
            self.wakeups.nodes_changed()
        if before - set(self._remote):
            await self.wakeups.status_changed()  # a rollout waiting on such a node looks again

    def holder(self, node_id: str) -> PeerMaster | None:
        """The other live master the node's agent is connected to (as the store said at the last
        look), for requests that must reach that agent (logs, exec: ``master/forwarding.py``)."""
        master_id = self._remote.get(node_id)
        if master_id is None or master_id not in self.leadership.live:
            return None
        found = self.leadership.addresses.get(master_id)
        if found is None or not found[1]:
            return None
        return PeerMaster(master_id, found[0], found[1])

    async def _started_since_look(self) -> set[str]:
        """Masters whose row the store has now but the last look did not list (they started
        since): alive, though not in ``live`` yet. The leader's sweeps spare their nodes and jobs;
        else a master that just started would find the nodes that said hello to it marked offline
        while their agents stay connected (nothing marks them online again until they reconnect)."""
        known = {self.me, *self.leadership.addresses}  # every master the look listed, alive or gone
        window = self.leadership.ttl * 3  # what the look lists
        listed = await self.db.read(lambda session: list_masters(session, within=window))
        return {m.id for m in listed} - known

    # -- the deployer's Agents -------------------------------------------------------------------

    def connected_ids(self) -> set[str]:
        """The agents connected here, and those of the masters alive at the last look (a master
        found gone loses its nodes at once, before the store says so)."""
        live = self.leadership.live
        return self._hub().connected_ids() | {n for n, m in self._remote.items() if m in live}

    async def push_desired(self, node_ids: Iterable[str]) -> None:
        await self._hub().push_desired(node_ids)

    def reported_since_push(self, node_id: str) -> bool:
        hub = self._hub()
        if hub.is_connected(node_id) or node_id not in self._asked:
            return hub.reported_since_push(node_id)
        return self._answered.get(node_id, 0) >= self._asked[node_id]

    # -- what the hub calls ----------------------------------------------------------------------

    def push_elsewhere(self, node_ids: list[str]) -> None:
        """Nodes whose agents are not connected here: their masters push."""
        if self.notices is None:
            return
        self._ask += 1
        for node_id in node_ids:
            self._asked[node_id] = self._ask
        for notice in desired_notices(self.me, node_ids, self._ask):
            self.notices.send(notice)

    async def status_changed(self) -> None:
        await self.wakeups.status_changed()
        if self.notices is None:
            return
        self.notices.send(StatusNotice(origin=self.me))
        hub = self._hub()
        for node_id, owed in list(self._owed.items()):
            for origin, (ask, seq) in list(owed.items()):
                if hub.answered(node_id, seq):
                    self.notices.send(AnsweredNotice(origin=self.me, to=origin, node=node_id, ask=ask))
                    del owed[origin]
            if not owed:
                del self._owed[node_id]

    def nodes_changed(self) -> None:
        self.wakeups.nodes_changed()
        if self.notices is not None:
            self.notices.send(NodesNotice(origin=self.me))

    def deploy_requested(self) -> None:
        """A deployment recorded here, for the leader to roll out."""
        if self.notices is not None:
            self.notices.send(DeployNotice(origin=self.me))

    # -- what the peers say ----------------------------------------------------------------------

    async def _on_notice(self, notice: Notice) -> None:
        if isinstance(notice, DesiredNotice):
            await self._on_desired(notice)
        elif isinstance(notice, AnsweredNotice):
            if notice.to == self.me and notice.ask >= self._answered.get(notice.node, 0):
                self._answered[notice.node] = notice.ask
                await self.wakeups.status_changed()
        elif isinstance(notice, StatusNotice):
            self._stale.set()
            await self.wakeups.status_changed()
        elif isinstance(notice, NodesNotice):
            self._stale.set()
            self.wakeups.nodes_changed()
        elif isinstance(notice, DeployNotice):
            self.on_deploy_requested.set()

    async def _on_desired(self, notice: DesiredNotice) -> None:
        hub = self._hub()
        mine = [node_id for node_id in notice.nodes if hub.is_connected(node_id)]
        if not mine:
            return
        await hub.push_desired(mine)
        for node_id in mine:
            self._owed.setdefault(node_id, {})[notice.origin] = (notice.ask, hub.last_pushed(node_id))

    async def _caught_up(self) -> None:
        """The listening connection was down: push to every agent here, wake what waits."""
        hub = self._hub()
        await hub.push_desired(hub.connected_ids())
        self.nodes_changed()
        self._stale.set()
        await self.status_changed()

"""Which master does the once-only work (rollouts, placing waiting instances, sweeping the nodes
of dead masters): the holder of the ``leader`` lease (``store/masters.py``).

Every ``tick`` seconds a master, on a connection of its own (which holds its life lock), says it
lives and looks at the lease: the leader renews it for ``ttl`` seconds; the others take it once
it expired, was released, or its holder's process is gone (its life lock is free: a killed
master is replaced within a tick, a paused one after ``ttl``). A leader that cannot renew for
``ttl`` seconds by its own clock steps down before the lease can have passed to another.

Fencing: each new holder takes the next epoch, and the deployer's units of work end with
``fence`` (holder and epoch checked in the same transaction, row share-locked until commit), so
an old leader that lost the lease while paused writes nothing when it wakes up.

On SQLite there is one master (``server.py`` refuses a second on one file): it leads from the
start and its fence checks nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import Connection, create_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from moorage import __version__
from moorage.store.database import Database
from moorage.store.masters import (
    LEADER,
    LeaseLost,
    acquire_lease,
    beat,
    check_lease,
    hold_life_lock,
    is_gone,
    lease_view,
    list_masters,
    prepare_connection,
    register_master,
    release_lease,
    renew_lease,
)

__all__ = ["Leadership", "MasterIdentity", "link_key_hash", "new_master_id"]

log = logging.getLogger("moorage.master.leadership")

FORGET_AFTER = 3600.0  # rows of masters not seen for an hour go


def new_master_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class MasterIdentity:
    """This master process: a new id per start; the name and URL it is shown by; the key it
    presents to reach the agents of other masters (``master/agent_links.py``; only its hash is
    stored)."""

    name: str
    url: str
    id: str = field(default_factory=new_master_id)
    link_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def link_key_hash(self) -> str:
        return link_key_hash(self.link_key)


def link_key_hash(key: str) -> str:
    """What the store keeps of a master's link key (and what a presented key is checked against)."""
    return hashlib.sha256(key.encode()).hexdigest()


Callback = Callable[[], Awaitable[None]]


class Leadership:
    def __init__(
        self,
        db: Database,
        me: MasterIdentity,
        on_gain: Callback,
        on_loss: Callback,
        ttl: float = 5.0,
        tick: float = 1.0,
    ) -> None:
        self.db = db
        self.me = me
        self.ttl = ttl
        self.tick = tick
        self._on_gain = on_gain
        self._on_loss = on_loss
        self._on_look: Callable[[], None] | None = None
        self.solo = db.is_sqlite
        self.epoch: int | None = None
        self._was_leading = False  # what the last look ended with (callbacks called for it)
        self._renewed = 0.0  # monotonic time of the last renewal that worked
        self.live: set[str] = {me.id}  # ids of the masters alive at the last look, this one too
        self.addresses: dict[str, tuple[str, str]] = {}  # other masters at the last look: id -> (name, url)
        self._conn: Connection | None = None
        self._engine = None if self.solo else create_engine(db.url, poolclass=NullPool)
        self._task: asyncio.Task[None] | None = None
        self.ticked = asyncio.Event()  # set after each look (tests and the peers wait on it)

    def on_look(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after each look (``live`` is fresh then)."""
        self._on_look = callback

    @property
    def is_leader(self) -> bool:
        return self.solo or self.epoch is not None

    def fence(self, session: Session) -> None:
        """Raise ``LeaseLost`` unless this master holds the lease now (the last statement of a
        unit of once-only work)."""
        if self.solo:
            return
        epoch = self.epoch
        if epoch is None:
            raise LeaseLost("this master is not the leader")
        check_lease(session, LEADER, self.me.id, epoch)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        if self.solo:
            await self.db.run(
                lambda session: register_master(
                    session, self.me.id, self.me.name, self.me.url, __version__, self.me.link_key_hash
                )
            )
            await self._call(self._on_gain)
            return
        await self._look()  # leads at once if nobody does
        self._task = asyncio.create_task(self._run(), name="leadership")

    async def stop(self) -> None:
        """Stop looking; a leader stops its work, then releases the lease for the next one."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.solo or self._was_leading:
            await self._call(self._on_loss)
        self._was_leading = False
        epoch, self.epoch = self.epoch, None
        if epoch is not None and self._conn is not None:
            with contextlib.suppress(Exception):
                await to_thread.run_sync(release_lease, self._conn, LEADER, self.me.id, epoch)
        await to_thread.run_sync(self._close)
        if self._engine is not None:
            self._engine.dispose()

    async def _call(self, callback: Callback) -> None:
        try:
            await callback()
        except Exception:  # the next look tries again (a lost lease stops what started)
            log.exception("starting or stopping the leader's work failed")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.tick)
            await self._look()

    async def _look(self) -> None:
        try:
            held = await to_thread.run_sync(self._look_sync)
        except Exception as err:
            log.warning("could not reach the store to renew this master's lease: %s", err)
            await to_thread.run_sync(self._close)  # a new connection (and life lock) next time
            held = self.epoch is not None and time.monotonic() - self._renewed < self.ttl * 0.75
        if self._was_leading and not held:
            log.warning("this master lost the leader lease; another master leads")
            self.epoch = None
            await self._call(self._on_loss)
        elif held and not self._was_leading:
            log.info("this master leads now (lease epoch %s)", self.epoch)
            await self._call(self._on_gain)
        self._was_leading = held
        if self._on_look is not None:
            self._on_look()
        self.ticked.set()
        self.ticked = asyncio.Event()

    # -- on the leadership connection (a worker thread, one look at a time) -----------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            assert self._engine is not None
            conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                prepare_connection(conn, self.me.id)
                hold_life_lock(conn, self.me.id)
            except Exception:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    def _look_sync(self) -> bool:
        """Say this master lives, see which others do, and renew or try to take the lease;
        whether this master holds it now (``self.epoch`` set by a take)."""
        conn = self._connection()
        beat(conn, self.me.id, self.me.name, self.me.url, __version__, FORGET_AFTER, self.me.link_key_hash)
        listed = [m for m in list_masters(conn, within=self.ttl * 3) if m.id != self.me.id]
        self.addresses = {m.id: (m.name, m.url) for m in listed}
        others = [m.id for m in listed]
        gone = {other for other in others if is_gone(conn, other)}
        self.live = {self.me.id, *(m for m in others if m not in gone)}
        if self.epoch is not None:
            if renew_lease(conn, LEADER, self.me.id, self.epoch, self.ttl):
                self._renewed = time.monotonic()
                return True
            return False
        lease = lease_view(conn, LEADER)
        if lease is not None and lease.valid and lease.holder not in gone:
            return False
        epoch = acquire_lease(conn, LEADER, self.me.id, self.ttl, gone)
        if epoch is None:
            return False
        self.epoch = epoch
        self._renewed = time.monotonic()
        return True

"""What masters on one PostgreSQL tell each other, by ``NOTIFY`` on one channel.

Each notice names the master that sent it (``origin``; a master ignores its own) and is one
JSON object of at most ``MAX_PAYLOAD`` bytes (PostgreSQL refuses 8000 and more):

- ``desired``: these nodes' desired state changed; the master their agent is connected to
  pushes it to them. ``ask`` numbers the sender's requests: that master answers ``answered``
  once the node reported on the state it pushed (a rollout judges a failure only by such a report).
- ``answered``: ``node`` reported after the push asked by ``to``'s request ``ask``.
- ``status``: agents reported a change (a rollout waiting on it looks again).
- ``nodes``: a node came online or changed, or a Docker volume was removed (waiting instances
  may place).
- ``deploy``: a deployment was recorded by a master that is not the leader; the leader rolls it out.

A notice is sent after the transaction that made its change committed, so whoever acts on it
reads that change. A master whose listening connection broke catches up on reconnect (it pushes
to all its agents and wakes what waits), since notices sent meanwhile are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Annotated, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import text
from sqlalchemy.orm import Session

from moorage.store.database import Database

__all__ = [
    "CHANNEL",
    "AnsweredNotice",
    "DeployNotice",
    "DesiredNotice",
    "NodesNotice",
    "Notice",
    "PeerNotices",
    "StatusNotice",
    "decode_notice",
    "desired_notices",
    "encode_notice",
]

log = logging.getLogger("moorage.master.peer_notices")

CHANNEL = "moorage_masters"
MAX_PAYLOAD = 7900
NODES_PER_NOTICE = 100  # node ids are at most 64 characters: 100 of them stay under MAX_PAYLOAD
RECONNECT_DELAY = 1.0


class _Notice(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    origin: str = Field(min_length=1, max_length=32)


class DesiredNotice(_Notice):
    kind: Literal["desired"] = "desired"
    nodes: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(max_length=NODES_PER_NOTICE)
    ask: int = Field(ge=0)


class AnsweredNotice(_Notice):
    kind: Literal["answered"] = "answered"
    to: str = Field(min_length=1, max_length=32)
    node: str = Field(min_length=1, max_length=64)
    ask: int = Field(ge=0)


class StatusNotice(_Notice):
    kind: Literal["status"] = "status"


class NodesNotice(_Notice):
    kind: Literal["nodes"] = "nodes"


class DeployNotice(_Notice):
    kind: Literal["deploy"] = "deploy"


Notice: TypeAlias = DesiredNotice | AnsweredNotice | StatusNotice | NodesNotice | DeployNotice
TaggedNotice: TypeAlias = Annotated[Notice, Field(discriminator="kind")]
_NOTICE: TypeAdapter[Notice] = TypeAdapter(TaggedNotice)


def encode_notice(notice: Notice) -> str:
    payload = notice.model_dump_json()
    if len(payload.encode()) > MAX_PAYLOAD:  # a bug of ours, not a peer's: the sizes are bounded
        raise ValueError(f"notice of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return payload


def decode_notice(payload: str) -> Notice | None:
    """The notice, or None (with one log line) for anything that is not one of ours: the
    channel is open to every session of the database's role."""
    try:
        return _NOTICE.validate_json(payload)
    except ValidationError as err:
        problem = err.errors()[0]
        where = ".".join(str(p) for p in problem["loc"]) or "payload"
        log.warning("ignoring a notice on %s that is not a master's: %s: %s", CHANNEL, where, problem["msg"])
        return None


def desired_notices(origin: str, nodes: Iterable[str], ask: int) -> list[DesiredNotice]:
    """The ``desired`` notices for these nodes, ``NODES_PER_NOTICE`` to a notice."""
    ids = sorted(set(nodes))
    return [
        DesiredNotice(origin=origin, nodes=ids[i : i + NODES_PER_NOTICE], ask=ask)
        for i in range(0, len(ids), NODES_PER_NOTICE)
    ]


Handler = Callable[[Notice], Awaitable[None]]


def _notify(session: Session, params: list[dict[str, str]]) -> None:
    session.execute(text("SELECT pg_notify(:channel, :payload)"), params)


class PeerNotices:
    """Listens on ``CHANNEL`` (its own connection, autocommit) and hands every peer's notice to
    ``handle``; ``send`` queues a notice, sent with the others queued meanwhile in one
    transaction by a task of its own (a burst of status reports is one round trip)."""

    def __init__(
        self, db: Database, me: str, handle: Handler, caught_up: Callable[[], Awaitable[None]]
    ) -> None:
        self.db = db
        self.me = me
        self._handle = handle
        self._caught_up = caught_up  # after a reconnect: notices may have been lost meanwhile
        self._queue: list[str] = []
        self._queued = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.listening = asyncio.Event()  # set while the listening connection is up

    def send(self, notice: Notice) -> None:
        payload = encode_notice(notice)
        if payload not in self._queue:  # the same notice twice in one batch says nothing more
            self._queue.append(payload)
        self._queued.set()

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="peer-notices-listen"),
            asyncio.create_task(self._send_queued(), name="peer-notices-send"),
        ]
        with contextlib.suppress(TimeoutError):  # a master whose store is slow still starts
            await asyncio.wait_for(self.listening.wait(), 10)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _send_queued(self) -> None:
        while True:
            await self._queued.wait()
            self._queued.clear()
            params = [{"channel": CHANNEL, "payload": p} for p in self._queue]
            self._queue = []
            try:
                await self.db.run(partial(_notify, params=params))
            except Exception as err:  # the peers catch up when their listener reconnects
                log.warning("could not notify the other masters (%d notices lost): %s", len(params), err)

    async def _listen(self) -> None:
        import psycopg

        url = self.db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        first = True
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    if not first:
                        log.info("listening to the other masters again; catching up")
                        await self._caught_up()
                    first = False
                    async for notify in conn.notifies():
                        notice = decode_notice(notify.payload)
                        if notice is None or notice.origin == self.me:
                            continue
                        try:
                            await self._handle(notice)
                        except Exception:
                            log.exception("handling a %s notice failed", notice.kind)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.listening.clear()
                log.warning("lost the connection that listens to the other masters: %s", err)
                await asyncio.sleep(RECONNECT_DELAY)

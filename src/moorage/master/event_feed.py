"""Following a grid's events (``GET /v1/grids/{grid}/events?follow=true``): NDJSON lines, one
event each, as they are committed.

A feed reads the events after its cursor, then waits until this master commits new events
(``EventLog.listen``) or ``POLL`` seconds pass (events another master wrote), and reads again.
On PostgreSQL, ids are taken in one order and may be committed in another: a feed reads again
the last ``LOOKBACK`` ids it passed and sends what it had not sent (SQLite commits one writer at
a time, in id order). Every ``KEEPALIVE`` seconds without an event it sends an empty line, so a
client or proxy sees the stream alive. The master's stop ends every feed (``Followers.stop``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

from moorage.master.event_schemas import event_out
from moorage.store.database import Database
from moorage.store.events import EventFilter, events_after

__all__ = ["KEEPALIVE", "LOOKBACK", "POLL", "Followers"]

POLL = 1.0
KEEPALIVE = 15.0
LOOKBACK = 200
_READ = 500  # events per read


class Followers:
    """The feeds of one master, so that its stop ends them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._wakes: set[asyncio.Event] = set()
        self._stopping = False

    async def stop(self) -> None:
        self._stopping = True
        for wake in list(self._wakes):
            wake.set()

    async def lines(self, grid_id: int, grid: str, where: EventFilter, after: int) -> AsyncIterator[bytes]:
        """The events after ``after`` that match, one JSON line each, until the master stops
        (or the client goes: Starlette then cancels this)."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        self._wakes.add(wake)

        def committed() -> None:  # on the committing thread
            loop.call_soon_threadsafe(wake.set)

        stop_listening = self.db.events.listen(committed)
        lookback = 0 if self.db.is_sqlite else LOOKBACK
        cursor = after
        sent: set[int] = set()  # ids above cursor - lookback already sent
        quiet = 0.0
        try:
            while not self._stopping:
                wake.clear()
                page = await self.db.read(
                    partial(
                        events_after,
                        grid_id=grid_id,
                        grid=grid,
                        where=where,
                        after=max(after, cursor - lookback),
                        limit=_READ,
                    )
                )
                fresh = [view for view in page.events if view.id not in sent]
                for view in fresh:
                    yield event_out(view).model_dump_json().encode() + b"\n"
                cursor = max(cursor, page.newer)
                sent = (
                    {i for i in sent | {v.id for v in fresh} if i > cursor - lookback} if lookback else set()
                )
                if fresh:
                    quiet = 0.0
                if len(page.events) == _READ:
                    continue  # more to read at once
                if quiet >= KEEPALIVE:
                    quiet = 0.0
                    yield b"\n"
                try:
                    await asyncio.wait_for(wake.wait(), POLL)
                except TimeoutError:
                    quiet += POLL
        finally:
            stop_listening()
            self._wakes.discard(wake)

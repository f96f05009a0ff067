"""Events: what happened in a grid, recorded in the same transaction as the change they tell of.

Record with ``record_events(session, NewEvent(...), ...)`` inside the unit of work that makes
the change (a rolled-back change leaves no event). It costs one INSERT for all the events given
(one executemany, or one COPY on PostgreSQL), so record a batch's events in one call. Every
``prune_every`` events written for a grid by this process, the same call deletes that grid's
oldest events beyond ``kept`` (one DELETE), and the master prunes every grid once at start
(``prune_all_events``): a grid holds at most ``kept + prune_every - 1`` events (plus the last
call's own). The bound is the ``Database``'s ``EventLog`` (``moorage master
--events-kept``), which also tells followers (``GET .../events?follow=true``) that new events
were committed.

Reading: ``event_page`` (newest first back in time from a cursor, or on from one) with filters
on the subject; the cursor is an event's id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, delete, func, or_, select
from sqlalchemy.orm import Session

from moorage.model.events import EventKind
from moorage.store.bulk_insert import insert_rows
from moorage.store.tables import EventRow

__all__ = [
    "EVENTS_KEPT",
    "EventFilter",
    "EventLog",
    "EventPage",
    "EventView",
    "NewEvent",
    "event_log",
    "event_page",
    "events_after",
    "newest_event_id",
    "prune_all_events",
    "prune_events",
    "record_events",
]

EVENTS_KEPT = 10_000
"""Events kept per grid by default (and for the master's own, such as tokens)."""

_INFO_KEY = "moorage_events"  # where a session finds its database's EventLog (Session.info)


class EventLog:
    """One database's event bound and who waits for new events (see the module).

    ``listen(callback)``: ``callback()`` is called (from the committing thread) after every
    commit that recorded events; it must only hand off (``loop.call_soon_threadsafe``)."""

    def __init__(self, kept: int = EVENTS_KEPT) -> None:
        if kept < 1:
            raise ValueError("at least one event must be kept per grid")
        self.kept = kept
        self.prune_every = max(1, kept // 10)
        self._lock = threading.Lock()
        self._since_prune: dict[int | None, int] = {}
        self._listeners: list[Callable[[], None]] = []

    def written(self, grid_id: int | None, count: int) -> bool:
        """Count ``count`` events written for a grid; whether it is time to prune it."""
        with self._lock:
            since = self._since_prune.get(grid_id, 0) + count
            if since >= self.prune_every:
                self._since_prune[grid_id] = 0
                return True
            self._since_prune[grid_id] = since
            return False

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` after each commit with events; returns what stops that."""
        with self._lock:
            self._listeners.append(callback)

        def stop() -> None:
            with self._lock:
                if callback in self._listeners:
                    self._listeners.remove(callback)

        return stop

    def committed(self, session: Session) -> None:
        """The session's transaction committed (``Database`` calls this on every commit)."""
        if not session.info.pop(_WROTE, False):
            return
        with self._lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()

    def rolled_back(self, session: Session) -> None:
        session.info.pop(_WROTE, None)


_WROTE = "moorage_events_written"
_DEFAULT_LOG = EventLog()  # for sessions made outside a Database (tests of other store modules)


def event_log(session: Session) -> EventLog:
    found = session.info.get(_INFO_KEY)
    return found if isinstance(found, EventLog) else _DEFAULT_LOG


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to record: in grid ``grid_id`` (None: the master's own), what happened (``kind``
    and a sentence a person reads), who did it (the admin token's name, for what a user did) and
    the ids of its subject as they are now."""

    grid_id: int | None
    kind: EventKind
    message: str
    actor: str | None = None
    stack: str | None = None
    service: str | None = None
    instance: int | None = None
    volume: str | None = None
    volume_instance: str | None = None
    node_id: str | None = None
    node: str | None = None
    deployment: str | None = None
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def row(self) -> dict[str, Any]:
        return {
            "grid_id": self.grid_id,
            "time": self.time,
            "kind": str(self.kind),
            "message": self.message,
            "actor": self.actor,
            "stack": self.stack,
            "service": self.service,
            "instance": self.instance,
            "volume": self.volume,
            "volume_instance": self.volume_instance,
            "node_id": self.node_id,
            "node": self.node,
            "deployment": self.deployment,
        }


def record_events(session: Session, *events: NewEvent) -> None:
    """Record ``events`` in the session's transaction (one INSERT), and keep each grid they are
    in within the bound (a DELETE every ``prune_every`` of its events). Nothing for none."""
    if not events:
        return
    insert_rows(session.connection(), EventRow, [event.row() for event in events])
    session.info[_WROTE] = True
    log = event_log(session)
    counts: dict[int | None, int] = {}
    for event in events:
        counts[event.grid_id] = counts.get(event.grid_id, 0) + 1
    for grid_id, count in counts.items():
        if log.written(grid_id, count):
            prune_events(session, grid_id, log.kept)


def prune_events(session: Session, grid_id: int | None, kept: int) -> None:
    """Delete the grid's events older than its newest ``kept`` (index ``ix_events_grid_id``)."""
    own = EventRow.grid_id.is_(None) if grid_id is None else EventRow.grid_id == grid_id
    cutoff = select(EventRow.id).where(own).order_by(EventRow.id.desc()).offset(kept).limit(1)
    session.execute(delete(EventRow).where(own, EventRow.id <= cutoff.scalar_subquery()))


def prune_all_events(session: Session, kept: int) -> None:
    """Every grid (and the master's own events) within the bound: at master start, so that what
    a master wrote since its last prune does not add up over restarts."""
    grids = set(session.scalars(select(EventRow.grid_id).distinct()))
    for grid_id in grids:
        prune_events(session, grid_id, kept)


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Which events of a grid to read: each given field must match (``node``: name or id;
    ``kind``: a kind, or its subject before the dot, such as ``deployment``)."""

    stack: str | None = None
    service: str | None = None
    volume: str | None = None
    node: str | None = None
    kind: str | None = None

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.stack, self.service, self.volume, self.node, self.kind))


@dataclass(frozen=True, slots=True)
class EventView:
    id: int
    time: datetime
    kind: str
    message: str
    actor: str | None
    grid: str | None
    stack: str | None
    service: str | None
    instance: int | None
    volume: str | None
    volume_instance: str | None
    node_id: str | None
    node: str | None
    deployment: str | None


@dataclass(frozen=True, slots=True)
class EventPage:
    """Events oldest first; ``older``: the cursor of the page before (None: no older event
    matches); ``newer``: the cursor to read on from (the newest event looked at)."""

    events: list[EventView]
    older: int | None
    newer: int


def _query(grid_id: int, where: EventFilter) -> Select[Any]:
    query = select(EventRow).where(or_(EventRow.grid_id == grid_id, EventRow.grid_id.is_(None)))
    if where.stack is not None:
        query = query.where(EventRow.stack == where.stack)
    if where.service is not None:
        query = query.where(EventRow.service == where.service)
    if where.volume is not None:
        query = query.where(EventRow.volume == where.volume)
    if where.node is not None:
        query = query.where(or_(EventRow.node == where.node, EventRow.node_id == where.node))
    if where.kind is not None:
        query = query.where(
            EventRow.kind == where.kind if "." in where.kind else EventRow.kind.startswith(where.kind + ".")
        )
    return query


def _view(row: EventRow, grid: str) -> EventView:
    return EventView(
        id=row.id,
        time=row.time,
        kind=row.kind,
        message=row.message,
        actor=row.actor,
        grid=grid if row.grid_id is not None else None,
        stack=row.stack,
        service=row.service,
        instance=row.instance,
        volume=row.volume,
        volume_instance=row.volume_instance,
        node_id=row.node_id,
        node=row.node,
        deployment=row.deployment,
    )


def newest_event_id(session: Session) -> int:
    """The id of the newest event of the store (0 for none): a cursor behind every event to come."""
    return int(session.scalar(select(func.max(EventRow.id))) or 0)


def event_page(
    session: Session, grid_id: int, grid: str, where: EventFilter, *, limit: int, before: int | None = None
) -> EventPage:
    """The newest ``limit`` events that match (older than ``before``, if given), oldest first."""
    newest = newest_event_id(session)  # first: what commits meanwhile comes after the cursor
    query = _query(grid_id, where).where(EventRow.id <= newest)
    if before is not None:
        query = query.where(EventRow.id < before)
    rows = list(session.scalars(query.order_by(EventRow.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    if before is not None:
        newest = rows[-1].id if rows else min(before - 1, newest)
    return EventPage(
        events=[_view(row, grid) for row in rows], older=rows[0].id if more and rows else None, newer=newest
    )


def events_after(
    session: Session,
    grid_id: int,
    grid: str,
    where: EventFilter,
    *,
    after: int,
    limit: int,
    before: int | None = None,
) -> EventPage:
    """The oldest ``limit`` events that match after ``after`` (and before ``before``), oldest
    first; ``newer`` is the last of them when there may be more, else the newest event of the
    store (or the one before ``before``)."""
    newest = newest_event_id(session)
    if before is not None:
        newest = max(after, min(newest, before - 1))
    query = _query(grid_id, where).where(EventRow.id > after, EventRow.id <= newest)
    rows = list(session.scalars(query.order_by(EventRow.id).limit(limit)))
    newer = rows[-1].id if len(rows) == limit else max(newest, after)
    return EventPage(events=[_view(row, grid) for row in rows], older=None, newer=newer)

"""Two units of work at the same time on a real store, each on a thread of its own, interleaved
where a race hurts: the second starts once the first has done its reads and is about to write.

``interleave(db, first, second)`` runs ``first`` in a unit of work (``Database.session``) on a
thread; just before its first write (INSERT, UPDATE or DELETE) it stops and lets ``second`` run in
a unit of work of its own on another thread, and goes on once ``second`` has finished, or is
waiting for a lock that ``first`` holds (what a store that serializes the two makes it do):

- PostgreSQL: ``second``'s backend waits on a lock (``pg_stat_activity.wait_event_type``);
- SQLite: ``second`` is inside its ``BEGIN IMMEDIATE`` (in WAL mode the write lock is the only
  lock there is, and a writer that holds it makes every other writer's ``BEGIN IMMEDIATE`` wait).

So without a lock, ``first`` writes on the strength of reads that ``second`` has made stale, and
with one, ``second`` runs after ``first`` has committed. Each answers with what it returned or the
error it raised; the test says which outcomes a user may see and what the store must hold after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from moorage.store.database import Database
from tests.support.waiting import wait_until

__all__ = ["Outcome", "interleave"]

WRITES = ("INSERT", "UPDATE", "DELETE")
TIMEOUT = 30.0


@dataclass
class Outcome:
    """What one unit of work came to: what it returned, or what it raised."""

    value: Any = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Watch:
    """Per thread: where each of the two units of work is (set by the engine's events)."""

    def __init__(self) -> None:
        self.first: threading.Thread | None = None
        self.second: threading.Thread | None = None
        self.first_paused = threading.Event()
        self.first_resume = threading.Event()
        self.second_pid: int | None = None
        self.second_beginning = False

    def before(self, conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        me = threading.current_thread()
        words = statement.lstrip().upper()
        if me is self.second:
            if self.second_pid is None and conn.dialect.name == "postgresql":
                self.second_pid = conn.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
            if words.startswith("BEGIN"):
                self.second_beginning = True
        elif me is self.first and not self.first_paused.is_set() and words.startswith(WRITES):
            self.first_paused.set()
            if not self.first_resume.wait(TIMEOUT):
                raise AssertionError("the second unit of work neither finished nor waited")

    def after(self, _conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread() is self.second and statement.lstrip().upper().startswith("BEGIN"):
            self.second_beginning = False


def _waiting_on_a_lock(watch: _Watch, observer: Engine | None) -> bool:
    if observer is None:
        return watch.second_beginning
    if watch.second_pid is None:
        return False
    with observer.connect() as conn:
        waiting = conn.execute(
            text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": watch.second_pid}
        ).scalar()
    return waiting == "Lock"


def _unit(db: Database, work: Callable[[Session], Any], outcome: Outcome) -> Callable[[], None]:
    def run() -> None:
        try:
            with db.session() as session:
                outcome.value = work(session)
        except BaseException as error:  # the test judges it
            outcome.error = error

    return run


def interleave(
    db: Database, first: Callable[[Session], Any], second: Callable[[Session], Any]
) -> tuple[Outcome, Outcome]:
    """``first`` and ``second`` at the same time, ``second`` let in just before ``first`` writes."""
    watch = _Watch()
    one, two = Outcome(), Outcome()
    watch.first = threading.Thread(target=_unit(db, first, one), name="first")
    watch.second = threading.Thread(target=_unit(db, second, two), name="second")
    observer = None if db.is_sqlite else create_engine(db.url)
    event.listen(db.engine, "before_cursor_execute", watch.before)
    event.listen(db.engine, "after_cursor_execute", watch.after)
    try:
        watch.first.start()
        wait_until(
            lambda: watch.first_paused.is_set() or not watch.first.is_alive(),  # type: ignore[union-attr]
            TIMEOUT,
            "the first unit of work to reach its first write",
            interval=0.01,
        )
        assert watch.first_paused.is_set(), f"the first unit of work never wrote: {one}"
        watch.second.start()
        wait_until(
            lambda: not watch.second.is_alive() or _waiting_on_a_lock(watch, observer),  # type: ignore[union-attr]
            TIMEOUT,
            "the second unit of work to finish or wait for a lock",
            interval=0.01,
        )
        watch.first_resume.set()
        watch.first.join(TIMEOUT)
        watch.second.join(TIMEOUT)
        assert not watch.first.is_alive() and not watch.second.is_alive(), "a unit of work hangs"
    finally:
        watch.first_resume.set()
        event.remove(db.engine, "before_cursor_execute", watch.before)
        event.remove(db.engine, "after_cursor_execute", watch.after)
        if observer is not None:
            observer.dispose()
    return one, two

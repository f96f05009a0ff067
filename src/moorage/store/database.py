"""Opening the master's database and bringing its schema up to date with Alembic."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config
from anyio import to_thread
from pydantic_core import from_json, to_json
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from moorage.store.events import EVENTS_KEPT, EventLog
from moorage.store.planner_statistics import analyze_grown_tables

__all__ = ["Database", "keep_private", "normalize_url"]

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x4D4F4F5201  # advisory lock key held while migrating (PostgreSQL)

T = TypeVar("T")


def normalize_url(url: str) -> str:
    """Accept the URLs users write (``postgresql://…``) and pick the driver Moorage ships with."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def keep_private(database: Path) -> None:
    """A SQLite store holds token hashes and every service's env: its file is 0600, made so before
    SQLite opens it, whatever the folder's mode or the umask. SQLite gives its -wal and -shm the
    main file's mode; any left from before are set too."""
    if not database.parent.is_dir():
        return  # SQLite reports the missing folder itself
    fd = os.open(database, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    for extra in (database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
        if extra.exists():
            os.chmod(extra, 0o600)


def _dump_json(value: Any) -> str:
    """JSON columns are written with pydantic's serializer: the same JSON as ``json.dumps`` for
    what Moorage stores (dicts, lists, strings, numbers), about three times faster."""
    return to_json(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # pysqlite begins nothing itself: ``_begin_writing`` does
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _begin_writing(connection: Connection) -> None:
    """Every unit of work on SQLite's writing engine takes the write lock as it begins, before
    its first read (see ``Database``)."""
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_reader_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # a write on the reader is a bug: fail, never take the lock
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


class Database:
    """An engine plus a session factory for one master's store.

    Store work from the event loop goes through ``run`` (a worker thread) or ``read``. A SQLite
    file in WAL mode never makes a reader wait for a lock, so ``read`` runs there on the loop
    itself, on a connection of its own that may only read: the work is CPU in this process either
    way, and handing it to a thread and back (two wake-ups, and the GIL passed back and forth)
    cost about a fifth of a read request's CPU under load. Everything else uses a worker thread.

    A unit of work that writes does so on the strength of what it read (a name is free, a volume
    exists and nothing mounts it, a stack is at revision N), so what it read must not change before
    it commits. On SQLite every unit of work of ``session`` begins with ``BEGIN IMMEDIATE``: it holds
    the one write lock from its first read, so writers run one after the other, each reading what
    the last committed (readers, in WAL mode, never wait). On PostgreSQL (READ COMMITTED) the
    store's functions lock the rows they rely on (``FOR UPDATE`` to change or delete a row,
    ``FOR SHARE`` to rely on its existence); SQLite renders no ``FOR`` clause, so one code path
    serves both. ``tests/unit/test_concurrent_writes.py`` interleaves such units of work.
    """

    def __init__(self, url: str, *, events_kept: int = EVENTS_KEPT) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        parsed = make_url(self.url)
        self._inline_reads = (
            self.is_sqlite
            and parsed.database not in (None, "", ":memory:")
            and parsed.query.get("mode") != "memory"
        )
        if self._inline_reads and parsed.database is not None and not parsed.database.startswith("file:"):
            keep_private(Path(parsed.database))
        self._reader: sessionmaker[Session] | None = None
        self._reader_engine: Engine | None = None
        kwargs: dict[str, Any] = {"json_serializer": _dump_json, "json_deserializer": from_json}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 10}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
            event.listen(self.engine, "begin", _begin_writing)
        # the events' bound and followers (store/events.py), found by every session of this store
        self.events = EventLog(events_kept)
        self.sessions = sessionmaker(
            self.engine, expire_on_commit=False, info={"moorage_events": self.events}
        )
        event.listen(self.sessions, "after_commit", self.events.committed)
        event.listen(
            self.sessions, "after_soft_rollback", lambda session, _tx: self.events.rolled_back(session)
        )
        self._before_commit: Callable[[Session], None] | None = None

    def fenced(self, check: Callable[[Session], None]) -> Database:
        """This store, with ``check(session)`` run as the last statement of every unit of work
        before its commit (it raises to roll the unit back): the deployer's writes carry the
        leader's lease check (``store/masters.check_lease``). Shares the engine."""
        fenced = copy.copy(self)
        fenced._before_commit = check
        return fenced

    def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (run at master start)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as connection:
            if not self.is_sqlite:  # masters starting at once on one PostgreSQL migrate one by one
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends, rolled back if it raises."""
        with self.sessions() as session, session.begin():
            yield session
            if self._before_commit is not None:
                self._before_commit(session)
        analyze_grown_tables(self.engine)  # after a bulk load, PostgreSQL's planner needs to know

    async def run(self, work: Callable[[Session], T]) -> T:
        """``work(session)`` in one unit of work on a worker thread, so the event loop never waits
        on the store's locks or network. An API route makes one call for all its store work."""

        def unit() -> T:
            with self.session() as session:
                return work(session)

        return await to_thread.run_sync(unit)

    async def read(self, work: Callable[[Session], T]) -> T:
        """``work(session)``, which only reads: on the event loop for a SQLite file in WAL mode
        (see the class), else like ``run``. Nothing else may run on the loop meanwhile, so keep
        ``work`` to what one request needs."""
        reader = self._read_sessions()
        if reader is None:
            return await self.run(work)
        with reader() as session, session.begin():
            return work(session)

    def _read_sessions(self) -> sessionmaker[Session] | None:
        if self._inline_reads and self._reader is None:
            engine = create_engine(
                self.url,
                json_serializer=_dump_json,
                json_deserializer=from_json,
                poolclass=StaticPool,  # one connection, used by the event loop's thread alone
                connect_args={"check_same_thread": False, "timeout": 10},
            )
            event.listen(engine, "connect", _sqlite_reader_pragmas)
            with engine.connect() as connection:
                wal = str(connection.execute(text("PRAGMA journal_mode")).scalar()).lower() == "wal"
            if wal:
                self._reader_engine = engine
                self._reader = sessionmaker(engine, expire_on_commit=False)
            else:  # a reader could wait for a writer's lock: not on the loop
                engine.dispose()
                self._inline_reads = False
        return self._reader

    def dispose(self) -> None:
        if self._reader_engine is not None:
            self._reader_engine.dispose()
        self.engine.dispose()

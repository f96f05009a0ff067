"""A cheap token that says whether anything was committed to the store since it was taken.

``data_version(session)`` reads it on the session's connection. Two tokens from the same
connection are equal only when no transaction that changed the database committed in between:
through this master's engine or any other connection, from this process or another (a second
master on the same file, ``sqlite3`` by hand). So a result derived from reads made *after* taking
a token may be kept under it and served while a later token is still equal: the reads saw at
least what the token did, and an equal token means nothing changed since. No writer has to say
what it changed; there is nothing to forget.

It is exact and costs two pragmas on a SQLite connection that cannot write (the event loop's
reader, see ``Database.read``): ``PRAGMA data_version`` changes on every commit of another
connection, and a connection that may write would miss its own. Elsewhere (a connection that may
write, PostgreSQL) there is no such token and ``data_version`` returns None: keep nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy.orm import Session

__all__ = ["data_version", "data_version_probe"]


def data_version(session: Session) -> Hashable | None:
    raw = _read_only_sqlite(session)
    return None if raw is None else _token(raw)


def data_version_probe(session: Session) -> Callable[[], Hashable | None] | None:
    """A function that takes ``data_version`` again later on the same connection, without a
    session (two pragmas' worth of work): for the one thread that uses that connection, between
    its units of work (the event loop and ``Database.read``'s reader). It answers None once the
    connection is gone (the store was closed): take a session then. None where there is no token.
    """
    raw = _read_only_sqlite(session)
    if raw is None:
        return None

    def probe() -> Hashable | None:
        try:
            return _token(raw)
        except Exception:  # closed, or any other trouble: say so, and the caller reads properly
            return None

    return probe


def _read_only_sqlite(session: Session) -> Any:
    """The session's SQLite connection (the driver's) if it cannot write, else None."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return None
    raw = connection.connection.driver_connection
    if raw is None or _pragma(raw, "query_only") != 1:
        return None  # its own commits would not change data_version
    return raw


def _token(raw: Any) -> Hashable:
    # data_version is per connection: the connection itself is part of the token (by identity)
    return (raw, _pragma(raw, "data_version"))


def _pragma(raw: Any, name: str) -> Any:
    cursor = raw.cursor()
    try:  # closed at once: a statement left open could hold a read transaction, and its snapshot
        cursor.execute(f"PRAGMA {name}")
        return cursor.fetchone()[0]
    finally:
        cursor.close()

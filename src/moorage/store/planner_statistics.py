"""PostgreSQL's planner statistics, refreshed after the master itself grew a table in bulk.

A large deployment inserts thousands of rows in seconds; autovacuum analyzes a changed table only
after its next nap (a minute by default). Until then the planner works from what the table looked
like before, or from nothing on a fresh database: it takes a grid for a handful of rows and finds
volume instances by name through the grid column alone, reading every row of the grid for each
look-up (a test holds the plan). PostgreSQL's advice for bulk loads is to ``ANALYZE`` afterwards.

``note_bulk_insert`` counts the rows a bulk insert added; once a unit of work has committed,
``analyze_grown_tables`` runs ``ANALYZE`` on each table that grew by a fifth (and at least a
thousand rows) since this process last saw it analyzed, on a connection of its own in autocommit:
its lock (which blocks no reader or writer) is held only while it samples, never inside the
deployment's transaction. SQLite needs none of this: it plans from the indexes alone.
"""

from __future__ import annotations

import logging
import threading
import weakref
from dataclasses import dataclass

from sqlalchemy import Connection, Table, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

__all__ = ["analyze_grown_tables", "note_bulk_insert"]

log = logging.getLogger(__name__)

MIN_GROWTH_ROWS = 1_000
GROWTH_FRACTION = 0.2


@dataclass
class _Growth:
    inserted: int = 0  # rows this process inserted since the table was last analyzed
    rows: float | None = None  # the table's rows at that time, as the planner knows them


_lock = threading.Lock()
_growth: weakref.WeakKeyDictionary[Engine, dict[str, _Growth]] = weakref.WeakKeyDictionary()


def note_bulk_insert(connection: Connection, table: Table, count: int) -> None:
    """Count ``count`` rows inserted into ``table`` (PostgreSQL only)."""
    if connection.dialect.name != "postgresql":
        return
    with _lock:
        _growth.setdefault(connection.engine, {}).setdefault(table.name, _Growth()).inserted += count


def analyze_grown_tables(engine: Engine) -> list[str]:
    """ANALYZE the tables that grew enough (after a commit); the names of those analyzed.

    A failure is logged, not raised: the work it follows is committed already, and autovacuum
    will analyze the table in its turn.
    """
    with _lock:
        tables = _growth.get(engine)
        candidates = [name for name, g in (tables or {}).items() if g.inserted >= MIN_GROWTH_ROWS]
    if not candidates or tables is None:
        return []
    analyzed: list[str] = []
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in candidates:
                with _lock:
                    growth = tables[name]
                    if growth.rows is None:
                        growth.rows = _planner_rows(conn, name)
                    if growth.inserted < max(MIN_GROWTH_ROWS, GROWTH_FRACTION * growth.rows):
                        continue
                    tables[name] = _Growth()  # another thread finding it due now finds it done
                conn.execute(text(f"ANALYZE {conn.dialect.identifier_preparer.quote(name)}"))
                with _lock:
                    tables[name].rows = _planner_rows(conn, name)
                analyzed.append(name)
    except SQLAlchemyError as err:
        log.warning("could not refresh the planner's statistics of %s: %s", ", ".join(candidates), err)
    return analyzed


def _planner_rows(conn: Connection, table: str) -> float:
    """``pg_class.reltuples``: -1 (PostgreSQL 14+) or 0 when never analyzed."""
    found = conn.execute(
        text("SELECT reltuples FROM pg_class WHERE oid = CAST(:name AS regclass)"), {"name": table}
    ).scalar()
    return max(float(found or 0), 0.0)

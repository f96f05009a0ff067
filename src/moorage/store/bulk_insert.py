"""INSERT many rows of one table with one executemany, preparing per statement what SQLAlchemy
Core prepares per row.

``connection.execute(insert(table), rows)`` compiles once but then builds each row's parameters
in Python: it looks every column up and runs its bind processor (JSON serializer, date format)
row after row. For the placements of a deployment (thousands of rows, the same timestamp in
each) that was about a third of the cost of placing an instance. Here the statement is compiled
once per (table, columns, dialect) by SQLAlchemy, each column's bind processor is taken from its
type once, a value shared by consecutive rows (a timestamp) is processed once, and the rows go
to ``Connection.exec_driver_sql``: the same SQL, the same parameter values, no per-row framework.

On PostgreSQL the rows go through ``COPY ... FROM STDIN`` on the same connection (so in the same
transaction) instead: psycopg's executemany sends and the server runs one INSERT per row; COPY
is PostgreSQL's own bulk path, one statement for all of them. The values are the ones the bind
processors made, as for the INSERT.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any, cast

from sqlalchemy import Connection, Table, insert
from sqlalchemy.engine import Dialect

from moorage.store.planner_statistics import note_bulk_insert
from moorage.store.tables import Base

__all__ = ["insert_rows"]

_Prepared = tuple[str, tuple[str, ...], tuple[Callable[[Any], Any] | None, ...], bool]
# per dialect (an engine's, with its JSON serializer), gone with it: an id() could be reused by
# another engine's dialect of another kind
_prepared: weakref.WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...]], _Prepared]] = (
    weakref.WeakKeyDictionary()
)


def _prepare(table: Table, columns: tuple[str, ...], dialect: Dialect) -> _Prepared:
    prepared = _prepared.setdefault(dialect, {})
    key = (table.name, columns)
    found = prepared.get(key)
    if found is None:
        compiled = insert(table).compile(dialect=dialect, column_keys=list(columns))
        order = tuple(compiled.positiontup or ()) if compiled.positional else columns
        processors = tuple(table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order)
        found = prepared[key] = (compiled.string, order, processors, compiled.positional)
    return found


def insert_rows(connection: Connection, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys, column names of ``model``'s table) in one executemany."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    columns = tuple(rows[0])
    sql, order, processors, positional = _prepare(table, columns, connection.dialect)
    last: list[Any] = [object()] * len(order)  # per column: the last raw value and what it became
    done: list[Any] = [None] * len(order)
    processed: list[tuple[Any, ...]] = []
    for row in rows:
        values = []
        for i, name in enumerate(order):
            value = row[name]
            process = processors[i]
            if process is not None:
                if value is not last[i]:
                    last[i], done[i] = value, process(value)
                value = done[i]
            values.append(value)
        processed.append(tuple(values))
    if connection.dialect.name == "postgresql":
        _copy(connection, table, order, processed)
        note_bulk_insert(connection, table, len(processed))
    elif positional:
        connection.exec_driver_sql(sql, processed)
    else:
        connection.exec_driver_sql(sql, [dict(zip(order, values, strict=True)) for values in processed])


def _copy(connection: Connection, table: Table, order: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """``COPY table (columns) FROM STDIN`` of ``rows`` through psycopg, in the open transaction."""
    preparer = connection.dialect.identifier_preparer
    columns = ", ".join(preparer.quote(name) for name in order)
    driver = connection.connection.driver_connection
    assert driver is not None, "a pooled connection has its driver's connection"
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)

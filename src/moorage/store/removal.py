"""Removing a row a request found: the remove counts only if this unit of work deleted the row.

A remove reads the row, checks what it must, then deletes it. Two removes of one row at the same
time both find it (SQLite's reads run before the write lock is taken; under PostgreSQL's READ
COMMITTED both read before either commits), but only one DELETE matches the row. The other must
answer 404, as it would a moment later, not 200: ``delete_found`` raises ``NotFound`` when the
DELETE matched nothing, and the unit of work rolls back whatever else it changed.

The DELETE names the row by its id and by the name the request gave: SQLite gives a new row the
id of the last one deleted (an ``INTEGER PRIMARY KEY`` without ``AUTOINCREMENT``), so between the
read and the DELETE the id alone may have come to mean another stack or volume.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, delete
from sqlalchemy.orm import Session

from moorage.errors import NotFound
from moorage.store.tables import Base

__all__ = ["delete_found"]


def delete_found(
    session: Session, model: type[Base], not_found: str | Callable[[], str], *where: ColumnElement[bool]
) -> None:
    """DELETE the ``model`` row that ``where`` names (its id and its name); ``NotFound`` if there
    is none any more, with ``not_found`` as its message (or what it makes, when that takes a read)."""
    result = cast(CursorResult[Any], session.execute(delete(model).where(*where)))
    if result.rowcount == 0:
        raise NotFound(not_found if isinstance(not_found, str) else not_found())

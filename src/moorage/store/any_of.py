"""``column IN (values)`` for long lists of strings, in the form each backend handles best.

A deployment looks up volume instances by a couple of thousand Docker names. As ``IN (…)`` that
is one bound parameter per name: SQLAlchemy renders the placeholders on every execution, and on
PostgreSQL psycopg parses the SQL again each time (it caches only short statements), which was a
quarter of the master's CPU per placement there. On PostgreSQL the list goes as one array
parameter, ``column = ANY(:values)``, which the (grid, name) index serves the same way; SQLite
has no arrays and keeps ``IN``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, String, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import InstrumentedAttribute, Session

__all__ = ["any_of"]


def any_of(
    session: Session, column: InstrumentedAttribute[str], values: Sequence[str]
) -> ColumnElement[bool]:
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)

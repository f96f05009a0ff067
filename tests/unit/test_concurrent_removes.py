"""Two removes of one thing at the same time: one removes it, the other is told it is not there.

Each case runs a remove in the store and, at its first write (after its reads found the row),
lets another request in: that one removes the same thing, and may make another in its place.
The first remove must then be a 404 (or, for the last admin token, a 409) and change nothing, on
SQLite, whose new row takes the id the removed one had, as on PostgreSQL. ``bench/bench_api_abuse.py``
found these over HTTP (two deletes of one stack both answered 200, and a remove of one stack
deleted another that had taken its id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from moorage.errors import Conflict, MoorageError, NotFound
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row, list_grids, remove_grid
from moorage.store.services import list_services
from moorage.store.stacks import install_stack, list_stacks, remove_stack
from moorage.store.tokens import create_admin_token, list_admin_tokens, remove_admin_token
from moorage.store.volumes import create_volume, list_volumes, remove_volume

GRID = "g1"
WRITES = ("INSERT", "UPDATE", "DELETE")


@dataclass
class Interloper:
    """Runs ``work`` once, in a unit of work of its own, just before the watched unit's first write
    (or its first lock, ``FOR UPDATE``): what another request does between that one's reads and
    its writes."""

    db: Database
    work: Callable[[Session], None] | None = None

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = statement.lstrip().upper()
        if self.work is not None and (text.startswith(WRITES) or "FOR UPDATE" in text):
            work, self.work = self.work, None
            with self.db.session() as session:
                work(session)


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    with database.session() as session:
        create_grid(session, GRID)
    yield database
    database.dispose()


def interleaved(
    db: Database, remove: Callable[[Session], object], between: Callable[[Session], None]
) -> None:
    """``remove`` in a unit of work, with ``between`` let in before its first write."""
    interloper = Interloper(db, between)
    event.listen(db.engine, "before_cursor_execute", interloper)
    try:
        with db.session() as session:
            remove(session)
    finally:
        event.remove(db.engine, "before_cursor_execute", interloper)
    assert interloper.work is None, "the remove never wrote"


def stack(name: str) -> dict[str, Any]:
    return {"stack": name, "services": {"web": {"image": "busybox:local"}}}


def test_a_stack_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    with db.session() as session:
        install_stack(session, GRID, stack("old"), "", None)

    def remove_and_install(session: Session) -> None:
        remove_stack(session, GRID, "old")
        install_stack(session, GRID, stack("new"), "", None)  # SQLite: the id "old" had

    with pytest.raises(NotFound, match="Stack old not found in grid g1"):
        interleaved(db, lambda s: remove_stack(s, GRID, "old"), remove_and_install)
    with db.session() as session:
        assert [v.name for v in list_stacks(session, GRID)] == ["new"]
        services = list_services(session, get_grid_row(session, GRID))
        assert [v.id for v in services] == ["g1/new/web"], "no service of the old stack left"


def test_a_volume_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    def create(session: Session, name: str) -> None:
        create_volume(session, GRID, name=name, scope="instance", driver="local")

    with db.session() as session:
        create(session, "old")

    def remove_and_create(session: Session) -> None:
        remove_volume(session, GRID, "old")
        create(session, "new")  # SQLite: the id "old" had

    with pytest.raises(NotFound, match="Volume old not found"):
        interleaved(db, lambda s: remove_volume(s, GRID, "old"), remove_and_create)
    with db.session() as session:
        assert [v.name for v in list_volumes(session, GRID)] == ["new"]


def test_a_grid_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    def remove_and_create(session: Session) -> None:
        remove_grid(session, GRID)
        create_grid(session, "g2")  # SQLite: the id g1 had

    with pytest.raises(NotFound, match="Grid g1 not found"):
        interleaved(db, lambda s: remove_grid(s, GRID), remove_and_create)
    with db.session() as session:
        assert [g.name for g in list_grids(session)] == ["g2"]


@pytest.mark.parametrize(
    ("removed_meanwhile", "error", "message"),
    [
        ("ci", NotFound, "Token ci not found"),
        ("admin", Conflict, "Token ci is the only admin token"),
    ],
    ids=["the-same-token", "the-other-of-the-last-two"],
)
def test_admin_tokens_removed_at_the_same_time_leave_one(
    db: Database, removed_meanwhile: str, error: type[MoorageError], message: str
) -> None:
    with db.session() as session:
        create_admin_token(session, "admin")
        create_admin_token(session, "ci")
    with pytest.raises(error, match=message):
        interleaved(
            db,
            lambda s: remove_admin_token(s, "ci"),
            lambda s: remove_admin_token(s, removed_meanwhile),
        )
    with db.session() as session:
        assert [t.name for t in list_admin_tokens(session)] == [
            "admin" if removed_meanwhile == "ci" else "ci"
        ]

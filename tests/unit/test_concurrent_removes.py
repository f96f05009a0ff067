"""Two removes of one thing at the same time: one removes it, the other is told it is not there.

Each case runs a remove in the store and, at its first write (after its reads found the row),
lets another request in (``tests/support/interleaving.py``, a thread each): that one removes the
same thing, and may make another in its place. Exactly one of the two removes does it; the other
is a 404 (or, for the last admin token, a 409) and changes nothing -- on SQLite, whose new row
takes the id the removed one had, as on PostgreSQL. (On SQLite the second waits for the first to
commit, on PostgreSQL the first finds its row gone.) ``bench/bench_api_abuse.py`` found these over
HTTP (two deletes of one stack both answered 200, and a remove of one stack deleted another that
had taken its id).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from moorage.errors import Conflict, MoorageError, NotFound
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row, list_grids, remove_grid
from moorage.store.services import list_services
from moorage.store.stacks import install_stack, list_stacks, remove_stack
from moorage.store.tokens import create_admin_token, list_admin_tokens, remove_admin_token
from moorage.store.volumes import create_volume, list_volumes, remove_volume
from tests.support.interleaving import Outcome, interleave

GRID = "g1"


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    database.migrate()
    with database.session() as session:
        create_grid(session, GRID)
    yield database
    database.dispose()


def one_did_it(first: Outcome, second: Outcome, error: type[MoorageError], message: str) -> None:
    """Exactly one of the two succeeded; the other raised ``error`` with ``message`` in it."""
    assert first.ok != second.ok, (first, second)
    failed = second if first.ok else first
    assert isinstance(failed.error, error) and message in str(failed.error), failed


def stack(name: str) -> dict[str, Any]:
    return {"stack": name, "services": {"web": {"image": "busybox:local"}}}


def test_a_stack_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    with db.session() as session:
        install_stack(session, GRID, stack("old"), "", None)

    def remove_and_install(session: Session) -> None:
        remove_stack(session, GRID, "old")
        install_stack(session, GRID, stack("new"), "", None)  # SQLite: the id "old" had

    first, second = interleave(db, lambda s: remove_stack(s, GRID, "old"), remove_and_install)
    one_did_it(first, second, NotFound, "Stack old not found in grid g1")
    with db.session() as session:
        left = ["new"] if second.ok else []
        assert [v.name for v in list_stacks(session, GRID)] == left
        services = list_services(session, get_grid_row(session, GRID))
        assert [v.id for v in services] == [f"g1/{name}/web" for name in left], "no service of the old stack"


def test_a_volume_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    def create(session: Session, name: str) -> None:
        create_volume(session, GRID, name=name, scope="instance", driver="local")

    with db.session() as session:
        create(session, "old")

    def remove_and_create(session: Session) -> None:
        remove_volume(session, GRID, "old")
        create(session, "new")  # SQLite: the id "old" had

    first, second = interleave(db, lambda s: remove_volume(s, GRID, "old"), remove_and_create)
    one_did_it(first, second, NotFound, "Volume old not found")
    with db.session() as session:
        assert [v.name for v in list_volumes(session, GRID)] == (["new"] if second.ok else [])


def test_a_grid_removed_meanwhile_is_not_found_and_its_successor_stays(db: Database) -> None:
    def remove_and_create(session: Session) -> None:
        remove_grid(session, GRID)
        create_grid(session, "g2")  # SQLite: the id g1 had

    first, second = interleave(db, lambda s: remove_grid(s, GRID), remove_and_create)
    one_did_it(first, second, NotFound, "Grid g1 not found")
    with db.session() as session:
        assert [g.name for g in list_grids(session)] == (["g2"] if second.ok else [])


@pytest.mark.parametrize(
    ("removed_meanwhile", "error", "message"),
    [
        ("ci", NotFound, "not found"),
        ("admin", Conflict, "is the only admin token"),
    ],
    ids=["the-same-token", "the-other-of-the-last-two"],
)
def test_admin_tokens_removed_at_the_same_time_leave_one(
    db: Database, removed_meanwhile: str, error: type[MoorageError], message: str
) -> None:
    with db.session() as session:
        create_admin_token(session, "admin")
        create_admin_token(session, "ci")
    first, second = interleave(
        db,
        lambda s: remove_admin_token(s, "ci"),
        lambda s: remove_admin_token(s, removed_meanwhile),
    )
    one_did_it(first, second, error, message)
    with db.session() as session:
        left = [t.name for t in list_admin_tokens(session)]
    if removed_meanwhile == "ci":
        assert left == ["admin"]
    else:
        assert left == (["admin"] if first.ok else ["ci"])

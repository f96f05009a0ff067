"""Writes at the same time that check what the other changes, on a real store (SQLite and PostgreSQL).

Each case runs two requests' units of work on threads of their own, the second let in once the
first has read what it checks and is about to write (``tests/support/interleaving.py``), in both
orders. Whatever the order, each request gets an answer a user expects (it did it, or a 404/422
saying why not: never another error, which the API would answer with a 500), and the store holds
what the answers say: no service mounting a volume that was removed, no services left of a removed
stack, no stack whose services are gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.master.service_fields import create_service
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.services import get_service_row, list_services, remove_service, scale_service
from moorage.store.stacks import install_stack, list_stacks, remove_stack, upgrade_stack
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


def _expected(outcome: Outcome, *allowed: tuple[type[Exception], str]) -> None:
    """``outcome`` succeeded, or failed with one of the errors a user may see (kind, words)."""
    if outcome.ok:
        return
    assert any(isinstance(outcome.error, kind) and words in str(outcome.error) for kind, words in allowed), (
        f"unexpected {outcome.error!r}"
    )


def _both_orders(
    db: Database, a: Callable[[Session], Any], b: Callable[[Session], Any], order: str
) -> tuple[Outcome, Outcome]:
    """(a's outcome, b's outcome), ``a`` let in first when ``order`` is "a-first"."""
    if order == "a-first":
        return interleave(db, a, b)
    b_outcome, a_outcome = interleave(db, b, a)
    return a_outcome, b_outcome


def _mounting_service(session: Session) -> object:
    return create_service(
        session, GRID, {"name": "web", "image": "busybox:local", "volumes": ["data:/data"], "instances": 1}
    )


@pytest.mark.parametrize("order", ["a-first", "b-first"], ids=["remove-first", "create-first"])
def test_a_volume_removed_while_a_service_mounting_it_is_created(db: Database, order: str) -> None:
    with db.session() as session:
        create_volume(session, GRID, name="data", scope="grid", driver="local")

    removed, created = _both_orders(db, lambda s: remove_volume(s, GRID, "data"), _mounting_service, order)

    _expected(removed, (InvalidInput, "still in use by services: g1/null/web"))
    _expected(created, (InvalidInput, "External volume data not found"))
    assert removed.ok != created.ok, (removed, created)
    with db.session() as session:
        volumes = [v.name for v in list_volumes(session, GRID)]
        services = [v.stored.spec.name for v in list_services(session, get_grid_row(session, GRID))]
    assert (volumes, services) == (([], []) if removed.ok else (["data"], ["web"]))


def _stack(revision: int, *services: str) -> dict[str, Any]:
    return {
        "stack": "shop",
        "services": {name: {"image": "busybox:local", "environment": [f"R={revision}"]} for name in services},
        "volumes": {"data": {"external": True}} if revision == 2 else {},
    }


@pytest.mark.parametrize("order", ["a-first", "b-first"], ids=["upgrade-first", "remove-first"])
def test_a_stack_upgraded_while_it_is_removed(db: Database, order: str) -> None:
    with db.session() as session:
        create_volume(session, GRID, name="data", scope="grid", driver="local")
        install_stack(session, GRID, _stack(1, "web", "db"), "", None)

    upgraded, removed = _both_orders(
        db,
        lambda s: upgrade_stack(s, GRID, "shop", _stack(2, "web", "cache"), ""),
        lambda s: remove_stack(s, GRID, "shop"),
        order,
    )

    _expected(upgraded, (NotFound, "Stack shop not found in grid g1"))
    assert removed.ok, removed
    with db.session() as session:
        stacks = [v.name for v in list_stacks(session, GRID)]
        services = [v.id for v in list_services(session, get_grid_row(session, GRID))]
    assert (stacks, services) == ([], []), "the stack and every service of it are gone"


@pytest.mark.parametrize("order", ["a-first", "b-first"], ids=["upgrade-first", "other-first"])
def test_two_upgrades_of_one_stack_make_two_revisions(db: Database, order: str) -> None:
    with db.session() as session:
        install_stack(session, GRID, _stack(1, "web"), "", None)

    one, two = _both_orders(
        db,
        lambda s: upgrade_stack(s, GRID, "shop", _stack(3, "web", "a"), ""),
        lambda s: upgrade_stack(s, GRID, "shop", _stack(3, "web", "b"), ""),
        order,
    )

    assert one.ok and two.ok, (one, two)
    assert sorted([one.value.revision, two.value.revision]) == [2, 3]
    last = "a" if one.value.revision == 3 else "b"
    with db.session() as session:
        (shown,) = list_stacks(session, GRID)
        services = sorted(v.stored.spec.name for v in list_services(session, get_grid_row(session, GRID)))
    assert shown.revision == 3
    assert services == sorted(["web", last]), "the services of the last revision, and only those"


@pytest.mark.parametrize("order", ["a-first", "b-first"], ids=["scale-first", "remove-first"])
def test_a_service_scaled_while_it_is_removed(db: Database, order: str) -> None:
    with db.session() as session:
        create_service(session, GRID, {"name": "web", "image": "busybox:local", "instances": 1})

    def scale(session: Session) -> None:
        scale_service(session, get_service_row(session, get_grid_row(session, GRID), "null", "web"), 3)

    def remove(session: Session) -> None:
        remove_service(session, get_service_row(session, get_grid_row(session, GRID), "null", "web"))

    scaled, removed = _both_orders(db, scale, remove, order)

    _expected(scaled, (NotFound, "Service web not found in grid g1"))
    _expected(removed, (NotFound, "Service web not found in grid g1"))
    assert removed.ok, (scaled, removed)
    with db.session() as session:
        assert list_services(session, get_grid_row(session, GRID)) == []

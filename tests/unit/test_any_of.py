"""any_of(column, names) finds exactly what ``column IN names`` finds, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from moorage.store.any_of import any_of
from moorage.store.database import Database
from moorage.store.tables import GridRow


def test_any_of_finds_what_in_finds(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    names = ["a", "b-1", "it's", 'say "x"', "ünï", "c" * 60]
    now = datetime.now(UTC)
    try:
        with db.session() as session:
            session.add_all(
                GridRow(name=name, join_token_hash=f"t{i}", created_at=now, updated_at=now)
                for i, name in enumerate(names)
            )
        with db.session() as session:
            for wanted in (names, names[1:4], ["nope", "ünï"], [], [f"n{i}" for i in range(2_000)] + ["a"]):
                found = set(
                    session.scalars(select(GridRow.name).where(any_of(session, GridRow.name, wanted)))
                )
                expected = set(session.scalars(select(GridRow.name).where(GridRow.name.in_(wanted))))
                assert found == expected == set(wanted) & set(names)
    finally:
        db.dispose()

"""insert_rows stores exactly what SQLAlchemy's own executemany stores, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from moorage.store.bulk_insert import insert_rows
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.tables import NodeRow, VolumeInstanceRow

COLUMNS = (
    "grid_id",
    "node_id",
    "name",
    "driver",
    "driver_opts",
    "zone",
    "state",
    "error",
    "created_at",
    "updated_at",
)


def _rows(grid_id: int, prefix: str) -> list[dict[str, Any]]:
    now = datetime(2026, 11, 30, 12, 0, 0, 123456, tzinfo=UTC)
    shared_opts = {"size": "10G", "a.b": "c=d"}  # one object in several rows, as a deployment writes them
    rows = []
    for i in range(5):
        rows.append(
            {
                "id": f"{prefix}{i:028d}",
                "grid_id": grid_id,
                "node_id": "node-a" if i % 2 else "node-b",
                "name": f"{prefix}.vol-{i}ü",
                "driver": "local",
                "driver_opts": shared_opts if i < 3 else {},
                "zone": None if i == 4 else "a",
                "state": "pending",
                "error": None if i else 'said "no"',
                "created_at": now,
                "updated_at": now + timedelta(seconds=i // 2),
            }
        )
    return rows


def test_rows_read_back_the_same_as_sqlalchemys_insert(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    try:
        with db.session() as session:
            create_grid(session, "g")
            grid_id = get_grid_row(session, "g").id
            now = datetime.now(UTC)
            for node in ("node-a", "node-b"):
                session.add(
                    NodeRow(
                        id=node,
                        grid_id=grid_id,
                        name=node,
                        status="online",
                        status_since=now,
                        last_seen_at=now,
                        labels={},
                        info={},
                        created_at=now,
                        updated_at=now,
                    )
                )
        with db.session() as session:
            session.connection().execute(insert(VolumeInstanceRow), _rows(grid_id, "core"))
            insert_rows(session.connection(), VolumeInstanceRow, _rows(grid_id, "bulk"))
        with db.session() as session:
            stored: dict[str, list[tuple[Any, ...]]] = {"core": [], "bulk": []}
            for row in session.scalars(select(VolumeInstanceRow).order_by(VolumeInstanceRow.id)):
                values = {c: getattr(row, c) for c in COLUMNS}
                values["name"] = row.name.removeprefix(row.id[:4])  # the same rows but for the prefix
                stored[row.id[:4]].append((row.id[4:], *values.values()))
        assert len(stored["bulk"]) == 5
        assert stored["bulk"] == stored["core"]
        assert stored["bulk"][0][-1].tzinfo is not None  # timestamps come back aware, in UTC
    finally:
        db.dispose()

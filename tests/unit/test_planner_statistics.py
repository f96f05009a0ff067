"""After a deployment-sized bulk insert, volume instances are looked up by (grid, name) on both
columns of the index, on every backend: not by reading every row of the grid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, text

from moorage.store.bulk_insert import insert_rows
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.planner_statistics import analyze_grown_tables, note_bulk_insert
from moorage.store.row_ids import ordered_ids
from moorage.store.tables import NodeRow, VolumeInstanceRow

ROWS = 3_000


def _volume_instances(grid_id: int, ids: list[str], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": row_id,
            "grid_id": grid_id,
            "node_id": f"node-{i % 2}",
            "name": f"stack.svc.data-{i}",
            "driver": "local",
            "driver_opts": {},
            "zone": None,
            "state": "pending",
            "error": None,
            "created_at": now,
            "updated_at": now,
        }
        for i, row_id in enumerate(ids)
    ]


def test_name_lookups_use_both_index_columns_after_a_bulk_insert(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    now = datetime.now(UTC)
    try:
        with db.session() as session:
            create_grid(session, "g")
            grid_id = get_grid_row(session, "g").id
            for node in ("node-0", "node-1"):
                session.add(
                    NodeRow(id=node, grid_id=grid_id, name=node, status="online", status_since=now,
                            last_seen_at=now, labels={}, info={}, created_at=now, updated_at=now)
                )  # fmt: skip
        with db.session() as session:  # one deployment's worth, as write_placements inserts it
            insert_rows(
                session.connection(), VolumeInstanceRow, _volume_instances(grid_id, ordered_ids(ROWS), now)
            )
        names = [f"stack.svc.data-{i}" for i in range(20)]  # one service's instances
        with db.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                plan = conn.execute(
                    text("EXPLAIN SELECT id FROM volume_instances WHERE grid_id = :g AND name = ANY(:n)"),
                    {"g": grid_id, "n": names},
                ).scalars()
                lines = list(plan)
                assert any("Index Cond" in line and "name" in line for line in lines), "\n".join(lines)
            else:
                lines = [
                    str(row[-1])
                    for row in conn.execute(
                        text(
                            "EXPLAIN QUERY PLAN SELECT id FROM volume_instances WHERE grid_id = :g AND name IN ('a', 'b')"
                        ),
                        {"g": grid_id},
                    )
                ]
                assert any(
                    "ix_volume_instances_grid_name (grid_id=? AND name=?)" in line for line in lines
                ), lines
    finally:
        db.dispose()


def test_analyze_runs_once_a_table_grew_enough_not_after_every_insert(db_url: str) -> None:
    db = Database(db_url)
    db.migrate()
    table = cast(Table, VolumeInstanceRow.__table__)
    try:
        analyzed = []
        for rows in (500, 600, 100, 50):
            with db.engine.begin() as conn:
                note_bulk_insert(conn, table, rows)
            analyzed.append(analyze_grown_tables(db.engine))
        postgres = db.engine.dialect.name == "postgresql"
        # 1,100 rows since the table was last analyzed (never): once; then 150 more: not yet
        assert analyzed == ([[], ["volume_instances"], [], []] if postgres else [[]] * 4)
    finally:
        db.dispose()

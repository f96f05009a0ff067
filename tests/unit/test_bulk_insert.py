"""insert_rows stores exactly what SQLAlchemy's own executemany stores, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from moorage.store.bulk_insert import insert_rows
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.tables import InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow

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
                "error": None if i else 'said "no"\tthen\nC:\\path \\N',  # what COPY must escape
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


def test_instance_rows_read_back_the_same_as_sqlalchemys_insert(db_url: str) -> None:
    """Instances: JSON documents and NULL JSON, big integers, floats, text that needs escaping."""
    db = Database(db_url)
    db.migrate()
    try:
        now = datetime(2026, 11, 30, 12, 0, 0, 654321, tzinfo=UTC)
        with db.session() as session:
            create_grid(session, "g")
            grid_id = get_grid_row(session, "g").id
            for name in ("core", "bulk"):
                session.add(
                    ServiceRow(grid_id=grid_id, stack="s", name=name, spec={}, created_at=now, updated_at=now)
                )
        with db.session() as session:
            services = {row.name: row.id for row in session.scalars(select(ServiceRow))}

            def rows(service: str) -> list[dict[str, Any]]:
                return [
                    {
                        "service_id": services[service],
                        "number": n,
                        "node_id": None,
                        "container": None if n == 3 else {"name": f"c-{n}", "env": ["A=\\t\t", "ü"], "n": n},
                        "desired_hash": f"{n:016x}",
                        "host_ports": [8080, 8443] if n == 1 else None,
                        "memory": (1 << 40) if n == 2 else None,
                        "cpus": 0.25 if n == 2 else None,
                        "state": "scheduled",
                        "reason": "line one\nline two\\N" if n == 1 else None,
                        "updated_at": now,
                    }
                    for n in (1, 2, 3)
                ]

            session.connection().execute(insert(InstanceRow), rows("core"))
            insert_rows(session.connection(), InstanceRow, rows("bulk"))
        with db.session() as session:
            columns = ("number", "node_id", "container", "desired_hash", "host_ports", "memory", "cpus",
                       "state", "reason", "updated_at")  # fmt: skip
            stored: dict[int, list[tuple[Any, ...]]] = {}
            for row in session.scalars(select(InstanceRow).order_by(InstanceRow.number)):
                stored.setdefault(row.service_id, []).append(tuple(getattr(row, c) for c in columns))
            sql_nulls = session.execute(
                select(InstanceRow.service_id, InstanceRow.number).where(InstanceRow.container.is_(None))
            ).all()
        assert stored[services["bulk"]] == stored[services["core"]]
        assert sorted(sql_nulls) == sorted((services[s], 3) for s in ("core", "bulk"))  # NULL, not 'null'
    finally:
        db.dispose()

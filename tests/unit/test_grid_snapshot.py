"""The grid snapshots a deployer keeps, and what planning reads of the grid, on a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, update

from moorage.model.stack import PortMapping, ServiceSpec, StackSpec
from moorage.stackfile.stored_service import service_document
from moorage.store.database import Database
from moorage.store.grid_snapshot import GridSnapshots, Holding, held
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.services import save_service
from moorage.store.tables import GridRow, InstanceRow, NodeRow


def _open(path: Path) -> Database:
    database = Database(f"sqlite:///{path}")
    database.migrate()
    return database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = _open(tmp_path / "store.db")
    yield database
    database.dispose()


def _grid(db: Database, name: str, nodes: int) -> int:
    now = datetime.now(UTC)
    with db.session() as session:
        create_grid(session, name)
        grid_id = get_grid_row(session, name).id
        rows: list[dict[str, Any]] = [
            {
                "id": f"{name}-{i}",
                "grid_id": grid_id,
                "name": f"node-{i}",
                "status": "online" if i else "offline",
                "status_since": now,
                "last_seen_at": now,
                "labels": {"zone": "a"},
                "info": {"cpus": 2, "memory": 1 << 30, "drivers": [{"name": "dirvol", "scope": "global"}]},
                "created_at": now,
                "updated_at": now,
            }
            for i in range(nodes)
        ]
        if rows:
            session.execute(insert(NodeRow), rows)
    return grid_id


def test_a_snapshot_is_kept_until_a_node_row_changes(db: Database) -> None:
    grid = _grid(db, "g", 3)
    snapshots = GridSnapshots()
    with db.session() as session:
        first = snapshots.nodes(session, grid)
        assert snapshots.nodes(session, grid) is first
    assert sorted(first.nodes) == ["g-0", "g-1", "g-2"] and first.up == {"g-1", "g-2"}
    assert first.nodes["g-1"].drivers == {"dirvol": "global"} and first.nodes["g-1"].labels == {"zone": "a"}
    with db.session() as session:
        session.execute(
            update(NodeRow).where(NodeRow.id == "g-0").values(status="online", updated_at=datetime.now(UTC))
        )
    with db.session() as session:
        again = snapshots.nodes(session, grid)
    assert again is not first and again.up == {"g-0", "g-1", "g-2"}


def test_a_removed_grid_is_dropped_at_the_next_read(db: Database) -> None:
    kept, removed = _grid(db, "kept", 1), _grid(db, "removed", 2)
    snapshots = GridSnapshots()
    with db.session() as session:
        snapshots.nodes(session, removed)
        snapshots.nodes(session, kept)
    assert removed in snapshots and kept in snapshots
    with db.session() as session:
        session.execute(delete(GridRow).where(GridRow.id == removed))
    with db.session() as session:
        snapshots.nodes(session, kept)
    assert removed not in snapshots and len(snapshots) == 1


def test_snapshots_are_bounded_the_least_recently_planned_going_first(db: Database) -> None:
    grids = [_grid(db, f"g{n}", 1) for n in range(3)]
    snapshots = GridSnapshots(kept=2)
    with db.session() as session:
        snapshots.nodes(session, grids[0])
        snapshots.nodes(session, grids[1])
        snapshots.nodes(session, grids[0])  # g0 planned again: g1 is now the oldest
        snapshots.nodes(session, grids[2])
    assert [g in snapshots for g in grids] == [True, False, True] and len(snapshots) == 2


def test_each_store_has_its_own_snapshots(tmp_path: Path) -> None:
    """Two stores with a grid of the same id: each deployer's snapshots show its own nodes."""
    one, two = _open(tmp_path / "one.db"), _open(tmp_path / "two.db")
    try:
        grid_one, grid_two = _grid(one, "g", 1), _grid(two, "g", 2)
        assert grid_one == grid_two
        first, second = GridSnapshots(), GridSnapshots()
        with one.session() as session:
            assert len(first.nodes(session, grid_one).nodes) == 1
        with two.session() as session:
            assert len(second.nodes(session, grid_two).nodes) == 2
    finally:
        one.dispose()
        two.dispose()


def _holder(db: Database, grid: str, node: str, port: int) -> int:
    spec = ServiceSpec(name=f"holder{port}", image="x:local", ports=(PortMapping(port, 80),), memory=64 << 20)
    with db.session() as session:
        row = save_service(
            session,
            get_grid_row(session, grid),
            "s",
            spec.name,
            service_document(StackSpec("s", (spec,)), spec),
        )
        session.execute(
            insert(InstanceRow),
            [
                {
                    "service_id": row.id,
                    "number": 1,
                    "node_id": node,
                    "host_ports": [port],
                    "memory": 64 << 20,
                    "cpus": 0.5,
                    "state": "running",
                    "updated_at": datetime.now(UTC),
                }
            ],
        )
        return row.id


def test_held_reads_only_this_grids_instances_of_other_services(db: Database) -> None:
    grid = _grid(db, "g", 2)
    _grid(db, "other", 1)
    _holder(db, "g", "g-1", 8080)
    deploying = _holder(db, "g", "g-1", 9090)
    _holder(db, "other", "other-0", 7070)
    with db.session() as session:
        assert held(session, grid, skip={deploying}) == (Holding("g-1", frozenset({8080}), 64 << 20, 0.5),)
        assert held(session, grid, skip=set()) == (Holding("g-1", frozenset({8080, 9090}), 128 << 20, 1.0),)

"""Topology through planning and the store, on a real SQLite file: a zone-topology volume instance
re-attaches to another node of its zone when its node is away (the row moves, its zone and region
stay), never leaves the zone, and the zone recorded when it was made is the one that counts."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from moorage.master.deployer import record_batch, record_unplaced
from moorage.master.planning import ServicePlan, plan_services
from moorage.model.stack import Mount, MountKind, ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile.stored_service import service_document
from moorage.store.database import Database
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.services import save_service
from moorage.store.tables import NodeRow, ServiceRow, VolumeInstanceRow
from moorage.store.volumes import create_volume

# node id -> (zone, region); zdir is global on all of them, shared by the nodes of one zone
NODES = {"a-1": ("a", "eu"), "a-2": ("a", "eu"), "b-1": ("b", "eu")}
ALL = set(NODES)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    now = datetime.now(UTC)
    with database.session() as session:
        create_grid(session, "g")
        grid_id = get_grid_row(session, "g").id
        session.execute(
            insert(NodeRow),
            [
                {
                    "id": node_id,
                    "grid_id": grid_id,
                    "name": node_id,
                    "status": "online",
                    "status_since": now,
                    "last_seen_at": now,
                    "labels": {"zone": zone, "region": region},
                    "info": {
                        "cpus": 2,
                        "memory": 1 << 30,
                        "drivers": [{"name": "local", "scope": "local"}, {"name": "zdir", "scope": "global"}],
                    },
                    "created_at": now,
                    "updated_at": now,
                }
                for node_id, (zone, region) in NODES.items()
            ],
        )
        create_volume(session, "g", name="data", scope="instance", driver="zdir", topology="zone")
        spec = ServiceSpec(
            name="db", image="x:local", mounts=(Mount(MountKind.NAMED, target="/data", source="data"),)
        )
        stack = StackSpec(name="s", services=(spec,), volumes=(VolumeDecl("data", "data"),))
        save_service(session, get_grid_row(session, "g"), "s", "db", service_document(stack, spec))
    yield database
    database.dispose()


def deploy(db: Database, connected: set[str], snapshots: GridSnapshots) -> ServicePlan:
    """One deployment of s/db as the deployer makes it: plan, record what waits, record the batch."""
    with db.session() as session:
        grid_row = get_grid_row(session, "g")
        rows = list(session.scalars(select(ServiceRow)))
        (plan,) = plan_services(session, grid_row, rows, connected, snapshots)
        record_unplaced(session, grid_row.id, [plan], connected)
    with db.session() as session:
        record_batch(session, grid_row.id, [i for i in plan.instances if i.kind in ("start", "replace")])
    return plan


def volume_instances(db: Database) -> list[tuple[Any, ...]]:
    with db.session() as session:
        rows = session.execute(
            select(
                VolumeInstanceRow.name,
                VolumeInstanceRow.node_id,
                VolumeInstanceRow.zone,
                VolumeInstanceRow.region,
            )
        )
        return [tuple(row) for row in rows]


def first_node(db: Database, snapshots: GridSnapshots) -> str:
    """Deploy with b-1 away, so db-1 lands in zone a; its node."""
    (item,) = deploy(db, ALL - {"b-1"}, snapshots).instances
    assert item.kind == "start" and item.node_id in ("a-1", "a-2")
    assert volume_instances(db) == [("s.db.data-1", item.node_id, "a", "eu")]
    return item.node_id


def test_a_zone_volume_instance_re_attaches_inside_its_zone(db: Database) -> None:
    snapshots = GridSnapshots()
    home = first_node(db, snapshots)
    other = "a-2" if home == "a-1" else "a-1"

    (back,) = deploy(db, ALL, snapshots).instances
    assert back.kind == "unchanged" and back.node_id == home, "stays while its node is up"

    (moved,) = deploy(db, ALL - {home}, snapshots).instances
    assert moved.kind == "replace" and moved.node_id == other
    assert volume_instances(db) == [("s.db.data-1", other, "a", "eu")], "the same row, now on the other node"

    (waiting,) = deploy(db, ALL - {home, other}, snapshots).instances
    assert waiting.kind == "pending" and waiting.node_id == other, "waits in its zone, on its node"
    assert waiting.reason == (
        "0/3 nodes available: 2 node(s) offline, 1 node(s) outside zone a of volume instance s.db.data-1"
    )
    assert volume_instances(db) == [("s.db.data-1", other, "a", "eu")], "never a new one in zone b"


def test_the_zone_recorded_when_it_was_made_bounds_the_domain(db: Database) -> None:
    snapshots = GridSnapshots()
    home = first_node(db, snapshots)
    with db.session() as session:  # the node is relabelled zone b after it made the volume instance
        session.execute(
            update(NodeRow)
            .where(NodeRow.id == home)
            .values(labels={"zone": "b", "region": "eu"}, updated_at=datetime.now(UTC))
        )
    (moved,) = deploy(db, ALL - {home}, snapshots).instances
    other = "a-2" if home == "a-1" else "a-1"
    assert moved.node_id == other, "still zone a: the domain did not follow the label"
    assert volume_instances(db) == [("s.db.data-1", other, "a", "eu")]

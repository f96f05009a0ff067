"""How many SQL statements a deployment runs, counted on a real SQLite file.

A deployment plans in one transaction (``plan_services``, then ``record_unplaced``) and records
each batch in another (``record_batch``), as the deployer does. The counts below are what the
code ran before planning was split into a store read and a pure decision; the split must keep
them. Each phase's count is spelled out, statement by statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from moorage.master.deployer import record_batch, record_unplaced
from moorage.master.planning import ServicePlan, plan_services
from moorage.model.stack import Mount, MountKind, PortMapping, ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile.stored_service import service_document
from moorage.store.database import Database
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.services import save_service
from moorage.store.tables import NodeRow, ServiceRow
from moorage.store.volumes import create_volume

NODES = 4


@dataclass
class Counter:
    statements: list[str] = field(default_factory=list)
    counting: bool = False

    def __call__(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # the BEGIN IMMEDIATE a unit of work starts with (store/database.py) is no statement of its work
        if self.counting and statement != "BEGIN IMMEDIATE":
            self.statements.append(statement)

    def take(self) -> int:
        count = len(self.statements)
        self.statements.clear()
        return count


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def counter(db: Database) -> Counter:
    found = Counter()
    event.listen(db.engine, "before_cursor_execute", found)
    return found


def _node_rows(grid_id: int, prefix: str, count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        {
            "id": f"{prefix}-{i:04d}",
            "grid_id": grid_id,
            "name": f"{prefix}-{i}",
            "status": "online",
            "status_since": now,
            "last_seen_at": now,
            "labels": {"zone": f"zone-{i % 2}"},
            "info": {
                "cpus": 4,
                "memory": 8 << 30,
                "drivers": [{"name": "local", "scope": "local"}, {"name": "dirvol", "scope": "global"}],
            },
            "created_at": now,
            "updated_at": now,
        }
        for i in range(count)
    ]


def _service(session: Any, grid: str, spec: ServiceSpec, volumes: tuple[str, ...] = ()) -> int:
    stack = StackSpec(name="s", services=(spec,), volumes=tuple(VolumeDecl(v, v) for v in volumes))
    row = save_service(session, get_grid_row(session, grid), "s", spec.name, service_document(stack, spec))
    return row.id


def _named(source: str, target: str) -> Mount:
    return Mount(MountKind.NAMED, target=target, source=source)


@pytest.fixture
def grid(db: Database) -> dict[str, int]:
    """Grid ``g``: four nodes, instance-scope volumes on a local and a global driver, and a
    service that already holds a port and memory. Grid ``other``: a node with its own holder."""
    with db.session() as session:
        for name in ("g", "other"):
            create_grid(session, name)
        session.execute(insert(NodeRow), _node_rows(get_grid_row(session, "g").id, "g", NODES))
        session.execute(insert(NodeRow), _node_rows(get_grid_row(session, "other").id, "o", 1))
        create_volume(session, "g", name="data", scope="instance", driver="local")
        create_volume(session, "g", name="shared", scope="instance", driver="dirvol")
        create_volume(session, "g", name="conf", scope="grid", driver="local")
        ids = {
            "holder": _service(
                session,
                "g",
                ServiceSpec(name="holder", image="x:local", ports=(PortMapping(8080, 80),), memory=64 << 20),
            ),
            "web": _service(
                session,
                "g",
                ServiceSpec(
                    name="web",
                    image="x:local",
                    instances=3,
                    ports=(PortMapping(80, 80),),
                    mounts=(_named("data", "/data"), _named("conf", "/conf")),
                ),
                ("data", "conf"),
            ),
            "files": _service(
                session,
                "g",
                ServiceSpec(name="files", image="x:local", instances=2, mounts=(_named("shared", "/s"),)),
                ("shared",),
            ),
            "lost": _service(
                session,
                "g",
                ServiceSpec(name="lost", image="x:local", mounts=(_named("nowhere", "/n"),)),
                ("nowhere",),
            ),
            "elsewhere": _service(
                session,
                "other",
                ServiceSpec(name="elsewhere", image="x:local", ports=(PortMapping(80, 80),), memory=64 << 20),
            ),
        }
    return ids


def _deploy(
    db: Database,
    counter: Counter,
    grid: str,
    ids: list[int],
    connected: set[str],
    snapshots: GridSnapshots,
) -> tuple[dict[str, int], list[ServicePlan]]:
    """One deployment, the deployer's way; the statements of each phase."""
    with db.session() as session:
        grid_row = get_grid_row(session, grid)
        rows = list(session.scalars(select(ServiceRow).where(ServiceRow.id.in_(ids))))
        ordered = sorted(rows, key=lambda r: ids.index(r.id))
        counter.counting = True
        plans = plan_services(session, grid_row, ordered, connected, snapshots)
        counts = {"plan": counter.take()}
        record_unplaced(session, grid_row.id, plans, connected)
        counts["unplaced"] = counter.take()
        counter.counting = False
    batch = [item for plan in plans for item in plan.instances if item.kind in ("start", "replace")]
    with db.session() as session:
        counter.counting = True
        record_batch(session, grid_row.id, batch)
        counts["batch"] = counter.take()
        counter.counting = False
    return counts, plans


def _kinds(plans: list[ServicePlan]) -> list[str]:
    return [item.kind for plan in plans for item in plan.instances]


# What plan_services reads: the snapshot check (count and last change of the grid's nodes), the
# nodes themselves only when that changed, what other services hold, the grid's volumes, the
# current instances of the services deployed, and the volume instances of the Docker names they
# may use (none when they mount no volume).
PLAN_FRESH_SNAPSHOT = 6
PLAN_KEPT_SNAPSHOT = 5
# write_placements of placed instances: volume instances by name, their INSERT, one INSERT of
# their events (volume_instance.created, store/events.py: all of a batch's at once), the
# instances that exist, the instance INSERT (or UPDATE).
BATCH_NEW_VOLUMES = 5


def test_statements_per_deployment_stay_as_they_were(
    db: Database, counter: Counter, grid: dict[str, int]
) -> None:
    everywhere = {f"g-{i:04d}" for i in range(NODES)} | {"o-0000"}
    snapshots = GridSnapshots()  # as the deployer keeps them

    # The grid's first deployment builds the snapshot; holder mounts nothing: no volume lookup,
    # and its one instance is new (no volume instances: only the instance read and INSERT).
    counts, plans = _deploy(db, counter, "g", [grid["holder"]], everywhere, snapshots)
    assert _kinds(plans) == ["start"]
    assert counts == {"plan": PLAN_FRESH_SNAPSHOT - 1, "unplaced": 0, "batch": 2}

    # Another grid's deployment has a snapshot of its own.
    counts, _ = _deploy(db, counter, "other", [grid["elsewhere"]], everywhere, snapshots)
    assert counts == {"plan": PLAN_FRESH_SNAPSHOT - 1, "unplaced": 0, "batch": 2}

    # Two services with volumes on the kept snapshot: every instance and volume instance new.
    counts, plans = _deploy(db, counter, "g", [grid["web"], grid["files"]], everywhere, snapshots)
    assert _kinds(plans) == ["start"] * 5
    assert counts == {"plan": PLAN_KEPT_SNAPSHOT, "unplaced": 0, "batch": BATCH_NEW_VOLUMES}

    # Unchanged: nothing to write.
    counts, plans = _deploy(db, counter, "g", [grid["web"], grid["files"]], everywhere, snapshots)
    assert _kinds(plans) == ["unchanged"] * 5
    assert counts == {"plan": PLAN_KEPT_SNAPSHOT, "unplaced": 0, "batch": 0}

    # A node changed (the snapshot is read again) and web's pinned node is away: web-n stays
    # pending on that node with the container it has there, so only its state and reason are
    # written (one UPDATE; nothing of its node's desired state changes); the rest is unchanged.
    with db.session() as session:
        session.execute(update(NodeRow).where(NodeRow.id == "g-0001").values(updated_at=datetime.now(UTC)))
    away = everywhere - {"g-0001"}
    counts, plans = _deploy(db, counter, "g", [grid["web"]], away, snapshots)
    assert sorted(_kinds(plans)) == ["pending", "unchanged", "unchanged"]
    assert counts == {"plan": PLAN_FRESH_SNAPSHOT, "unplaced": 1, "batch": 0}

    # A missing external volume fails the service: its instance is written as failed (instances
    # that exist, their INSERT; no volume instance); no Docker name to look up.
    counts, plans = _deploy(db, counter, "g", [grid["lost"]], everywhere, snapshots)
    assert _kinds(plans) == ["failed"]
    assert counts == {"plan": PLAN_KEPT_SNAPSHOT - 1, "unplaced": 2, "batch": 0}

    # Scaled down: the removed instances' nodes are read, then they are deleted; then what the
    # service mounts is marked unused (store/volume_use.py): its row, its volumes, the services
    # mounting them, their instances, the volume instances, and one UPDATE of those now unused.
    with db.session() as session:
        row = session.get(ServiceRow, grid["files"])
        assert row is not None
        document = dict(row.spec)
        document["services"] = {"files": {**document["services"]["files"], "instances": 1}}
        row.spec = document
    counts, plans = _deploy(db, counter, "g", [grid["files"]], everywhere, snapshots)
    assert _kinds(plans) == ["unchanged"] and plans[0].remove_numbers == [2]
    assert counts == {"plan": PLAN_KEPT_SNAPSHOT, "unplaced": 2 + 5, "batch": 0}

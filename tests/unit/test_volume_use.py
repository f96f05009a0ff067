"""Unused volume instances through planning and the store, on a real SQLite file: a scale-down
leaves the removed instance's volume instance ``unused`` (since when), out of its node's desired
state and never overwritten by a late report; scaling up uses the same one again on its node;
``prune_unused`` removes only what nothing claims (dry runs change nothing); a removed stack's
volume instances are unused and an install claims them again; ``stack rm --volumes`` removes
only the stack's own volumes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from moorage.master.deployer import record_batch, record_unplaced
from moorage.master.desired import desired_for_node
from moorage.master.planning import ServicePlan, plan_services
from moorage.protocol import DockerVolumeWire, VolumeStatus
from moorage.stackfile import load_stack, stack_to_dict
from moorage.store.database import Database
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.instances import apply_docker_volumes, apply_volume_status
from moorage.store.services import get_service_row, scale_service
from moorage.store.stacks import install_stack, remove_stack
from moorage.store.tables import NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow
from moorage.store.volume_use import prune_unused, refresh_use
from moorage.store.volumes import create_volume

NODES = ("n1", "n2")
STACK = """
stack: redis
services:
  redis:
    image: redis:7-alpine
    instances: 3
    volumes: [data:/data, shared:/shared]
volumes:
  data: {scope: instance, driver: local}
  shared: {external: true}
"""


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
                    "id": node,
                    "grid_id": grid_id,
                    "name": node,
                    "status": "online",
                    "status_since": now,
                    "last_seen_at": now,
                    "labels": {},
                    "info": {"cpus": 2, "memory": 1 << 30, "drivers": [{"name": "local", "scope": "local"}]},
                    "created_at": now,
                    "updated_at": now,
                }
                for node in NODES
            ],
        )
        create_volume(session, "g", name="shared", scope="grid", driver="local")
    yield database
    database.dispose()


def install(db: Database, name: str = "a") -> None:
    spec = load_stack(STACK, env={}, grid="g", name=name)
    with db.session() as session:
        install_stack(session, "g", stack_to_dict(spec), STACK, name)


def deploy(db: Database, snapshots: GridSnapshots, stack: str = "a") -> ServicePlan:
    """A deployment of stack/redis as the deployer makes it, then every agent reports what it has."""
    with db.session() as session:
        grid_row = get_grid_row(session, "g")
        rows = list(session.scalars(select(ServiceRow).where(ServiceRow.stack == stack)))
        (plan,) = plan_services(session, grid_row, rows, set(NODES), snapshots)
        record_unplaced(session, grid_row.id, [plan], set(NODES))
    with db.session() as session:
        record_batch(session, grid_row.id, [i for i in plan.instances if i.kind in ("start", "replace")])
    for node in NODES:
        report(db, node)
    return plan


def report(db: Database, node: str) -> None:
    """What the node's agent says after converging: every volume it was told to have is present."""
    with db.session() as session:
        desired = desired_for_node(session, node, "g")
        apply_volume_status(
            session,
            node,
            [
                VolumeStatus(volume_instance_id=v.volume_instance_id, name=v.name, state="present")
                for v in desired.volumes
            ],
        )


def scale(db: Database, instances: int, stack: str = "a") -> None:
    with db.session() as session:
        scale_service(
            session, get_service_row(session, get_grid_row(session, "g"), stack, "redis"), instances
        )


def rows(db: Database) -> dict[str, tuple[Any, ...]]:
    """Docker volume name -> (id, node, state, unused_since, volume)."""
    with db.session() as session:
        found = session.execute(
            select(
                VolumeInstanceRow.name,
                VolumeInstanceRow.id,
                VolumeInstanceRow.node_id,
                VolumeInstanceRow.state,
                VolumeInstanceRow.unused_since,
                VolumeRow.name,
            ).outerjoin(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        )
        return {name: rest for name, *rest in found.tuples()}


def states(db: Database) -> dict[str, str]:
    return {name: row[2] for name, row in rows(db).items()}


def test_a_scale_down_leaves_the_volume_instance_unused_and_a_scale_up_uses_it_again(db: Database) -> None:
    snapshots = GridSnapshots()
    install(db)
    deploy(db, snapshots)
    before = rows(db)
    assert {name: row[2] for name, row in before.items() if name.startswith("a.")} == {
        "a.redis.a_data-1": "present",
        "a.redis.a_data-2": "present",
        "a.redis.a_data-3": "present",
    }
    scale(db, 2)
    begun = datetime.now(UTC)
    deploy(db, snapshots)
    after = rows(db)
    third = after["a.redis.a_data-3"]
    assert third[2] == "unused" and third[3] is not None and third[3] >= begun
    assert after["a.redis.a_data-1"][2] == after["a.redis.a_data-2"][2] == "present"
    # the grid-scope volume is still used on every node that runs an instance
    assert {after[name][2] for name in after if name == "shared"} == {"present"}
    # out of its node's desired state: its agent neither checks it nor removes it
    with db.session() as session:
        desired = desired_for_node(session, third[1], "g")
    assert "a.redis.a_data-3" not in {v.name for v in desired.volumes + desired.remove_volumes}
    # a report made before the release does not make it present again
    with db.session() as session:
        apply_volume_status(
            session,
            third[1],
            [VolumeStatus(volume_instance_id=third[0], name="a.redis.a_data-3", state="present")],
        )
    assert states(db)["a.redis.a_data-3"] == "unused"

    scale(db, 3)
    plan = deploy(db, snapshots)
    again = rows(db)["a.redis.a_data-3"]
    assert again[:2] == third[:2]  # the same volume instance, on the same node
    assert again[2] == "present" and again[3] is None
    assert next(i for i in plan.instances if i.number == 3).node_id == third[1]


def test_prune_removes_only_what_no_instance_would_use(db: Database) -> None:
    snapshots = GridSnapshots()
    install(db)
    deploy(db, snapshots)
    scale(db, 2)
    deploy(db, snapshots)
    before = rows(db)
    node = before["a.redis.a_data-3"][1]
    with db.session() as session:
        dry, nodes = prune_unused(session, "g", dry_run=True)
    assert [(p.volume, p.name, p.node) for p in dry] == [
        ("a_data", "a.redis.a_data-3", node)
    ] and nodes == set()
    assert rows(db) == before
    with db.session() as session:
        young, _ = prune_unused(session, "g", older_than=timedelta(days=7))
    assert young == [] and rows(db) == before
    with db.session() as session:
        assert prune_unused(session, "g", volume="shared")[0] == []
    with db.session() as session:
        pruned, nodes = prune_unused(session, "g", volume="a_data")
    assert [p.name for p in pruned] == ["a.redis.a_data-3"] and nodes == {node}
    after = rows(db)
    assert after["a.redis.a_data-3"][2] == "removing" and after["a.redis.a_data-3"][4] is None
    assert {k: v for k, v in after.items() if k != "a.redis.a_data-3"} == {
        k: v for k, v in before.items() if k != "a.redis.a_data-3"
    }
    with db.session() as session:
        desired = desired_for_node(session, node, "g")
    assert [v.name for v in desired.remove_volumes] == ["a.redis.a_data-3"]


def test_a_removed_stacks_volume_instances_are_unused_until_it_is_installed_again(db: Database) -> None:
    snapshots = GridSnapshots()
    install(db)
    deploy(db, snapshots)
    install(db, "b")
    deploy(db, snapshots, "b")
    placed = rows(db)
    with db.session() as session:
        remove_stack(session, "g", "a")
    removed = states(db)
    assert {removed[f"a.redis.a_data-{n}"] for n in (1, 2, 3)} == {"unused"}
    assert {removed[f"b.redis.b_data-{n}"] for n in (1, 2, 3)} == {"present"}
    assert removed["shared"] == "present"  # stack b still runs on both nodes
    with db.session() as session:
        assert session.scalar(select(VolumeRow.stack).where(VolumeRow.name == "a_data")) == "a"

    install(db)  # claimed again at once (nothing may prune them now), then placed where they are
    assert {states(db)[f"a.redis.a_data-{n}"] for n in (1, 2, 3)} == {"pending"}
    deploy(db, snapshots)
    assert {name: row[:2] for name, row in rows(db).items()} == {
        name: row[:2] for name, row in placed.items()
    }

    with db.session() as session:
        nodes = remove_stack(session, "g", "a", volumes=True)
    assert nodes == {placed[f"a.redis.a_data-{n}"][1] for n in (1, 2, 3)}
    after = rows(db)
    assert {after[f"a.redis.a_data-{n}"][2] for n in (1, 2, 3)} == {"removing"}
    assert {after[f"b.redis.b_data-{n}"][2] for n in (1, 2, 3)} == {"present"}
    with db.session() as session:
        assert set(session.scalars(select(VolumeRow.name))) == {"b_data", "shared"}


def listing(db: Database, node: str, *, without: str) -> list[DockerVolumeWire]:
    """What the node's engine lists of its Moorage Docker volumes, less one deleted by hand."""
    return [
        DockerVolumeWire(name=name, driver="local", options={}, labels={})
        for name, row in rows(db).items()
        if row[1] == node and name != without
    ]


def test_an_unused_volume_deleted_by_hand_is_missing_until_the_engine_lists_it_again(db: Database) -> None:
    """Unused volume instances are in no desired state: the engine's listing tells they are gone,
    and nothing (a use refresh, a prune's dry run) calls them unused with data again."""
    snapshots = GridSnapshots()
    install(db)
    deploy(db, snapshots)
    scale(db, 2)
    deploy(db, snapshots)
    third_id, node, _, since, _ = rows(db)["a.redis.a_data-3"]
    with db.session() as session:
        apply_docker_volumes(session, node, listing(db, node, without="a.redis.a_data-3"))
    gone = rows(db)["a.redis.a_data-3"]
    assert (gone[2], gone[3]) == ("missing", since), "missing, and still unused since the scale-down"
    with db.session() as session:
        grid_id = get_grid_row(session, "g").id
        refresh_use(session, grid_id, ["a_data"])
    assert states(db)["a.redis.a_data-3"] == "missing"
    with db.session() as session:
        dry, _ = prune_unused(session, "g", dry_run=True)
    assert [p.name for p in dry] == ["a.redis.a_data-3"], (
        "prune forgets it (its agent finds nothing to delete)"
    )
    # the engine lists it again (a plugin that was down): unused with its data
    with db.session() as session:
        apply_docker_volumes(session, node, listing(db, node, without=""))
    assert states(db)["a.redis.a_data-3"] == "unused"
    with db.session() as session:
        apply_docker_volumes(session, node, listing(db, node, without="a.redis.a_data-3"))
    # claimed again: a deploy makes it again on its node, as for any missing volume instance
    scale(db, 3)
    deploy(db, snapshots)
    again = rows(db)["a.redis.a_data-3"]
    assert (again[0], again[1], again[2], again[3]) == (third_id, node, "present", None)

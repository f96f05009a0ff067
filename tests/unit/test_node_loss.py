"""A node declared lost, through the store and planning on a real SQLite file: each volume's
``on_node_lost`` policy (wait, restore, recreate), the copies left behind kept stale, and the
rule that no path gives an empty volume to a ``wait`` or ``restore`` volume. Also the words and
ages of ``model.node_loss``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from moorage.errors import Conflict, InvalidInput
from moorage.master.deployer import record_batch, record_unplaced
from moorage.master.desired import desired_for_node
from moorage.master.planning import ServicePlan, plan_services
from moorage.model.container import container_name
from moorage.model.node_loss import age_text, aged, on_node_lost_error, restored_line
from moorage.model.stack import Mount, MountKind, ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile.stored_service import service_document
from moorage.store import node_loss
from moorage.store.database import Database
from moorage.store.grid_snapshot import GridSnapshots
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.services import save_service
from moorage.store.tables import (
    BackupJobRow,
    BackupRow,
    EventRow,
    InstanceRow,
    NodeRow,
    RetiredVolumeRow,
    ServiceRow,
    VolumeInstanceRow,
)
from moorage.store.volume_moves import purge_expired, purge_retired, retired_of
from moorage.store.volumes import create_volume, remove_volume, set_on_node_lost, show_volume

NODES = ("n-1", "n-2", "n-3")
ALL = set(NODES)
POLICIES = ("wait", "restore", "recreate")


# --- words and ages ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (40, "40 s"),
        (185, "3 m 5 s"),
        (3600, "1 h"),
        (7 * 3600 + 12 * 60 + 9, "7 h 12 m"),
        (2 * 86400 + 4 * 3600, "2 d 4 h"),
    ],
    ids=["zero", "seconds", "minutes", "an-hour", "hours", "days"],
)
def test_ages_read_in_their_two_largest_units(seconds: float, text: str) -> None:
    assert age_text(seconds) == text


def test_a_stored_last_seen_time_is_shown_as_its_age_when_read() -> None:
    stored = "lives on node n-1, which is offline (last seen 2026-12-03 14:05:03 UTC): bring n-1 back"
    now = datetime(2026, 12, 3, 16, 10, 3, tzinfo=UTC)
    assert aged(stored, now) == (
        "lives on node n-1, which is offline (last seen 2 h 5 m ago (14:05:03 UTC)): bring n-1 back"
    )
    assert aged("no node fits", now) == "no node fits" and aged(None, now) is None


def test_the_age_line_of_restored_data() -> None:
    now = datetime(2026, 12, 3, 9, 12, 40, tzinfo=UTC)
    assert (
        restored_line(datetime(2026, 12, 3, 2, 0, tzinfo=UTC), now)
        == "restored backup of 02:00 UTC, 7 h 12 m old"
    )
    assert restored_line(datetime(2026, 12, 1, 23, 30, tzinfo=UTC), now, "3055549dabc") == (
        "restored backup 3055549d of 2026-12-01 23:30 UTC, 1 d 9 h old"
    )


@pytest.mark.parametrize(
    ("policy", "scope", "wrong"),
    [
        ("wait", "instance", None),
        ("restore", "instance", None),
        ("recreate", "instance", None),
        ("wait", "stack", None),
        ("restore", "stack", "applies to instance-scope volumes only"),
        ("recreate", "grid", "applies to instance-scope volumes only"),
        ("keep", "instance", "Unknown on_node_lost 'keep', must be one of wait, restore, recreate"),
    ],
)
def test_which_policies_a_volume_may_have(policy: str, scope: str, wrong: str | None) -> None:
    problem = on_node_lost_error(policy, scope)
    assert (problem is None) if wrong is None else (problem is not None and wrong in problem)


# --- through the store --------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    now = datetime.now(UTC)
    with database.session() as session:
        create_grid(session, "g")
        grid_row = get_grid_row(session, "g")
        grid_row.backup_repo, grid_row.backup_password = "/srv/backups", "pw"  # restores need one
        session.execute(
            insert(NodeRow),
            [
                {
                    "id": node_id,
                    "grid_id": grid_row.id,
                    "name": node_id,
                    "status": "online",
                    "status_since": now,
                    "last_seen_at": now,
                    "labels": {"zone": "a"},
                    "info": {"cpus": 2, "memory": 1 << 30, "drivers": [{"name": "local", "scope": "local"}]},
                    "created_at": now,
                    "updated_at": now,
                }
                for node_id in NODES
            ],
        )
        for policy in POLICIES:
            create_volume(
                session, "g", name=f"{policy}-data", scope="instance", driver="local", on_node_lost=policy
            )
            spec = ServiceSpec(
                name=policy,
                image="x:local",
                mounts=(Mount(MountKind.NAMED, target="/data", source=f"{policy}-data"),),
            )
            stack = StackSpec(
                name="s", services=(spec,), volumes=(VolumeDecl(f"{policy}-data", f"{policy}-data"),)
            )
            save_service(session, grid_row, "s", policy, service_document(stack, spec))
    yield database
    database.dispose()


def deploy(
    db: Database, connected: set[str], snapshots: GridSnapshots, only: str | None = None
) -> dict[str, ServicePlan]:
    """One deployment of the services as the deployer makes it: plan, record what waits, record
    the batch; the plans by service name."""
    with db.session() as session:
        grid_row = get_grid_row(session, "g")
        rows = [
            r for r in session.scalars(select(ServiceRow).order_by(ServiceRow.name)) if only in (None, r.name)
        ]
        names = {r.id: r.name for r in rows}
        plans = plan_services(session, grid_row, rows, connected, snapshots)
        record_unplaced(session, grid_row.id, plans, connected)
    with db.session() as session:
        for plan in plans:
            record_batch(session, grid_row.id, [i for i in plan.instances if i.kind in ("start", "replace")])
    return {names[p.service_row_id]: p for p in plans}


def where(db: Database) -> dict[str, tuple[str, str]]:
    """Docker volume name -> (node id, volume instance id), of the volume instances."""
    with db.session() as session:
        rows = session.execute(
            select(VolumeInstanceRow.name, VolumeInstanceRow.node_id, VolumeInstanceRow.id)
        )
        return {name: (node_id, vi_id) for name, node_id, vi_id in rows}


def go_offline(db: Database, node_id: str, seen: datetime) -> None:
    with db.session() as session:
        session.execute(
            update(NodeRow)
            .where(NodeRow.id == node_id)
            .values(status="offline", last_seen_at=seen, updated_at=datetime.now(UTC))
        )


def backup_of(db: Database, docker_volume: str, vi_id: str, taken: datetime) -> None:
    with db.session() as session:
        session.execute(
            insert(BackupRow).values(
                id="3055549d" + "0" * 56,
                grid_id=get_grid_row(session, "g").id,
                volume="restore-data",
                docker_volume=docker_volume,
                volume_instance_id=vi_id,
                node="n-1",
                group_id="g" * 32,
                time=taken,
                size=10,
                files=1,
                added=10,
                duration=0.1,
                quiesce="pause",
                manifest=None,
                verified_at=None,
                verify_error=None,
            )
        )


@pytest.fixture
def lost(db: Database) -> dict[str, Any]:
    """Every service's instance runs on n-1 (the only node up when they were deployed); then n-1
    goes dark, last seen three hours ago."""
    snapshots = GridSnapshots()
    plans = deploy(db, {"n-1"}, snapshots)
    assert all(p.instances[0].kind == "start" and p.instances[0].node_id == "n-1" for p in plans.values())
    homes = where(db)
    assert {node for node, _ in homes.values()} == {"n-1"}
    seen = datetime.now(UTC) - timedelta(hours=3)
    go_offline(db, "n-1", seen)
    return {"snapshots": snapshots, "homes": homes, "seen": seen}


def declare(db: Database, force: bool = False) -> node_loss.Declared:
    with db.session() as session:
        return node_loss.declare_lost(
            session, "g", "n-1", force=force, connected={"n-2", "n-3"}, actor="alice", master_id="m-1"
        )


def test_a_wait_volume_waits_however_long_its_node_is_gone(db: Database, lost: dict[str, Any]) -> None:
    """The timing rule: an offline node's age never changes a plan. Whatever the age (3 h, 30 days,
    declared lost or not), a wait volume's instance stays pending on its node, and no volume
    instance is made anywhere else."""
    snapshots = lost["snapshots"]
    for days in (0, 30):
        go_offline(db, "n-1", lost["seen"] - timedelta(days=days))
        (item,) = deploy(db, {"n-2", "n-3"}, snapshots, only="wait")["wait"].instances
        assert item.kind == "pending" and item.node_id == "n-1" and item.container is not None
        assert item.reason is not None and item.reason.startswith(
            "volume instance s.wait.wait-data-1 lives on node n-1, which is offline (last seen "
        )
        assert "bring n-1 back, or declare it lost with a restore or recreate policy" in item.reason
        assert "--on-node-lost restore|recreate', then 'moorage node declare-lost n-1'" in item.reason
        shown = aged(item.reason)
        assert shown is not None and f"last seen {age_text(3 * 3600 + days * 86400)}" in shown
        assert where(db) == lost["homes"]
    declared = declare(db)
    assert [(o.volume, o.action) for o in declared.outcomes if o.volume == "wait-data"] == [
        ("wait-data", "waiting")
    ]
    (item,) = deploy(db, {"n-2", "n-3"}, snapshots, only="wait")["wait"].instances
    assert item.kind == "pending" and item.node_id == "n-1"
    assert item.reason is not None and "lives on node n-1, declared lost (last seen" in item.reason
    assert where(db)["s.wait.wait-data-1"] == lost["homes"]["s.wait.wait-data-1"], (
        "its data stays where it is"
    )


def test_an_online_node_is_declared_lost_only_with_force(db: Database) -> None:
    deploy(db, {"n-1"}, GridSnapshots())
    with pytest.raises(Conflict, match=r"Node n-1 is online .*pass --force"):
        declare(db)
    with db.session() as session:
        assert session.get(NodeRow, "n-1").lost_at is None  # type: ignore[union-attr]
    declared = declare(db, force=True)
    assert declared.was_online


def test_a_restore_volume_without_a_backup_waits_and_says_so(db: Database, lost: dict[str, Any]) -> None:
    declared = declare(db)
    (outcome,) = [o for o in declared.outcomes if o.volume == "restore-data"]
    assert outcome.action == "waiting" and "has no backup to restore" in outcome.message
    assert not [r for r in declared.restores]
    (item,) = deploy(db, {"n-2", "n-3"}, lost["snapshots"], only="restore")["restore"].instances
    assert item.kind == "pending" and item.node_id == "n-1"
    assert item.reason is not None and "it was not restored (it has no backup" in item.reason
    homes = where(db)
    assert "s.recreate.recreate-data-1" not in homes, "recreate's copy is stale; a deploy makes a new one"
    assert homes == {k: v for k, v in lost["homes"].items() if "recreate" not in k}, "nothing else moved"


def test_a_restore_volume_is_restored_on_another_node_and_starts_there(
    db: Database, lost: dict[str, Any]
) -> None:
    snapshots = lost["snapshots"]
    _, vi_id = lost["homes"]["s.restore.restore-data-1"]
    taken = datetime.now(UTC) - timedelta(hours=7, minutes=12)
    backup_of(db, "s.restore.restore-data-1", vi_id, taken)
    declared = declare(db)
    (outcome,) = [o for o in declared.outcomes if o.volume == "restore-data"]
    assert outcome.action == "restoring" and outcome.to in ("n-2", "n-3") and outcome.backup_time == taken
    assert "restoring backup 3055549d" in outcome.message and "(7 h 12 m old)" in outcome.message
    (restore,) = declared.restores
    assert (
        restore.create["volume_instance_id"] == vi_id and restore.docker_volume == "s.restore.restore-data-1"
    )

    # while it restores: held, stopped, planned nowhere else, nothing made anywhere
    for connected in ({"n-2", "n-3"}, ALL):  # even if n-1 came back meanwhile
        (item,) = deploy(db, connected, snapshots, only="restore")["restore"].instances
        assert item.kind == "pending" and item.node_id == "n-1" and item.container is None
        assert item.reason is not None and "is being restored from its latest backup" in item.reason
        assert where(db)["s.restore.restore-data-1"] == ("n-1", vi_id)

    with db.session() as session:
        session.execute(
            update(BackupJobRow)
            .where(BackupJobRow.id == restore.job)
            .values(state="done", finished_at=datetime.now(UTC))
        )
        services, lost_node = node_loss.restored(session, restore.job)
    assert lost_node == "n-1" and len(services) == 1
    assert where(db)["s.restore.restore-data-1"] == (restore.node_id, vi_id), (
        "the same volume instance, moved"
    )
    (item,) = deploy(db, {"n-2", "n-3"}, snapshots, only="restore")["restore"].instances
    assert item.kind == "start" and item.node_id == restore.node_id
    assert [v for v in item.volumes if v.name == "s.restore.restore-data-1"]
    with db.session() as session:
        stale = retired_of(session, "g", "restore-data")
        assert [(r.name, r.node, r.why, r.state) for r in stale] == [
            ("s.restore.restore-data-1", "n-1", "stale", "kept")
        ]
        desired = desired_for_node(session, "n-1", "g")
        assert not [c for c in desired.containers if "restore" in c.name], "its container never starts on n-1"
        assert not [
            v for v in desired.volumes + desired.remove_volumes if v.name == "s.restore.restore-data-1"
        ]
        shown = node_loss.restored_of(session, "g", "restore-data")
        assert [(r.docker_volume, r.node, r.lost_node, r.backup_time) for r in shown] == [
            ("s.restore.restore-data-1", restore.node, "n-1", taken)
        ]


def test_without_a_backup_repository_a_restore_volume_waits(db: Database, lost: dict[str, Any]) -> None:
    _, vi_id = lost["homes"]["s.restore.restore-data-1"]
    backup_of(db, "s.restore.restore-data-1", vi_id, datetime.now(UTC))
    with db.session() as session:
        get_grid_row(session, "g").backup_repo = None
    declared = declare(db)
    (outcome,) = [o for o in declared.outcomes if o.volume == "restore-data"]
    assert outcome.action == "waiting" and "grid g has no backup repository" in outcome.message
    assert not declared.restores
    with db.session() as session:
        assert session.scalar(select(BackupJobRow.id)) is None, "no job that nothing would send"


def test_a_failed_restore_leaves_the_data_where_it_was(db: Database, lost: dict[str, Any]) -> None:
    _, vi_id = lost["homes"]["s.restore.restore-data-1"]
    backup_of(db, "s.restore.restore-data-1", vi_id, datetime.now(UTC) - timedelta(hours=1))
    (restore,) = declare(db).restores
    with db.session() as session:
        node_loss.restore_failed(session, restore.job, "restic: repository unreachable")
    with db.session() as session:
        assert session.get(VolumeInstanceRow, vi_id).restore_job is None  # type: ignore[union-attr]
    (item,) = deploy(db, {"n-2", "n-3"}, lost["snapshots"], only="restore")["restore"].instances
    assert item.kind == "pending" and item.node_id == "n-1", "waits for n-1 again"
    assert where(db)["s.restore.restore-data-1"] == ("n-1", vi_id)
    with db.session() as session:
        assert not retired_of(session, "g", "restore-data"), "nothing superseded"


def test_orphaned_holds_are_found(db: Database, lost: dict[str, Any]) -> None:
    _, vi_id = lost["homes"]["s.restore.restore-data-1"]
    backup_of(db, "s.restore.restore-data-1", vi_id, datetime.now(UTC))
    (restore,) = declare(db).restores
    with db.session() as session:
        assert node_loss.orphaned_holds(session) == []
        session.execute(update(BackupJobRow).where(BackupJobRow.id == restore.job).values(state="failed"))
    with db.session() as session:
        assert node_loss.orphaned_holds(session) == [restore.job]


def test_a_recreate_volume_starts_empty_elsewhere_and_its_events_say_so(
    db: Database, lost: dict[str, Any]
) -> None:
    old_node, old_id = lost["homes"]["s.recreate.recreate-data-1"]
    declared = declare(db)
    (outcome,) = [o for o in declared.outcomes if o.volume == "recreate-data"]
    assert outcome.action == "recreating" and "starts with an EMPTY volume on another node" in outcome.message
    assert len(declared.services) == 3, "each service with an instance there deploys again"
    (item,) = deploy(db, {"n-2", "n-3"}, lost["snapshots"], only="recreate")["recreate"].instances
    assert item.kind == "start" and item.node_id in ("n-2", "n-3")
    new_node, new_id = where(db)["s.recreate.recreate-data-1"]
    assert new_node == item.node_id and new_id != old_id, "a new, empty volume instance"
    with db.session() as session:
        stale = retired_of(session, "g", "recreate-data")
        assert [(r.node, r.why) for r in stale] == [(old_node, "stale")]
        said = list(
            session.scalars(select(EventRow.message).where(EventRow.kind == "volume_instance.recreated"))
        )
        assert len(said) == 1 and "s/recreate-1 starts with an EMPTY volume" in said[0]
        assert session.scalar(select(EventRow.actor).where(EventRow.kind == "node.lost")) == "alice"


def test_no_path_gives_an_empty_volume_to_a_wait_or_restore_volume(
    db: Database, lost: dict[str, Any]
) -> None:
    """Declared lost (twice), deployed again with every other node up, the node returned: the wait
    and restore volumes' instances never got a volume instance anywhere but n-1."""
    for _ in range(2):
        declare(db)
        deploy(db, {"n-2", "n-3"}, lost["snapshots"])
    with db.session() as session:
        node_loss.node_returned(session, session.get(NodeRow, "n-1"))  # type: ignore[arg-type]
        session.execute(
            update(NodeRow).where(NodeRow.id == "n-1").values(status="online", updated_at=datetime.now(UTC))
        )
    plans = deploy(db, ALL, lost["snapshots"])
    homes = where(db)
    for policy in ("wait", "restore"):
        assert homes[f"s.{policy}.{policy}-data-1"] == lost["homes"][f"s.{policy}.{policy}-data-1"]
        (item,) = plans[policy].instances
        assert item.node_id == "n-1" and item.kind in ("unchanged", "replace", "start")


def test_a_node_that_returns_is_fenced_and_stale_copies_go_only_by_purge(
    db: Database, lost: dict[str, Any]
) -> None:
    declare(db)
    deploy(db, {"n-2", "n-3"}, lost["snapshots"])
    with db.session() as session:
        row = session.get(NodeRow, "n-1")
        assert row is not None and row.lost_at is not None
        node_loss.node_returned(session, row)
        assert row.lost_at is None
        said = session.scalar(select(EventRow.message).where(EventRow.kind == "node.returned"))
        assert said is not None and "its 1 superseded Docker volume(s) stay, stale" in said
        desired = desired_for_node(session, "n-1", "g")
        assert sorted(c.name for c in desired.containers) == [
            container_name("s", "restore", 1),  # no backup: it waits for n-1, and runs there again
            container_name("s", "wait", 1),
        ], "the recreated instance runs elsewhere now: not here"
        assert not desired.remove_volumes, "nothing of it is deleted"
    with db.session() as session:
        assert purge_expired(session, datetime.now(UTC) + timedelta(days=365)) == set(), (
            "no retention for stale copies"
        )
    with db.session() as session:
        names, nodes = purge_retired(session, "g", "recreate-data", [])
        assert names == ["s.recreate.recreate-data-1"] and nodes == {"n-1"}
    with db.session() as session:
        removals = desired_for_node(session, "n-1", "g").remove_volumes
        assert [(v.name, v.create) for v in removals] == [("s.recreate.recreate-data-1", False)]
        assert session.scalar(select(RetiredVolumeRow.state)) == "purging"


def test_a_volume_policy_is_changed_and_checked(db: Database) -> None:
    with db.session() as session:
        view, before = set_on_node_lost(session, "g", "wait-data", "recreate")
        assert (view.on_node_lost, before) == ("recreate", "wait")
        assert set_on_node_lost(session, "g", "wait-data", "recreate")[1] is None
        create_volume(session, "g", name="shared", scope="stack", driver="local")
        with pytest.raises(InvalidInput, match="applies to instance-scope volumes only"):
            set_on_node_lost(session, "g", "shared", "restore")
        assert show_volume(session, "g", "shared").on_node_lost == "wait"
    with db.session() as session, pytest.raises(InvalidInput) as err:
        create_volume(session, "g", name="bad", scope="grid", driver="local", on_node_lost="recreate")
    assert "on_node_lost" in err.value.errors
    with db.session() as session:
        assert session.scalar(select(InstanceRow.id).limit(1)) is None


def test_removing_a_volume_removes_its_stale_copies_too(db: Database, lost: dict[str, Any]) -> None:
    """``volume rm`` is the user's word that the volume's data goes: its copies on a lost node
    (and any a move retired) go with it, by their nodes, as its volume instances do."""
    declare(db)
    with db.session() as session:
        session.execute(delete(InstanceRow))
        session.execute(delete(ServiceRow).where(ServiceRow.name == "recreate"))
    with db.session() as session:
        nodes = remove_volume(session, "g", "recreate-data")
        assert "n-1" in nodes
    with db.session() as session:
        removals = desired_for_node(session, "n-1", "g").remove_volumes
        assert "s.recreate.recreate-data-1" in [v.name for v in removals]
        assert session.scalar(select(RetiredVolumeRow.state)) == "purging"


def test_a_restore_goes_where_the_scheduler_puts_its_instance(db: Database, lost: dict[str, Any]) -> None:
    """The master asks the scheduler where the instance would run with its data free to go
    (``restore_candidates``, then a preview) and restores there; a node the scheduler found no room
    on means it waits with the scheduler's reason, never a restore onto a node it cannot run on."""
    _, vi_id = lost["homes"]["s.restore.restore-data-1"]
    backup_of(db, "s.restore.restore-data-1", vi_id, datetime.now(UTC) - timedelta(hours=1))
    with db.session() as session:
        node_id, candidates, taken = node_loss.restore_candidates(session, "g", "n-1")
    assert node_id == "n-1" and [c.docker_volume for c in candidates] == ["s.restore.restore-data-1"]
    assert taken == {"s.restore.restore-data-1": frozenset({"n-1"})}
    with db.session() as session:
        declared = node_loss.declare_lost(
            session, "g", "n-1", force=False, connected={"n-2", "n-3"},
            targets={"s.restore.restore-data-1": (None, "0/3 nodes available: 3 node(s) didn't match affinity")},
        )  # fmt: skip
    (outcome,) = [o for o in declared.outcomes if o.volume == "restore-data"]
    assert (
        outcome.action == "waiting"
        and "no node can run its instance with its data: 0/3 nodes" in outcome.message
    )
    with db.session() as session:
        declared = node_loss.declare_lost(
            session, "g", "n-1", force=False, connected={"n-2", "n-3"},
            targets={"s.restore.restore-data-1": ("n-3", None)},
        )  # fmt: skip
    (restore,) = declared.restores
    assert restore.node_id == "n-3", "the scheduler's pick, not the emptiest node"


def test_a_node_declared_lost_while_its_agent_is_connected_takes_no_new_instance(db: Database) -> None:
    """``declare-lost --force`` on a node whose agent is still connected: the hub still has it,
    but nothing new is placed there (pending, saying why) until its agent says hello again."""
    declared = declare(db, force=True)
    assert declared.was_online
    plans = deploy(db, {"n-1"}, GridSnapshots())  # n-1 is the only node up: it would take them all
    for name, plan in plans.items():
        (item,) = plan.instances
        assert item.kind == "pending" and item.node_id is None, f"{name} placed on {item.node_id}"
        assert item.reason is not None and "1 node(s) declared lost" in item.reason, item.reason
    assert where(db) == {}, "no volume instance made on the lost node"
    with db.session() as session:
        node_loss.node_returned(session, session.get(NodeRow, "n-1"))  # type: ignore[arg-type]
    placed = deploy(db, {"n-1"}, GridSnapshots())
    assert all(p.instances[0].kind == "start" and p.instances[0].node_id == "n-1" for p in placed.values())


def test_an_instance_whose_data_a_connected_lost_node_holds_waits_by_its_policy(
    db: Database, lost: dict[str, Any]
) -> None:
    """Its agent reconnected without a hello that ends the loss yet (declared lost while away,
    then forced again while connected): the wait volume's instance is explained by its policy,
    as when the node is offline, and not started there."""
    with db.session() as session:
        session.execute(update(NodeRow).where(NodeRow.id == "n-1").values(status="online"))
    declare(db, force=True)
    (item,) = deploy(db, {"n-1", "n-2", "n-3"}, GridSnapshots(), only="wait")["wait"].instances
    assert item.kind == "pending" and item.node_id == "n-1"
    assert item.reason is not None and "lives on node n-1, declared lost" in item.reason, item.reason

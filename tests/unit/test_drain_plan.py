"""Drain planning as a table: the plans of a drained node's services -> what leaves (re-planned,
re-attaching, data to move, a daemon's instance stopping) and what stays and why. Pure values."""

from __future__ import annotations

import pytest

from moorage.master.drain_plan import DataMove, DataTarget, Leaving, Staying, data_targets, plan_drain
from moorage.master.planning_decision import InstancePlan, PlanKind, ServicePlan
from moorage.model.container import PlannedContainer
from moorage.model.volume import VolumeScope, VolumeTopology
from moorage.store.placements import VolumeWrite

WEB, DB, ZDB, DAEMON = "g/null/web", "g/shop/db", "g/shop/zdb", "g/null/agent"
ROW = {WEB: 1, DB: 2, ZDB: 3, DAEMON: 4}  # service row ids
NEW = PlannedContainer({"name": "x"}, "hash", (), None, None)
LOCAL = VolumeWrite(1, "data", "shop.db.data-1", "local", {}, VolumeScope.INSTANCE, VolumeTopology.NODE)
LOCAL_2 = VolumeWrite(3, "logs", "shop.db.logs-1", "local", {}, VolumeScope.INSTANCE, VolumeTopology.NODE)
ZONED = VolumeWrite(2, "zdata", "shop.zdb.zdata-1", "zdir", {}, VolumeScope.INSTANCE, VolumeTopology.ZONE)
CACHE = VolumeWrite(4, "cache", "shop.cache", "local", {}, VolumeScope.STACK, VolumeTopology.NODE)
HELD = "0/3 nodes available: 2 node(s) don't hold volume instance shop.db.data-1, 1 node(s) drained"


def _item(
    service: str,
    number: int,
    kind: PlanKind,
    node: str | None,
    volumes: tuple[VolumeWrite, ...] = (),
    reason: str | None = None,
) -> InstancePlan:
    return InstancePlan(
        service_row_id=ROW[service],
        service_id=service,
        number=number,
        kind=kind,
        node_id=node,
        container=NEW if node else None,
        reason=reason,
        volumes=volumes,
        had_container=True,
    )


def _plan(service: str, *items: InstancePlan, removed: tuple[int, ...] = ()) -> ServicePlan:
    return ServicePlan(ROW[service], service, list(items), list(removed))


def _on_d(*keys: tuple[str, int]) -> set[tuple[int, int]]:
    return {(ROW[service], number) for service, number in keys}


CASES = [
    pytest.param(
        [_plan(WEB, _item(WEB, 1, "replace", "n2"), _item(WEB, 2, "unchanged", "n3"))],
        [(WEB, 1)],
        [Leaving(WEB, 1, "replan", "n2")],
        [],
        [],
        id="stateless-re-planned-elsewhere-others-of-the-service-not-reported",
    ),
    pytest.param(
        [_plan(WEB, _item(WEB, 1, "replace", "n2", (CACHE,)))],
        [(WEB, 1)],
        [Leaving(WEB, 1, "replan", "n2")],
        [],
        [],
        id="stack-scope-volume-is-one-per-node-re-planned",
    ),
    pytest.param(
        [_plan(ZDB, _item(ZDB, 1, "replace", "n2", (ZONED,)))],
        [(ZDB, 1)],
        [Leaving(ZDB, 1, "reattach", "n2", "shop.zdb.zdata-1")],
        [],
        [],
        id="zone-topology-re-attaches-in-its-zone",
    ),
    pytest.param(
        [_plan(ZDB, _item(ZDB, 1, "failed", None, (ZONED,), "0/3 nodes available: 2 node(s) drained, ..."))],
        [(ZDB, 1)],
        [],
        [Staying(ZDB, 1, "0/3 nodes available: 2 node(s) drained, ...")],
        [],
        id="zone-topology-with-no-other-node-in-its-zone-stays",
    ),
    pytest.param(
        [_plan(DB, _item(DB, 1, "failed", None, (LOCAL, CACHE), HELD))],
        [(DB, 1)],
        [],
        [],
        [DataMove(DB, 1, "data", "shop.db.data-1", HELD)],
        id="node-topology-data-must-move",
    ),
    pytest.param(
        [_plan(DB, _item(DB, 1, "failed", None, (LOCAL, LOCAL_2), HELD))],
        [(DB, 1)],
        [],
        [
            Staying(
                DB,
                1,
                "its data is in several volume instances that only this node holds (shop.db.data-1, "
                "shop.db.logs-1); a volume move takes an instance with one instance-scope volume "
                "instance only, so it stays",
            )
        ],
        [],
        id="two-node-topology-volumes-stay",
    ),
    pytest.param(
        [_plan(WEB, _item(WEB, 1, "failed", None, (), "0/1 nodes available: 1 node(s) drained"))],
        [(WEB, 1)],
        [],
        [Staying(WEB, 1, "0/1 nodes available: 1 node(s) drained")],
        [],
        id="stateless-with-nowhere-to-go-stays",
    ),
    pytest.param(
        [_plan(DAEMON, _item(DAEMON, 2, "unchanged", "n2"), removed=(1,))],
        [(DAEMON, 1)],
        [Leaving(DAEMON, 1, "stop")],
        [],
        [],
        id="daemon-instance-stops",
    ),
    pytest.param(
        [
            _plan(WEB, _item(WEB, 1, "replace", "n2")),
            _plan(DB, _item(DB, 1, "failed", None, (LOCAL,), HELD)),
            _plan(ZDB, _item(ZDB, 1, "replace", "n3", (ZONED,))),
        ],
        [(WEB, 1), (DB, 1), (ZDB, 1)],
        [Leaving(WEB, 1, "replan", "n2"), Leaving(ZDB, 1, "reattach", "n3", "shop.zdb.zdata-1")],
        [],
        [DataMove(DB, 1, "data", "shop.db.data-1", HELD)],
        id="three-services-in-plan-order",
    ),
]


@pytest.mark.parametrize(("plans", "on_node", "leaving", "staying", "data"), CASES)
def test_plan_drain(
    plans: list[ServicePlan],
    on_node: list[tuple[str, int]],
    leaving: list[Leaving],
    staying: list[Staying],
    data: list[DataMove],
) -> None:
    planned = plan_drain("n1", _on_d(*on_node), plans)
    assert (planned.leaving, planned.staying, planned.data) == (leaving, staying, data)


DB_MOVE = DataMove(DB, 1, "data", "shop.db.data-1", HELD)
WEB_MOVE = DataMove(WEB, 2, "data", "web.data-2", HELD)


@pytest.mark.parametrize(
    ("plans", "expected"),
    [
        pytest.param(
            [_plan(DB, _item(DB, 1, "replace", "n3", (LOCAL,)))],
            [DataTarget(DB_MOVE, "n3")],
            id="placed-elsewhere-with-its-data-is-the-target",
        ),
        pytest.param(
            [_plan(DB, _item(DB, 1, "failed", None, (LOCAL,), "0/2 nodes available: 1 node(s) drained, "
                   "1 node(s) missing volume driver(s) [local]"))],
            [Staying(DB, 1, "no node can take it with its data: 0/2 nodes available: 1 node(s) drained, "
                     "1 node(s) missing volume driver(s) [local]")],
            id="no-node-takes-it-with-its-data-stays-with-the-scheduler-s-reason",
        ),
        pytest.param(
            [_plan(DB, _item(DB, 1, "pending", "n1", (LOCAL,), None))],
            [Staying(DB, 1, f"no node can take it with its data: {HELD}")],
            id="kept-on-the-drained-node-stays-with-the-first-reason",
        ),
        pytest.param(
            [_plan(DB)],
            [Staying(DB, 1, f"{HELD} (no longer planned)")],
            id="scaled-down-meanwhile",
        ),
        pytest.param(
            [_plan(WEB, _item(WEB, 2, "replace", "n2")), _plan(DB, _item(DB, 1, "replace", "n2", (LOCAL,)))],
            [DataTarget(DB_MOVE, "n2"), DataTarget(WEB_MOVE, "n2")],
            id="in-the-order-of-the-moves-not-of-the-plans",
        ),
    ],
)  # fmt: skip
def test_data_targets(plans: list[ServicePlan], expected: list[DataTarget | Staying]) -> None:
    moves = [DB_MOVE, WEB_MOVE] if len(expected) == 2 else [DB_MOVE]
    assert data_targets("n1", moves, plans) == expected

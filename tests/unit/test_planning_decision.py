"""The planning decision as a table: what is stored of an instance and where the scheduler put it
-> unchanged | start | replace | pending | failed, with its node, container, volumes and place.
No database: the inputs are plain values."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from moorage.master.planning_decision import (
    InstancePlan,
    PlanKind,
    Slot,
    decide,
    missing_volume_plans,
    removed_numbers,
)
from moorage.model.container import PlannedContainer
from moorage.model.volume import VolumeScope
from moorage.scheduler import InstanceRequest, Placement, VolumeNeed
from moorage.store.grid_snapshot import CurrentInstance
from moorage.store.placements import NodePlace, VolumeWrite

NEW = PlannedContainer({"name": "web-1"}, "hash-new", (), None, None)
DATA = VolumeWrite(7, "data", "web.data-1", "local", {}, VolumeScope.INSTANCE)
SHARED = VolumeWrite(8, "files", "web.files-1", "dirvol", {}, VolumeScope.INSTANCE)
# The grid: n1 in zone a (dirvol shared there), n2 in zone b, n3 with no zone; "gone" is not in it.
PLACES = {
    "n1": NodePlace("a", {"local": "local", "dirvol": "global"}),
    "n2": NodePlace("b", {"local": "local"}),
    "n3": NodePlace(None, {"local": None}),
}


def _current(node: str | None, config: str | None, container: bool = True) -> CurrentInstance:
    return CurrentInstance(node_id=node, desired_hash=config, has_container=container)


def _pin(node: str, volume: VolumeWrite = DATA) -> VolumeNeed:
    return VolumeNeed(
        volume=volume.volume,
        driver=volume.driver,
        scope=volume.scope,
        docker_name=volume.name,
        pinned_node=node,
    )


def _placed(node: str) -> Placement:
    return Placement(instance=1, node_id=node, reasons=(), status="placed")


def _pending(*reasons: str) -> Placement:
    return Placement(instance=1, node_id=None, reasons=reasons, status="pending")


FAILED = Placement(
    instance=1, node_id=None, reasons=("0/3 nodes are available: 3 node(s) lack port 80",), status="failed"
)


@dataclass(frozen=True)
class Expected:
    kind: PlanKind
    node: str | None
    container: bool
    volumes: tuple[VolumeWrite, ...] = (DATA,)
    reason: str | None = None
    had_container: bool = False
    config_here: str | None = None


ROWS = [
    pytest.param(None, (), _placed("n1"), Expected("start", "n1", True), id="new-instance-starts"),
    pytest.param(
        _current("n1", "hash-new"),
        (),
        _placed("n1"),
        Expected("unchanged", "n1", True, had_container=True, config_here="hash-new"),
        id="same-node-same-config-unchanged",
    ),
    pytest.param(
        _current("n1", "hash-old"),
        (),
        _placed("n1"),
        Expected("replace", "n1", True, had_container=True, config_here="hash-old"),
        id="same-node-new-config-replaced",
    ),
    pytest.param(
        _current("n2", "hash-new"),
        (),
        _placed("n1"),
        Expected("replace", "n1", True, had_container=True),
        id="moved-to-another-node-replaced",
    ),
    pytest.param(
        _current(None, None, container=False),
        (),
        _placed("n1"),
        Expected("start", "n1", True),
        id="stored-without-container-starts",
    ),
    pytest.param(
        _current("n1", "hash-old", container=False),
        (),
        _placed("n2"),
        Expected("start", "n2", True),
        id="pending-on-a-node-without-container-starts-elsewhere",
    ),
    pytest.param(
        _current("n2", "hash-old"),
        (_pin("n2"),),
        _pending("pinned node n2 is offline"),
        Expected(
            "pending",
            "n2",
            True,
            reason="pinned node n2 is offline",
            had_container=True,
            config_here="hash-old",
        ),
        id="pin-to-away-node-stays-pending-there-its-old-container-older",
    ),
    pytest.param(
        _current("n2", "hash-new"),
        (_pin("n2"),),
        _pending("pinned node n2 is offline"),
        Expected(
            "pending",
            "n2",
            True,
            reason="pinned node n2 is offline",
            had_container=True,
            config_here="hash-new",
        ),
        id="pin-to-away-node-same-config-there",
    ),
    pytest.param(
        _current("gone", "hash-old"),
        (_pin("gone"),),
        _pending("pinned node was removed"),
        Expected("pending", None, False, reason="pinned node was removed", had_container=True),
        id="pin-to-removed-node-pending-nowhere",
    ),
    pytest.param(
        None,
        (_pin("gone"), _pin("n3", SHARED)),
        _pending("a", "b"),
        Expected("pending", "n3", True, reason="a; b"),
        id="first-pin-still-in-grid-wins",
    ),
    pytest.param(
        None,
        (),
        _pending("0/3 nodes are available: 3 node(s) offline"),
        Expected("pending", None, False, reason="0/3 nodes are available: 3 node(s) offline"),
        id="no-pin-no-node-now-pending-nowhere",
    ),
    pytest.param(
        None,
        (),
        FAILED,
        Expected("failed", None, False, volumes=(), reason=FAILED.reasons[0]),
        id="never-placeable-fails",
    ),
    pytest.param(
        _current("n1", "hash-old"),
        (),
        FAILED,
        Expected("failed", None, False, volumes=(), reason=FAILED.reasons[0], had_container=True),
        id="failed-keeps-word-of-its-old-container",
    ),
]


@pytest.mark.parametrize(("current", "pins", "placement", "expected"), ROWS)
def test_decide(
    current: CurrentInstance | None, pins: tuple[VolumeNeed, ...], placement: Placement, expected: Expected
) -> None:
    slot = Slot(
        service_row_id=3, service_id="g/null/web", number=1, current=current, container=NEW, volumes=(DATA,)
    )
    request = InstanceRequest(service_id="g/null/web", instance=1, volumes=pins)
    plan = decide(slot, request, placement, PLACES.get)
    assert plan == InstancePlan(
        service_row_id=3,
        service_id="g/null/web",
        number=1,
        kind=expected.kind,
        node_id=expected.node,
        container=NEW if expected.container else None,
        reason=expected.reason,
        volumes=expected.volumes,
        had_container=expected.had_container,
        config_here=expected.config_here,
        place=PLACES.get(expected.node) if expected.node else None,
    )


@pytest.mark.parametrize(
    ("node", "zone", "shared"),
    [
        pytest.param("n1", "a", True, id="zone-a-dirvol-global-volume-follows"),
        pytest.param("n2", "b", False, id="zone-b-no-dirvol"),
        pytest.param("n3", None, False, id="no-zone-scope-unknown"),
    ],
)
def test_a_placed_instance_carries_its_nodes_zone_and_drivers(
    node: str, zone: str | None, shared: bool
) -> None:
    slot = Slot(3, "g/null/web", 1, None, NEW, (DATA, SHARED))
    plan = decide(slot, InstanceRequest("g/null/web", 1), _placed(node), PLACES.get)
    assert plan.place is not None and plan.place.zone == zone
    assert (plan.place.drivers.get("dirvol") == "global") is shared


def test_a_missing_volume_fails_every_instance_naming_the_first() -> None:
    current = {1: _current("n1", "h"), 3: _current(None, None, container=False)}
    plans = missing_volume_plans(3, "g/null/web", 3, current, {"zeta", "alpha"})
    reason = "External volume alpha not found; create it with 'moorage volume create'"
    assert [(p.number, p.kind, p.node_id, p.container, p.reason, p.had_container) for p in plans] == [
        (1, "failed", None, None, reason, True),
        (2, "failed", None, None, reason, False),
        (3, "failed", None, None, reason, False),
    ]


@pytest.mark.parametrize(
    ("current", "planned", "removed"),
    [
        pytest.param([1, 2, 3], [1, 2], [3], id="scaled-down"),
        pytest.param([1, 2], [1, 2, 3], [], id="scaled-up"),
        pytest.param([1, 4, 2], [1, 3], [2, 4], id="daemon-node-gone"),
    ],
)
def test_removed_numbers(current: list[int], planned: list[int], removed: list[int]) -> None:
    assert removed_numbers(current, planned) == removed


DRAINED_ROWS = [
    pytest.param(
        _current("n1", "hash-old"),
        _pending("0/3 nodes available: 2 node(s) offline, 1 node(s) drained"),
        Expected(
            "failed",
            None,
            False,
            reason="0/3 nodes available: 2 node(s) offline, 1 node(s) drained",
            had_container=True,
        ),
        id="nowhere-to-go-now-stays-on-the-drained-node-as-it-is",
    ),
    pytest.param(
        _current("n1", "hash-new"),
        FAILED,
        Expected("failed", None, False, reason=FAILED.reasons[0], had_container=True),
        id="nowhere-ever-stays-on-the-drained-node-with-word-of-its-volumes",
    ),
    pytest.param(
        _current("n1", "hash-new"),
        _placed("n2"),
        Expected("replace", "n2", True, had_container=True),
        id="placed-elsewhere-leaves-the-drained-node",
    ),
    pytest.param(
        _current("n2", "hash-new"),
        _pending("0/3 nodes available: 3 node(s) offline"),
        Expected("pending", None, False, reason="0/3 nodes available: 3 node(s) offline", had_container=True),
        id="not-on-the-drained-node-pending-as-ever",
    ),
]


@pytest.mark.parametrize(("current", "placement", "expected"), DRAINED_ROWS)
def test_decide_with_n1_drained(current: CurrentInstance, placement: Placement, expected: Expected) -> None:
    """An instance on a drained node that cannot be placed stays there as it is (failed: the
    deployment records nothing for it), never stopped for want of a node."""
    slot = Slot(3, "g/null/web", 1, current, NEW, (DATA,))
    plan = decide(slot, InstanceRequest("g/null/web", 1), placement, PLACES.get, frozenset({"n1"}))
    assert (plan.kind, plan.node_id, plan.container is not None, plan.volumes, plan.reason) == (
        expected.kind,
        expected.node,
        expected.container,
        expected.volumes,
        expected.reason,
    )
    assert plan.had_container is expected.had_container

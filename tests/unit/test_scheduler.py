"""The scheduler, case by case: where instances land, and the exact words when they cannot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from moorage.model.stack import AffinityRule, DeployStrategy, PortMapping
from moorage.model.volume import VolumeScope, VolumeTopology
from moorage.scheduler import (
    InstanceRequest,
    NodeIndex,
    NodeView,
    Placement,
    VolumeNeed,
    daemon_plan,
    schedule_service,
)
from moorage.scheduler.reasons import NODE_DRAINED, NOT_HOLDING_VOLUME, OUTSIDE_VOLUME_DOMAIN, summarize

GB = 1 << 30
HA, DAEMON, RANDOM = DeployStrategy.HA, DeployStrategy.DAEMON, DeployStrategy.RANDOM
SERVICE = "grid/redis/redis"


def node(
    name: str,
    zone: str | None = None,
    *,
    online: bool = True,
    drivers: Mapping[str, str | None] | None = None,
    labels: Mapping[str, str] | None = None,
    memory: int = 8 * GB,
    cpus: int = 4,
    used_ports: Sequence[int] = (),
    lost: bool = False,
) -> NodeView:
    """A node named ``name`` with id ``id-<name>``: ids and names differ, as in the master. An
    offline one was last seen at ``SEEN``; ``lost``: declared lost at ``LOST``."""
    all_labels = dict(labels or {})
    if zone is not None:
        all_labels["zone"] = zone
    return NodeView(
        id=f"id-{name}",
        name=name,
        online=online,
        labels=all_labels,
        drivers=dict(drivers if drivers is not None else {"local": "local"}),
        memory=memory,
        cpus=cpus,
        used_ports=frozenset(used_ports),
        last_seen=SEEN,
        lost_at=LOST if lost else None,
    )


SEEN = datetime(2026, 12, 3, 14, 5, 3, tzinfo=UTC)
LOST = datetime(2026, 12, 3, 14, 9, 0, tzinfo=UTC)


def label(value: str, equal: bool = True) -> AffinityRule:
    return AffinityRule(subject="label", equal=equal, value=value)


def on_node(name: str, equal: bool = True) -> AffinityRule:
    return AffinityRule(subject="node", equal=equal, value=name)


def port(host: int) -> PortMapping:
    return PortMapping(host_port=host, container_port=host)


def vol(
    volume: str = "redis-data",
    instance: int = 1,
    *,
    scope: VolumeScope = VolumeScope.INSTANCE,
    driver: str = "local",
    pinned: str | None = None,
    topology: VolumeTopology = VolumeTopology.NODE,
    home_zone: str | None = None,
    home_region: str | None = None,
    on_node_lost: str = "wait",
) -> VolumeNeed:
    docker_name = {
        VolumeScope.INSTANCE: f"redis.redis.{volume}-{instance}",
        VolumeScope.STACK: f"redis.{volume}",
        VolumeScope.GRID: volume,
    }[scope]
    return VolumeNeed(
        volume=volume,
        driver=driver,
        scope=scope,
        docker_name=docker_name,
        pinned_node=None if pinned is None else f"id-{pinned}",
        topology=topology,
        home_zone=home_zone,
        home_region=home_region,
        on_node_lost=on_node_lost,
    )


def reqs(count: int, **kw: object) -> list[InstanceRequest]:
    """``count`` instances of one service, numbered from 1, all shaped by ``kw``."""
    current = kw.pop("current", None)
    return [
        InstanceRequest(
            SERVICE,
            n,
            current_node=f"id-{current}" if isinstance(current, str) else None,
            **kw,  # type: ignore[arg-type]
        )
        for n in range(1, count + 1)
    ]


THREE_ZONES = [node("node-a", "a"), node("node-b", "b"), node("node-c", "c")]


@dataclass
class Case:
    nodes: list[NodeView]
    requests: list[InstanceRequest]
    strategy: DeployStrategy = HA
    used: list[str] = field(default_factory=list)  # node names of placed instances, sorted
    unplaced: list[tuple[str, str]] = field(default_factory=list)  # (status, reason), sorted


def pinned_instances() -> list[InstanceRequest]:
    return [
        InstanceRequest(SERVICE, 1, volumes=(vol(instance=1, pinned="node-a"),)),
        InstanceRequest(SERVICE, 2, volumes=(vol(instance=2, pinned="node-a"),)),
    ]


PIN_OFFLINE = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, which is offline (last seen "
    "2026-12-03 14:05:03 UTC); its volume redis-data waits for it (on_node_lost wait): bring node-b back, "
    "or declare it lost with a restore or recreate policy ('moorage volume update redis-data "
    "--on-node-lost restore|recreate', then 'moorage node declare-lost node-b')"
)
PIN_OFFLINE_RESTORE = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, which is offline (last seen "
    "2026-12-03 14:05:03 UTC): bring node-b back, or run 'moorage node declare-lost node-b' to restore its "
    "latest backup on another node (volume redis-data: on_node_lost restore)"
)
PIN_OFFLINE_RECREATE = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, which is offline (last seen "
    "2026-12-03 14:05:03 UTC): bring node-b back, or run 'moorage node declare-lost node-b' to start it "
    "with an empty volume on another node (volume redis-data: on_node_lost recreate)"
)
PIN_LOST_WAIT = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, declared lost (last seen "
    "2026-12-03 14:05:03 UTC); its volume redis-data waits for it (on_node_lost wait): bring node-b back, "
    "or declare it lost with a restore or recreate policy ('moorage volume update redis-data "
    "--on-node-lost restore|recreate', then 'moorage node declare-lost node-b')"
)
PIN_LOST_NOT_RESTORED = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, declared lost (last seen "
    "2026-12-03 14:05:03 UTC); it was not restored (it has no backup, its restore failed, or node-b was "
    "declared lost before the volume's policy was restore: 'moorage events --volume redis-data'), so it "
    "waits: bring node-b back, or run 'moorage node declare-lost node-b' again to try again, after "
    "'moorage volume update redis-data --on-node-lost recreate' to start it with an empty volume"
)
PIN_LOST_RECREATE = (
    "volume instance redis.redis.redis-data-1 lives on node node-b, declared lost (last seen "
    "2026-12-03 14:05:03 UTC): its volume redis-data is on_node_lost recreate now; run 'moorage node "
    "declare-lost node-b' again to start it with an empty volume on another node, or bring node-b back"
)
PIN_REMOVED = (
    "volume instance redis.redis.redis-data-1 lives on a removed node: remove the service and run "
    "'moorage volume rm redis-data' to start over with an empty volume"
)

# Zone-bound storage: zdir is global on every node, but its volumes are shared within a zone
# only. a1 made the volume instance (zone a, region eu); a2 is in zone a too; b1 is in zone b of
# region eu; c1 in zone c of region us; a3 is in zone a without the driver shared.
ZDIR = {"local": "local", "zdir": "global"}
ZONE_A = [
    node("a1", "a", drivers=ZDIR, labels={"region": "eu"}),
    node("a2", "a", drivers=ZDIR, labels={"region": "eu"}),
    node("b1", "b", drivers=ZDIR, labels={"region": "eu"}),
    node("c1", "c", drivers=ZDIR, labels={"region": "us"}),
]
ZONED = "redis.redis.redis-data-1"


def zoned(
    topology: VolumeTopology = VolumeTopology.ZONE,
    zone: str | None = "a",
    region: str | None = "eu",
    **kw: object,
) -> InstanceRequest:
    need = vol(driver="zdir", pinned="a1", topology=topology, home_zone=zone, home_region=region)
    return InstanceRequest(SERVICE, 1, volumes=(need,), **kw)  # type: ignore[arg-type]


def offline(nodes: list[NodeView], *names: str) -> list[NodeView]:
    return [replace(n, online=False) if n.name in names else n for n in nodes]


def outside(label: str, value: str) -> str:
    return OUTSIDE_VOLUME_DOMAIN.format(label=label, value=value, volume_instance=ZONED)


ZONE_CASES = [
    pytest.param(Case(ZONE_A, [zoned()], used=["a1"]), id="zone-stays-on-its-node-while-it-is-up"),
    pytest.param(
        Case(ZONE_A, [zoned(current_node="id-a2")], used=["a2"]), id="zone-sticky-on-another-node-of-its-zone"
    ),
    pytest.param(
        Case(offline(ZONE_A, "a1"), [zoned()], used=["a2"]),
        id="zone-node-down-re-attaches-in-the-zone",
    ),
    pytest.param(
        Case(
            offline(ZONE_A, "a1", "a2"),
            [zoned()],
            unplaced=[("pending", summarize(4, {"node(s) offline": 2, outside("zone", "a"): 2}))],
        ),
        id="zone-never-leaves-its-zone",
    ),
    pytest.param(
        Case(
            [*offline(ZONE_A, "a1", "a2"), node("a3", "a", labels={"region": "eu"})],
            [zoned()],
            unplaced=[
                (
                    "pending",
                    summarize(
                        5,
                        {
                            "node(s) offline": 2,
                            outside("zone", "a"): 2,
                            "node(s) missing volume driver(s) [zdir]": 1,
                        },
                    ),
                )
            ],
        ),
        id="zone-a-node-of-the-zone-without-the-driver-says-so",
    ),
    pytest.param(
        Case(
            [*offline(ZONE_A, "a1"), node("a3", "a", drivers={"local": "local", "zdir": "local"})],
            [zoned(affinity=(on_node("a2", equal=False),))],
            unplaced=[
                (
                    "pending",
                    summarize(
                        5,
                        {
                            "node(s) offline": 1,
                            outside("zone", "a"): 2,
                            NOT_HOLDING_VOLUME.format(volume_instance=ZONED): 1,
                            "node(s) didn't match affinity node!=a2": 1,
                        },
                    ),
                )
            ],
        ),
        id="zone-explained-node-by-node-counts-add-up",
    ),
    pytest.param(
        Case(offline(ZONE_A, "a1", "a2"), [zoned(VolumeTopology.REGION)], used=["b1"]),
        id="region-re-attaches-in-the-region",
    ),
    pytest.param(
        Case(
            offline(ZONE_A, "a1", "a2", "b1"),
            [zoned(VolumeTopology.REGION)],
            unplaced=[("pending", summarize(4, {"node(s) offline": 3, outside("region", "eu"): 1}))],
        ),
        id="region-never-leaves-its-region",
    ),
    pytest.param(
        Case(offline(ZONE_A, "a1", "a2", "b1"), [zoned(VolumeTopology.GRID)], used=["c1"]),
        id="grid-re-attaches-anywhere-shared",
    ),
    pytest.param(
        Case(
            offline(ZONE_A, "a1"),
            [zoned(zone=None)],
            unplaced=[
                ("pending", PIN_OFFLINE.replace("node-b", "a1").replace("redis.redis.redis-data-1", ZONED))
            ],
        ),
        id="zone-made-on-a-node-without-a-zone-stays-on-it",
    ),
    pytest.param(
        Case(offline(ZONE_A, "a1"), [zoned(zone="b")], used=["b1"]),
        id="zone-the-recorded-zone-counts-not-the-nodes-label-today",
    ),
]


def drained(nodes: list[NodeView], *names: str) -> list[NodeView]:
    return [replace(n, drained=True) if n.name in names else n for n in nodes]


HELD_A = NOT_HOLDING_VOLUME.format(volume_instance="redis.redis.redis-data-1")

# A drained node (``moorage node drain``) takes no instance, not even one already there.
DRAIN_CASES = [
    pytest.param(
        Case(drained(THREE_ZONES, "node-a"), reqs(4), used=["node-b", "node-b", "node-c", "node-c"]),
        id="drained-node-takes-no-new-instance",
    ),
    pytest.param(
        Case(drained(THREE_ZONES[:2], "node-a"), reqs(1, current="node-a"), used=["node-b"]),
        id="drained-node-does-not-keep-its-instance",
    ),
    pytest.param(
        Case(
            drained(THREE_ZONES, "node-a"),
            [InstanceRequest(SERVICE, 1, volumes=(vol(pinned="node-a"),), current_node="id-node-a")],
            unplaced=[("failed", summarize(3, {HELD_A: 2, NODE_DRAINED: 1}))],
        ),
        id="drained-node-topology-pin-has-nowhere-to-go",
    ),
    pytest.param(
        Case(drained(ZONE_A, "a1"), [zoned(current_node="id-a1")], used=["a2"]),
        id="drained-zone-pin-re-attaches-in-its-zone",
    ),
    pytest.param(
        Case(
            drained(ZONE_A, "a1", "a2"),
            [zoned(current_node="id-a1")],
            unplaced=[("failed", summarize(4, {NODE_DRAINED: 2, outside("zone", "a"): 2}))],
        ),
        id="drained-zone-never-leaves-its-zone",
    ),
    pytest.param(
        Case(
            offline(drained(THREE_ZONES, "node-a", "node-b"), "node-c"),
            reqs(1, current="node-a"),
            unplaced=[("pending", summarize(3, {NODE_DRAINED: 2, "node(s) offline": 1}))],
        ),
        id="drained-and-the-rest-offline-is-pending",
    ),
    pytest.param(
        Case(
            offline(drained(THREE_ZONES[:2], "node-a"), "node-a"),
            reqs(1),
            used=["node-b"],
        ),
        id="drained-and-offline-counts-as-offline",
    ),
]

CASES = [
    *DRAIN_CASES,
    pytest.param(Case(THREE_ZONES, reqs(3), used=["node-a", "node-b", "node-c"]), id="ha-one-per-zone"),
    pytest.param(
        Case(THREE_ZONES, reqs(3, affinity=(label("zone=b"),)), used=["node-b"] * 3),
        id="affinity-puts-all-on-zone-b",
    ),
    pytest.param(
        Case(
            THREE_ZONES,
            reqs(3, affinity=(label("zone=d"),)),
            unplaced=[("failed", "0/3 nodes available: 3 node(s) didn't match affinity label==zone=d")] * 3,
        ),
        id="affinity-impossible",
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b"), node("node-c", "c", online=False)],
            reqs(1, affinity=(label("zone=c"),)),
            unplaced=[
                (
                    "pending",
                    "0/3 nodes available: 2 node(s) didn't match affinity label==zone=c, 1 node(s) offline",
                )
            ],
        ),
        id="offline-counted-and-pending",
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b"), node("node-c", "c", online=False)],
            reqs(2),
            used=["node-a", "node-b"],
        ),
        id="ha-skips-offline",
    ),
    pytest.param(
        Case(THREE_ZONES, reqs(2, affinity=(label("zone=a", equal=False),)), used=["node-b", "node-c"]),
        id="affinity-not-equal",
    ),
    pytest.param(
        Case(THREE_ZONES, reqs(2, affinity=(on_node("node-c"),)), used=["node-c", "node-c"]),
        id="affinity-node-name",
    ),
    pytest.param(
        Case(
            [node("plain", "a"), node("fast", "a", labels={"ssd": ""})],
            reqs(2, affinity=(label("ssd"),)),
            used=["fast", "fast"],
        ),
        id="affinity-label-key-only",
    ),
    pytest.param(
        Case([node("n1", "a"), node("n2", "a")], reqs(2, ports=(port(8080),)), RANDOM, used=["n1", "n2"]),
        id="ports-two-instances-two-nodes-random",
    ),
    pytest.param(
        Case([node("n1"), node("n2")], reqs(2, ports=(port(8080),)), HA, used=["n1", "n2"]),
        id="ports-two-instances-two-nodes-ha",
    ),
    pytest.param(
        Case(
            [node("n1", "a"), node("n2", "b")],
            reqs(3, ports=(port(8080),)),
            used=["n1", "n2"],
            unplaced=[("failed", "0/2 nodes available: 2 node(s) had port 8080 in use")],
        ),
        id="ports-third-instance-fails",
    ),
    pytest.param(
        Case(
            [node("n1", "a", used_ports=[8080]), node("n2", "b")], reqs(1, ports=(port(8080),)), used=["n2"]
        ),
        id="ports-used-on-node",
    ),
    pytest.param(
        Case(
            [node("n1", memory=GB), node("n2", memory=GB // 2)],
            reqs(2, memory=600 << 20),
            used=["n1"],
            unplaced=[("failed", "0/2 nodes available: 2 node(s) had too little memory")],
        ),
        id="memory-reserved-within-pass",
    ),
    pytest.param(
        Case(
            [node("n1", cpus=1)],
            reqs(4, cpus=0.3),
            used=["n1"] * 3,
            unplaced=[("failed", "0/1 nodes available: 1 node(s) had too little CPU")],
        ),
        id="cpus-reserved-within-pass",
    ),
    pytest.param(
        Case(THREE_ZONES, reqs(3), DAEMON, used=["node-a", "node-b", "node-c"]), id="daemon-one-per-node"
    ),
    pytest.param(
        Case(
            [node("n1"), node("n2")],
            reqs(3),
            DAEMON,
            used=["n1", "n2"],
            unplaced=[
                ("failed", "0/2 nodes available: 2 node(s) already run an instance of this daemon service")
            ],
        ),
        id="daemon-more-instances-than-nodes",
    ),
    pytest.param(
        Case(
            [node("n1"), node("n2", drivers={"local": "local", "rexray": "local"}), node("n3")],
            reqs(2, volumes=(vol(driver="rexray"),)),
            used=["n2", "n2"],
        ),
        id="volume-driver-only-on-one-node",
    ),
    pytest.param(
        Case(
            [node("n1"), node("n2", drivers={"local": "local", "rexray": "local"}), node("n3")],
            reqs(1, volumes=(vol(driver="rexray"), vol("shared", scope=VolumeScope.GRID, driver="nfs"))),
            unplaced=[
                (
                    "failed",
                    "Did not find any nodes with required volume drivers: [nfs, rexray]; 0/3 nodes available: "
                    "2 node(s) missing volume driver(s) [nfs, rexray], 1 node(s) missing volume driver(s) [nfs]",
                )
            ],
        ),
        id="volume-drivers-nowhere",
    ),
    pytest.param(
        Case(
            [node("n1", online=False, drivers={"rexray": "local"}), node("n2")],
            reqs(1, volumes=(vol(driver="rexray"),)),
            unplaced=[
                (
                    "pending",
                    "0/2 nodes available: 1 node(s) missing volume driver(s) [rexray], 1 node(s) offline",
                )
            ],
        ),
        id="volume-driver-on-offline-node-only",
    ),
    pytest.param(
        Case(THREE_ZONES, pinned_instances(), used=["node-a", "node-a"]), id="pinned-volume-beats-spread"
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b", online=False), node("node-c", "c")],
            [InstanceRequest(SERVICE, 1, volumes=(vol(pinned="node-b"),))],
            unplaced=[("pending", PIN_OFFLINE)],
        ),
        id="pinned-node-offline-pending",
    ),
    *(
        pytest.param(
            Case(
                [node("node-a", "a"), node("node-b", "b", online=False, lost=lost), node("node-c", "c")],
                [InstanceRequest(SERVICE, 1, volumes=(vol(pinned="node-b", on_node_lost=policy),))],
                unplaced=[("pending", reason)],
            ),
            id=f"pinned-node-{'lost' if lost else 'offline'}-{policy}-pending",
        )
        for lost, policy, reason in [
            (False, "restore", PIN_OFFLINE_RESTORE),
            (False, "recreate", PIN_OFFLINE_RECREATE),
            (True, "wait", PIN_LOST_WAIT),
            (True, "restore", PIN_LOST_NOT_RESTORED),
            (True, "recreate", PIN_LOST_RECREATE),
        ]
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-c", "c")],
            [InstanceRequest(SERVICE, 1, volumes=(vol(pinned="node-b"),))],
            unplaced=[("pending", PIN_REMOVED)],
        ),
        id="pinned-node-removed-pending",
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b", used_ports=[6379]), node("node-c", "c")],
            [
                InstanceRequest(
                    SERVICE,
                    1,
                    ports=(port(6379),),
                    volumes=(vol("cache", scope=VolumeScope.STACK), vol(pinned="node-b")),
                )
            ],
            unplaced=[
                (
                    "failed",
                    "0/3 nodes available: 2 node(s) don't hold volume instance redis.redis.redis-data-1, "
                    "1 node(s) had port 6379 in use",
                )
            ],
        ),
        id="pinned-node-busy-fails",
    ),
    pytest.param(
        Case(
            [
                node("node-a", "a", drivers={"nfs": "global"}),
                node("node-b", "b", online=False, drivers={"nfs": "global"}),
                node("node-c", "c", drivers={"nfs": "local"}),
            ],
            [
                InstanceRequest(
                    SERVICE, 1, volumes=(vol(driver="nfs", pinned="node-b", topology=VolumeTopology.GRID),)
                )
            ],
            used=["node-a"],
        ),
        id="grid-topology-on-a-global-driver-lifts-pin",
    ),
    pytest.param(
        Case(
            [
                node("node-a", "a", drivers={"nfs": "global"}),
                node("node-b", "b", online=False, drivers={"nfs": "global"}),
            ],
            [InstanceRequest(SERVICE, 1, volumes=(vol(driver="nfs", pinned="node-b"),))],
            unplaced=[("pending", PIN_OFFLINE)],
        ),
        id="node-topology-keeps-the-pin-on-a-global-driver",
    ),
    *ZONE_CASES,
    pytest.param(
        Case(
            THREE_ZONES,
            [
                InstanceRequest(
                    SERVICE,
                    1,
                    volumes=(
                        vol("cache", scope=VolumeScope.STACK),
                        vol(pinned="node-c"),
                        vol("logs", scope=VolumeScope.GRID),
                    ),
                )
            ],
            used=["node-c"],
        ),
        id="stack-scope-does-not-cancel-pin",
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b"), node("node-c", "c", online=False)],
            [
                InstanceRequest(
                    SERVICE, 1, volumes=(vol("cache", scope=VolumeScope.STACK), vol(pinned="node-c"))
                )
            ],
            unplaced=[
                (
                    "pending",
                    PIN_OFFLINE.replace("node-b", "node-c"),
                )
            ],
        ),
        id="stack-scope-does-not-cancel-pin-offline",
    ),
    pytest.param(
        Case(THREE_ZONES, reqs(3, current="node-a"), used=["node-a"] * 3), id="sticky-current-node-kept"
    ),
    pytest.param(
        Case(
            THREE_ZONES,
            [
                InstanceRequest(
                    SERVICE,
                    1,
                    volumes=(vol("cache", scope=VolumeScope.STACK), vol(pinned="node-c")),
                    current_node="id-node-a",
                )
            ],
            used=["node-c"],
        ),
        id="sticky-yields-to-pin",
    ),
    pytest.param(
        Case(
            [node("node-a", "a", online=False), node("node-b", "b"), node("node-c", "c")],
            reqs(2, current="node-a"),
            used=["node-b", "node-c"],
        ),
        id="sticky-node-offline-moves",
    ),
    pytest.param(
        Case(
            [node("node-a", "a"), node("node-b", "b")],
            [InstanceRequest(SERVICE, 1), InstanceRequest(SERVICE, 2, current_node="id-node-a")],
            used=["node-a", "node-b"],
        ),
        id="ha-counts-running-instances",
    ),
    pytest.param(
        Case([], reqs(1), unplaced=[("pending", "0/0 nodes available: the grid has no nodes")]), id="no-nodes"
    ),
]


@pytest.mark.parametrize("case", CASES)
def test_schedule(case: Case) -> None:
    placements = schedule_service(case.nodes, case.requests, case.strategy, seed="s")
    names = {n.id: n.name for n in case.nodes}
    assert [p.instance for p in placements] == [r.instance for r in case.requests]
    used = sorted(names[p.node_id] for p in placements if p.node_id is not None)
    unplaced = sorted((p.status, *p.reasons) for p in placements if p.node_id is None)
    assert used == sorted(case.used)
    assert unplaced == sorted(case.unplaced)
    for p in placements:
        assert (p.status == "placed") == (p.node_id is not None)
        assert (p.reasons == ()) == (p.status == "placed")


def zones_of(placements: Sequence[Placement], nodes: Sequence[NodeView]) -> list[str]:
    by_id = {n.id: n for n in nodes}
    return sorted((by_id[p.node_id].zone or "") for p in placements if p.node_id is not None)


def test_ha_spreads_zones_before_nodes() -> None:
    nodes = [node("a1", "a"), node("a2", "a"), node("a3", "a"), node("b1", "b")]
    placements = schedule_service(nodes, reqs(4), HA, seed="s")
    assert zones_of(placements, nodes) == ["a", "a", "b", "b"]
    assert len({p.node_id for p in placements if p.node_id != "id-b1"}) == 2  # two distinct a nodes


def test_same_input_same_output_whatever_the_node_order() -> None:
    nodes = [node(f"n{i}", "abc"[i % 3]) for i in range(12)]
    first = schedule_service(nodes, reqs(7), HA, seed="s")
    assert schedule_service(nodes, reqs(7), HA, seed="s") == first
    assert schedule_service(list(reversed(nodes)), reqs(7), HA, seed="s") == first
    assert schedule_service(NodeIndex(nodes), reqs(7), HA, seed="s") == first


@pytest.mark.parametrize("strategy", [HA, RANDOM, DAEMON])
def test_different_seeds_place_differently(strategy: DeployStrategy) -> None:
    nodes = [node(f"n{i}", "abc"[i % 3]) for i in range(12)]
    outcomes = {
        tuple(p.node_id for p in schedule_service(nodes, reqs(3), strategy, seed=f"seed-{i}"))
        for i in range(20)
    }
    assert len(outcomes) > 5


def test_seed_mixes_in_the_service_id() -> None:
    nodes = [node(f"n{i}", "abc"[i % 3]) for i in range(12)]
    outcomes = {
        tuple(
            p.node_id
            for p in schedule_service(
                nodes, [replace(r, service_id=f"g/s/{i}") for r in reqs(3)], HA, seed="s"
            )
        )
        for i in range(20)
    }
    assert len(outcomes) > 5


def test_daemon_plan_counts_feasible_nodes() -> None:
    nodes = [
        node("n1", "a"),
        node("n2", "b", online=False),
        node("n3", "c", used_ports=[80]),
        node("n4", "a", drivers={}),
        node("n5", "b"),
    ]
    template = InstanceRequest(SERVICE, 1, ports=(port(80),), volumes=(vol(pinned="n2"),))
    assert daemon_plan(nodes, template) == [1, 2]  # n1 and n5: n2 offline, n3 port, n4 driver


def test_daemon_plan_leaves_out_drained_nodes() -> None:
    nodes = drained([node("n1"), node("n2"), node("n3")], "n2")
    # 2 ran on n2, which is drained: no number for it; 1 and 3 keep theirs.
    assert daemon_plan(nodes, InstanceRequest(SERVICE, 1), {1: "id-n1", 2: "id-n2", 3: "id-n3"}) == [1, 3]


def test_an_offline_drained_node_is_reported_offline() -> None:
    nodes = offline(drained([node("n1")], "n1"), "n1")
    (placement,) = schedule_service(nodes, reqs(1), HA, seed="s")
    assert (placement.status, placement.reasons) == ("pending", (summarize(1, {"node(s) offline": 1}),))


def test_daemon_plan_keeps_anchored_numbers() -> None:
    nodes = [node("n1"), node("n2", online=False), node("n3"), node("n4")]
    # 1 runs on n1, 2 on n2 (offline: not run now, its number kept for it), 3 on n3; n4 is new.
    anchors = {1: "id-n1", 2: "id-n2", 3: "id-n3"}
    assert daemon_plan(nodes, InstanceRequest(SERVICE, 1), anchors) == [1, 3, 4]


def test_daemon_instances_go_back_to_their_volume() -> None:
    nodes = [node("n1"), node("n2"), node("n3")]
    requests = [
        InstanceRequest(SERVICE, 1),
        InstanceRequest(SERVICE, 2),
        InstanceRequest(SERVICE, 3, volumes=(vol(instance=3, pinned="n1"),)),
    ]
    for seed in ("a", "b", "c", "d"):
        placements = schedule_service(nodes, requests, DAEMON, seed=seed)
        assert placements[2].node_id == "id-n1"
        assert sorted(p.node_id or "" for p in placements) == ["id-n1", "id-n2", "id-n3"]


def test_committed_services_hold_their_ports() -> None:
    nodes = [node("n1"), node("n2")]
    index = NodeIndex(nodes)
    web = reqs(2, ports=(port(80),))
    index.commit(web, schedule_service(index, web, HA, seed="s"))
    other = [replace(r, service_id="grid/other/web") for r in reqs(1, ports=(port(80),))]
    assert schedule_service(index, other, HA, seed="s")[0].reasons == (
        "0/2 nodes available: 2 node(s) had port 80 in use",
    )
    # The service itself is re-placed freely: what it committed is its own.
    again = schedule_service(index, web, HA, seed="s")
    assert all(p.status == "placed" for p in again)
    index.commit(web, [])
    assert schedule_service(index, other, HA, seed="s")[0].status == "placed"


def test_summary_orders_by_count_then_text() -> None:
    line = summarize(6, {"node(s) b": 2, "node(s) a": 2, "node(s) c": 1, "node(s) z": 1})
    assert line == "0/6 nodes available: 2 node(s) a, 2 node(s) b, 1 node(s) c, 1 node(s) z"


def test_one_service_per_pass() -> None:
    with pytest.raises(ValueError, match="one service at a time"):
        schedule_service(THREE_ZONES, [InstanceRequest("a", 1), InstanceRequest("b", 2)], HA, seed="s")
    with pytest.raises(ValueError, match="unique"):
        schedule_service(THREE_ZONES, [InstanceRequest("a", 1), InstanceRequest("a", 1)], HA, seed="s")
    assert schedule_service(THREE_ZONES, [], HA, seed="s") == []


def test_node_ids_must_be_unique() -> None:
    with pytest.raises(ValueError, match=r"node ids must be unique, got \['id-n1'\]"):
        schedule_service([node("n1"), node("n1")], reqs(1), HA, seed="s")


def test_affinity_on_an_unknown_subject_matches_no_node() -> None:
    rule = AffinityRule(subject="service", equal=False, value="db")
    [placement] = schedule_service([node("n1")], reqs(1, affinity=(rule,)), HA, seed="s")
    assert placement.reasons == ("0/1 nodes available: 1 node(s) didn't match affinity service!=db",)
    assert placement.status == "failed"


def test_commit_takes_one_service() -> None:
    index = NodeIndex([node("n1")])
    with pytest.raises(ValueError, match="one service at a time"):
        index.commit([InstanceRequest("a", 1), InstanceRequest("b", 1)], [])


def test_nodes_still_removing_a_same_named_volume_are_avoided() -> None:
    nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c")]
    old = frozenset({"id-n1", "id-n2"})
    requests = [
        InstanceRequest(SERVICE, 1, volumes=(replace(vol(instance=1), removing_on=old),)),
        InstanceRequest(SERVICE, 2, volumes=(vol(instance=2),)),
        InstanceRequest(SERVICE, 3, volumes=(vol(instance=3),)),
    ]
    for seed in ("a", "b", "c", "d", "e"):
        placements = schedule_service(nodes, requests, HA, seed=seed)
        assert placements[0].node_id == "id-n3", "never where the old Docker volume is being removed"
        assert {p.node_id for p in placements} == {"id-n1", "id-n2", "id-n3"}, "the others spread as ever"


def test_an_instance_waits_while_every_node_it_may_use_is_removing_its_volume() -> None:
    nodes = [node("n1"), node("n2", online=False)]
    need = replace(vol(scope=VolumeScope.GRID), removing_on=frozenset({"id-n1"}))
    (placement,) = schedule_service(nodes, [InstanceRequest(SERVICE, 1, volumes=(need,))], HA, seed="s")
    assert placement.status == "pending"
    assert placement.reasons == (
        summarize(
            2,
            {
                "node(s) offline": 1,
                "node(s) still removing the Docker volume redis-data of a removed volume": 1,
            },
        ),
    )


def test_data_moving_with_its_instance_never_goes_where_a_copy_of_that_name_is() -> None:
    """A drain's data move (``taken_on``): never to a node holding a retired copy of the name;
    with no other node, failed (the user purges the copy), not pending."""
    nodes = [node("n1", "a"), node("n2", "b"), node("n3", "c")]
    need = replace(vol(instance=1), taken_on=frozenset({"id-n1", "id-n2"}))
    for seed in ("a", "b", "c", "d"):
        (placed,) = schedule_service(nodes, [InstanceRequest(SERVICE, 1, volumes=(need,))], HA, seed=seed)
        assert placed.node_id == "id-n3"
    (nowhere,) = schedule_service(nodes[:2], [InstanceRequest(SERVICE, 1, volumes=(need,))], HA, seed="s")
    assert nowhere.status == "failed"
    assert nowhere.reasons == (
        summarize(
            2,
            {
                "node(s) already hold a Docker volume redis.redis.redis-data-1 (a retired copy: 'moorage volume purge' removes it)": 2
            },
        ),
    )


@pytest.mark.parametrize("strategy", [HA, DAEMON, RANDOM])
def test_a_scheduling_pass_is_freed_without_the_cyclic_collector(strategy: DeployStrategy) -> None:
    """A pass leaves no reference cycle behind: at thousands of services per deployment, cyclic
    garbage made the collector walk the master's whole heap over and over (15-20% of its CPU)."""
    import gc

    index = NodeIndex([node(f"n{i}", zone=f"z{i % 3}", used_ports=[80] if i == 0 else ()) for i in range(9)])
    volume = VolumeNeed(volume="data", driver="local", scope=VolumeScope.INSTANCE, docker_name="d-1")
    requests = [
        InstanceRequest(
            SERVICE,
            n,
            ports=(PortMapping(80, 80),),
            volumes=(replace(volume, docker_name=f"d-{n}"),),
            current_node="id-n1" if n == 1 else None,
        )
        for n in range(1, 13)  # more than nodes with the port free: some are not placed
    ]
    gc.collect()
    gc.disable()
    try:
        placements = schedule_service(index, requests, strategy, seed=SERVICE)
        assert any(p.node_id is None for p in placements) and any(p.node_id for p in placements)
        del placements
        assert gc.collect() == 0, "a scheduling pass left cyclic garbage"
    finally:
        gc.enable()

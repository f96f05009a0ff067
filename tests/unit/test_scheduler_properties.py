"""Properties of the scheduler on random grids, checked against a naive oracle written here.

The oracle replays a pass the slow, obvious way: sticky instances first, then instances pinned to
a volume instance, then the rest, each seeing what the ones before took. For every instance it
computes the feasible nodes by scanning them all (a pinned one may use the node holding its
volume instance, or a node inside the volume's topology where the driver is global), and checks that

- a placed instance is on a feasible node (every filter passes), and an unplaced one had none;
- a pinned instance goes back to the node holding its volume instance when that node fits it;
- ``ha`` chose a zone with the fewest instances among zones with a feasible node, and in it a
  node with the fewest instances: never two in one zone while another feasible zone has fewer;
- ``daemon`` never puts two instances on one node; a sticky instance stays where it runs.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from moorage.model.stack import AffinityRule, DeployStrategy, PortMapping
from moorage.model.volume import VolumeScope, VolumeTopology
from moorage.scheduler import InstanceRequest, NodeIndex, NodeView, Placement, VolumeNeed, schedule_service

SERVICE = "grid/app/web"
ZONES = ["a", "b", "c", None]
REGIONS = ["eu", "us", None]
DRIVERS = ["local", "nfs", "rexray"]


@st.composite
def nodes(draw: st.DrawFn) -> list[NodeView]:
    count = draw(st.integers(min_value=0, max_value=10))
    result = []
    for i in range(count):
        zone = draw(st.sampled_from(ZONES))
        labels = {"zone": zone} if zone is not None else {}
        region = draw(st.sampled_from(REGIONS))
        if region is not None:
            labels["region"] = region
        if draw(st.booleans()):
            labels["ssd"] = "yes"
        drivers = {
            d: draw(st.sampled_from(["local", "global", None]))
            for d in DRIVERS
            if d == "local" or draw(st.booleans())
        }
        result.append(
            NodeView(
                id=f"id-{i}",
                name=f"node-{i}",
                online=draw(st.integers(0, 5)) > 0,
                labels=labels,
                drivers=drivers,
                memory=draw(st.sampled_from([1, 2, 4])) * 1000,
                cpus=draw(st.sampled_from([1, 2])),
                used_ports=frozenset(draw(st.sets(st.sampled_from([80, 443])))),
                reserved_memory=draw(st.sampled_from([0, 500])),
                reserved_cpus=draw(st.sampled_from([0, 0.5])),
            )
        )
    return result


AFFINITIES = [
    (),
    (AffinityRule("label", True, "zone=a"),),
    (AffinityRule("label", False, "zone=a"),),
    (AffinityRule("label", True, "ssd"),),
    (AffinityRule("node", False, "node-0"),),
    (AffinityRule("node", True, "node-1"),),
]


@st.composite
def requests(draw: st.DrawFn, node_ids: list[str], pins: bool, sticky: bool) -> list[InstanceRequest]:
    count = draw(st.integers(min_value=1, max_value=12))
    affinity = draw(st.sampled_from(AFFINITIES))
    ports = tuple(PortMapping(p, p) for p in draw(st.sets(st.sampled_from([80, 8080]), max_size=1)))
    memory = draw(st.sampled_from([None, 300, 1200]))
    cpus = draw(st.sampled_from([None, 0.5, 1.0]))
    shared = draw(
        st.sampled_from([(), (("cache", "local", VolumeScope.STACK),), (("logs", "nfs", VolumeScope.GRID),)])
    )
    data_driver = draw(st.sampled_from([None, "local", "nfs", "rexray"]))
    ids = [*node_ids, "id-removed"]
    varied = draw(st.booleans())  # instances of different shapes in one pass
    result = []
    for n in range(1, count + 1):
        if varied:
            memory = draw(st.sampled_from([None, 300, 1200]))
            ports = tuple(PortMapping(p, p) for p in draw(st.sets(st.sampled_from([80, 8080]), max_size=1)))
        volumes = [VolumeNeed(v, d, s, f"app.{v}" if s is VolumeScope.STACK else v) for v, d, s in shared]
        if data_driver is not None:
            pinned = draw(st.none() | st.sampled_from(ids)) if pins else None
            volumes.append(
                VolumeNeed(
                    "data",
                    data_driver,
                    VolumeScope.INSTANCE,
                    f"app.web.data-{n}",
                    pinned,
                    topology=draw(st.sampled_from(list(VolumeTopology))),
                    home_zone=draw(st.sampled_from(ZONES)),
                    home_region=draw(st.sampled_from(REGIONS)),
                )
            )
        current = draw(st.none() | st.sampled_from(ids)) if sticky else None
        result.append(InstanceRequest(SERVICE, n, affinity, ports, memory, cpus, tuple(volumes), current))
    return result


# --- the oracle -----------------------------------------------------------------------------------


def affinity_ok(rule: AffinityRule, node: NodeView) -> bool:
    if rule.subject == "node":
        hit = node.name == rule.value
    else:
        key, _, value = rule.value.partition("=")
        hit = (key in node.labels) if "=" not in rule.value else node.labels.get(key) == value
    return hit == rule.equal


@dataclass
class Usage:
    ports: set[int] = field(default_factory=set)
    memory: float = 0
    cpus: float = 0
    count: int = 0


def re_attaches(v: VolumeNeed, node: NodeView) -> bool:
    """Another node can use the volume instance: shared storage there, inside the topology."""
    if node.drivers.get(v.driver) != "global":
        return False
    if v.topology is VolumeTopology.GRID:
        return True
    if v.topology is VolumeTopology.ZONE:
        return v.home_zone is not None and node.labels.get("zone") == v.home_zone
    if v.topology is VolumeTopology.REGION:
        return v.home_region is not None and node.labels.get("region") == v.home_region
    return False


def feasible(node: NodeView, r: InstanceRequest, used: Usage, daemon: bool) -> bool:
    if not node.online or not all(affinity_ok(rule, node) for rule in r.affinity):
        return False
    if any(v.driver not in node.drivers for v in r.volumes):
        return False
    for v in r.volumes:  # every mount: a stack- or grid-scope one must not hide a pin
        pinned = v.scope is VolumeScope.INSTANCE and v.pinned_node is not None
        if pinned and node.id != v.pinned_node and not re_attaches(v, node):
            return False
    if any(p.host_port in node.used_ports or p.host_port in used.ports for p in r.ports):
        return False
    if r.memory is not None and node.reserved_memory + used.memory + r.memory > node.memory:
        return False
    if r.cpus is not None and node.reserved_cpus + used.cpus + r.cpus > node.cpus + 1e-9:
        return False
    return not (daemon and used.count)


def replay(
    grid: list[NodeView], reqs: list[InstanceRequest], placements: list[Placement], strategy: DeployStrategy
) -> None:
    by_id = {n.id: n for n in grid}
    usage = {n.id: Usage() for n in grid}
    zone_count: Counter[str | None] = Counter()
    daemon = strategy is DeployStrategy.DAEMON
    got = {p.instance: p for p in placements}
    assert [p.instance for p in placements] == [r.instance for r in reqs]

    def take(r: InstanceRequest, node: NodeView) -> None:
        u = usage[node.id]
        u.ports.update(p.host_port for p in r.ports)
        u.memory += r.memory or 0
        u.cpus += r.cpus or 0
        u.count += 1
        zone_count[node.zone] += 1

    sticky, rest = [], []
    for r in reqs:
        current = by_id.get(r.current_node or "")
        if current is not None and feasible(current, r, usage[current.id], daemon):
            assert got[r.instance].node_id == current.id, "an instance whose node can take it stays there"
            take(r, current)
            sticky.append(r)
        else:
            rest.append(r)
    rest.sort(key=lambda r: not any(v.scope is VolumeScope.INSTANCE and v.pinned_node for v in r.volumes))
    for r in rest:
        p = got[r.instance]
        options = [n for n in grid if feasible(n, r, usage[n.id], daemon)]
        if p.node_id is None:
            assert not options, f"instance {r.instance} unplaced but {[n.id for n in options]} fit"
            assert p.status in ("pending", "failed") and len(p.reasons) == 1
            continue
        node = by_id[p.node_id]
        assert node in options, f"instance {r.instance} on {node.id}, which does not fit it"
        homes = [
            by_id[v.pinned_node]
            for v in r.volumes
            if v.scope is VolumeScope.INSTANCE and v.pinned_node in by_id
        ]
        home = next((h for h in homes if h in options), None)
        if home is not None:
            assert node == home, f"instance {r.instance} on {node.id}, not back on {home.id}"
        elif strategy is DeployStrategy.HA:
            fewest_in_zone = min(zone_count[n.zone] for n in options)
            assert zone_count[node.zone] == fewest_in_zone, "a feasible zone has fewer instances"
            same_zone = [n for n in options if n.zone == node.zone]
            assert usage[node.id].count == min(usage[n.id].count for n in same_zone)
        take(r, node)


@settings(max_examples=400, deadline=None)
@given(data=st.data(), strategy=st.sampled_from(list(DeployStrategy)))
def test_placements_match_the_oracle(data: st.DataObject, strategy: DeployStrategy) -> None:
    grid = data.draw(nodes())
    pins, sticky = data.draw(st.booleans()), data.draw(st.booleans())
    reqs = data.draw(requests([n.id for n in grid], pins=pins, sticky=sticky))
    seed = data.draw(st.sampled_from(["s", "t"]))
    placements = schedule_service(grid, reqs, strategy, seed)
    replay(grid, reqs, placements, strategy)
    assert schedule_service(list(reversed(grid)), reqs, strategy, seed) == placements


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_ha_never_doubles_a_zone_while_another_has_fewer(data: st.DataObject) -> None:
    grid = data.draw(nodes())
    reqs = data.draw(requests([n.id for n in grid], pins=False, sticky=False))
    placements = schedule_service(grid, reqs, DeployStrategy.HA, "s")
    replay(grid, reqs, placements, DeployStrategy.HA)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_reused_index_answers_like_fresh_nodes(data: st.DataObject) -> None:
    grid = data.draw(nodes())
    index = NodeIndex(grid)
    for service in ("g/a/x", "g/b/y", "g/a/x"):
        reqs = [
            InstanceRequest(
                service, r.instance, r.affinity, r.ports, r.memory, r.cpus, r.volumes, r.current_node
            )
            for r in data.draw(requests([n.id for n in grid], pins=True, sticky=True))
        ]
        assert schedule_service(index, reqs, DeployStrategy.HA, "s") == schedule_service(
            grid, reqs, DeployStrategy.HA, "s"
        )

"""The volume rules of ``model/volume.py``: what a valid definition is, which nodes are inside a
volume instance's domain (its topology), when a volume instance follows its instance to another
node, and which topologies a driver can honour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from moorage.model.volume import (
    DriverCapability,
    Reach,
    VolumeDomain,
    VolumeScope,
    VolumeTopology,
    default_topology,
    follows_instance,
    nodes_in_domain,
    topology_error,
    volume_definition_errors,
)

NODE, ZONE, REGION, GRID = VolumeTopology


@dataclass(frozen=True)
class Node:
    id: str
    labels: dict[str, str] = field(default_factory=dict)
    drivers: dict[str, str | None] = field(default_factory=dict)


SHARED = {"zdir": "global"}
# made on n1 (zone a, region eu); n2 shares its zone, n3 only its region, n4 nothing; n5 is in
# zone a with the driver local, n6 in zone a without it
N1 = Node("n1", {"zone": "a", "region": "eu"}, SHARED)
N2 = Node("n2", {"zone": "a", "region": "eu"}, SHARED)
N3 = Node("n3", {"zone": "b", "region": "eu"}, SHARED)
N4 = Node("n4", {"zone": "c", "region": "us"}, SHARED)
N5 = Node("n5", {"zone": "a", "region": "eu"}, {"zdir": "local"})
N6 = Node("n6", {"zone": "a", "region": "eu"}, {})
GRID_NODES = [N1, N2, N3, N4, N5, N6]


def made_on_n1(topology: VolumeTopology, zone: str | None = "a", region: str | None = "eu") -> VolumeDomain:
    return VolumeDomain(topology, "zdir", "n1", zone, region)


@pytest.mark.parametrize(
    ("domain", "reaches"),
    [
        pytest.param(made_on_n1(NODE), ["n1"], id="node-only-its-node"),
        pytest.param(made_on_n1(ZONE), ["n1", "n2"], id="zone-its-zone-where-shared"),
        pytest.param(made_on_n1(REGION), ["n1", "n2", "n3"], id="region-its-region-where-shared"),
        pytest.param(made_on_n1(GRID), ["n1", "n2", "n3", "n4"], id="grid-anywhere-shared"),
        pytest.param(made_on_n1(ZONE, zone=None), ["n1"], id="zone-but-made-without-a-zone-label"),
        pytest.param(made_on_n1(REGION, region=None), ["n1"], id="region-but-made-without-a-region-label"),
        pytest.param(made_on_n1(ZONE, zone="b"), ["n1", "n3"], id="the-recorded-zone-not-todays-label"),
    ],
)
def test_the_nodes_inside_a_volume_instances_domain(domain: VolumeDomain, reaches: list[str]) -> None:
    assert [n.id for n in nodes_in_domain(domain, GRID_NODES)] == reaches


@pytest.mark.parametrize(
    ("domain", "node", "reach"),
    [
        pytest.param(made_on_n1(NODE), N1, Reach.HOME, id="home"),
        pytest.param(made_on_n1(NODE), N2, Reach.UNSHARED, id="node-topology-elsewhere"),
        pytest.param(made_on_n1(ZONE), N2, Reach.SHARED, id="zone-same-zone"),
        pytest.param(made_on_n1(ZONE), N3, Reach.OUTSIDE, id="zone-other-zone"),
        pytest.param(made_on_n1(ZONE), N5, Reach.UNSHARED, id="zone-driver-local-there"),
        pytest.param(made_on_n1(ZONE), N6, Reach.UNSHARED, id="zone-no-driver-there"),
        pytest.param(made_on_n1(REGION), N4, Reach.OUTSIDE, id="region-other-region"),
        pytest.param(made_on_n1(GRID), N5, Reach.UNSHARED, id="grid-driver-local-there"),
    ],
)
def test_what_a_node_is_to_a_volume_instance(domain: VolumeDomain, node: Node, reach: Reach) -> None:
    assert domain.reach(node.id, node.labels, node.drivers) is reach


@pytest.mark.parametrize(
    ("scope", "topology", "driver_scope", "follows"),
    [
        pytest.param(
            VolumeScope.INSTANCE, GRID, "global", True, id="instance-grid-on-shared-storage-follows"
        ),
        pytest.param(VolumeScope.INSTANCE, GRID, "local", False, id="instance-on-local-driver-pins"),
        pytest.param(VolumeScope.INSTANCE, GRID, None, False, id="instance-driver-scope-unknown-pins"),
        pytest.param(VolumeScope.INSTANCE, NODE, "global", False, id="instance-node-topology-pins"),
        pytest.param(VolumeScope.STACK, GRID, "global", False, id="stack-scope-never-moves"),
        pytest.param(VolumeScope.GRID, GRID, "global", False, id="grid-scope-never-moves"),
    ],
)
def test_a_volume_instance_follows_only_inside_its_domain_on_shared_storage(
    scope: VolumeScope, topology: VolumeTopology, driver_scope: str | None, follows: bool
) -> None:
    domain = VolumeDomain(topology, "d", "n1", "a")
    assert follows_instance(scope, domain, "n2", {"zone": "a"}, {"d": driver_scope}) is follows


LOCAL_ONLY = DriverCapability.of("rexray", [("node-2", "local"), ("node-1", "local")])
MIXED = DriverCapability.of("nfs", [("node-1", "local"), ("node-2", "global")])
UNSAID = DriverCapability.of("ebs", [("node-1", None)])
UNKNOWN = DriverCapability("zdir")  # no node has it yet


@pytest.mark.parametrize(
    ("capability", "default"),
    [
        pytest.param(DriverCapability("local"), NODE, id="built-in-local"),
        pytest.param(LOCAL_ONLY, NODE, id="reported-local"),
        pytest.param(MIXED, GRID, id="global-somewhere"),
        pytest.param(UNSAID, NODE, id="no-stated-scope"),
        pytest.param(UNKNOWN, NODE, id="no-node-has-it-yet"),
    ],
)
def test_the_default_topology_comes_from_what_nodes_report(
    capability: DriverCapability, default: VolumeTopology
) -> None:
    assert default_topology(capability) is default


WHY = (
    "Topology '{t}' needs a driver whose volumes other nodes can use (capability scope global), "
    "but {what}: only the node that made a volume instance sees its data; use topology node, or a "
    "driver that is global"
)


@pytest.mark.parametrize(
    ("topology", "capability", "error"),
    [
        pytest.param("node", DriverCapability("local"), None, id="node-always"),
        pytest.param(
            "grid",
            DriverCapability("local"),
            WHY.format(t="grid", what="'local' is Docker's built-in driver"),
            id="grid-on-built-in-local",
        ),
        pytest.param(
            "zone",
            LOCAL_ONLY,
            WHY.format(t="zone", what="driver 'rexray' is local on node-1, node-2"),
            id="zone-on-a-driver-reported-local",
        ),
        pytest.param(
            "region",
            UNSAID,
            WHY.format(
                t="region", what="driver 'ebs' is of no stated scope (Docker takes it as local) on node-1"
            ),
            id="region-on-a-driver-of-no-stated-scope",
        ),
        pytest.param(
            "zone",
            DriverCapability.of("d", [(f"node-{i}", "local") for i in range(1, 6)]),
            WHY.format(t="zone", what="driver 'd' is local on node-1, node-2, node-3 and 2 more"),
            id="many-nodes-named-briefly",
        ),
        pytest.param("grid", MIXED, None, id="global-on-some-node"),
        pytest.param("zone", UNKNOWN, None, id="accepted-while-no-node-has-the-driver"),
        pytest.param(
            "rack", UNKNOWN, "Unknown topology 'rack', must be one of node, zone, region, grid", id="unknown"
        ),
    ],
)
def test_a_topology_wider_than_the_driver_can_honour_is_refused(
    topology: str, capability: DriverCapability, error: str | None
) -> None:
    assert topology_error(topology, capability) == error


GOOD: dict[str, Any] = {
    "name": "data",
    "scope": "instance",
    "driver": "local",
    "driver_opts": {},
    "labels": {},
}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        pytest.param({}, {}, id="valid"),
        pytest.param({"driver": "rexray/ebs"}, {}, id="driver-with-a-slash"),
        pytest.param(
            {"name": "x"},
            {
                "name": "Volume name 'x' is not valid: use at least two characters, letters, digits, "
                "'_' or '-', starting with a letter or digit"
            },
            id="name-too-short",
        ),
        pytest.param(
            {"scope": "node"},
            {"scope": "Unknown scope 'node', must be one of grid, stack, instance"},
            id="scope",
        ),
        pytest.param(
            {"driver": ""},
            {"driver": "Driver is required: name the volume driver, e.g. local"},
            id="no-driver",
        ),
        pytest.param(
            {"driver": "dirvol:1.0"},
            {"driver": "Driver 'dirvol:1.0' must not have a tag: use the driver's name without ':1.0'"},
            id="driver-tag",
        ),
        pytest.param(
            {"driver": "-bad"}, {"driver": "Driver '-bad' is not a valid driver name"}, id="driver-name"
        ),
        pytest.param({"driver": "d" * 255}, {}, id="driver-of-255"),
        pytest.param(
            {"driver": "d" * 256},
            {"driver": f"Driver '{'d' * 80}…' is 256 characters long; use at most 255"},
            id="driver-too-long",
        ),
        pytest.param(
            {"driver_opts": {"": "x"}},
            {"driver_opts": "Driver option keys must not be empty"},
            id="option-key",
        ),
        pytest.param({"labels": {"": "x"}}, {"labels": "Label keys must not be empty"}, id="label-key"),
        pytest.param(
            {"topology": "zone"},
            {"topology": WHY.format(t="zone", what="'local' is Docker's built-in driver")},
            id="topology-wider-than-local",
        ),
        pytest.param({"topology": "zone", "driver": "zdir"}, {}, id="topology-on-a-driver-no-node-has-yet"),
    ],
)
def test_volume_definition_errors(change: dict[str, Any], errors: dict[str, str]) -> None:
    assert volume_definition_errors(**{**GOOD, **change}) == errors

"""Zone-bound storage on real engines (issue 12, item 1): a zone-topology volume's instance is
re-placed on the other node of its zone when its node stops, with its data, and never leaves the
zone. And ``node drain`` (item 3) of a node with a stateless, a ``local`` and a zone-topology
service: each leaves with its data.

A testbed of its own: node-1 and node-2 in zone a, node-3 in zone b, and ``zdir``, a dirvol
plugin of global capability on every node whose root is shared by the nodes of one zone only
(``moorage testbed up --zone-driver zdir``): what zone a's nodes write, node-3 never sees.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Bed, running_testbed
from tests.e2e.test_e2e_stacks import containers
from tests.e2e.test_e2e_volumes import redis_cli
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

ZONE_A = ("node-1", "node-2")
ZONE_B = "node-3"


@pytest.fixture(scope="module")
def zbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_testbed(
        tmp_path_factory.mktemp("topology") / "config.json",
        "--nodes", "3", "--zones", "a,a,b", "--zone-driver", "zdir",
    ) as bed:  # fmt: skip
        yield bed


def _testbed(bed: Bed, *args: str) -> None:
    bed.ok("testbed", *args, "--dir", str(bed.directory))


def _running(bed: Bed, service_id: str, nodes: tuple[str, ...]) -> dict:
    """The one container of the service on these (running) nodes, once it runs."""

    def found() -> dict | None:
        listed = list(containers(bed, service_id, nodes).values())
        return listed[0] if len(listed) == 1 and listed[0]["status"] == "running" else None

    found_one: dict = wait_until(found, 60, f"one running container of {service_id} on {', '.join(nodes)}")
    return found_one


def test_the_zone_driver_reports_global_on_every_node(zbed: Bed) -> None:
    for node in (*ZONE_A, ZONE_B):
        shown = zbed.node(node)
        assert {"name": "zdir", "scope": "global"} in [
            {"name": d["name"], "scope": d["scope"]} for d in shown["drivers"]
        ], shown
        assert shown["zone"] == ("b" if node == ZONE_B else "a")


def test_a_zone_volume_follows_its_instance_inside_its_zone_only(zbed: Bed, name: str) -> None:
    volume, service_id = f"{name}-data", f"testbed/null/{name}"
    zbed.ok("volume", "create", "--scope", "instance", "--driver", "zdir", "--topology", "zone", volume)
    assert json.loads(zbed.ok("volume", "show", volume, "--json"))["topology"] == "zone"
    zbed.ok(
        "service", "create", "-v", f"{volume}:/data", name, "redis:local", "--cmd", "redis-server --appendonly yes"
    )  # fmt: skip

    # First placement in zone a: zone b's only node is down while it is made.
    _testbed(zbed, "node", "stop", ZONE_B)
    try:
        zbed.wait_status(ZONE_B, "offline")
        zbed.ok("service", "deploy", name)
        first = _running(zbed, service_id, ZONE_A)
    finally:
        _testbed(zbed, "node", "start", ZONE_B)
    home = first["node"]
    other = ZONE_A[1] if home == ZONE_A[0] else ZONE_A[0]
    assert redis_cli(first["container"], "set", "kept", "in-zone-a") == "OK"
    (made,) = json.loads(zbed.ok("volume", "show", volume, "--json"))["instances"]
    assert (made["node"], made["zone"]) == (home, "a")

    stopped: list[str] = []
    try:
        _testbed(zbed, "node", "stop", home)
        stopped.append(home)
        zbed.wait_status(home, "offline")
        zbed.ok("service", "deploy", name)
        moved = _running(zbed, service_id, (other, ZONE_B))
        assert moved["node"] == other, "re-placed on the other node of zone a, not in zone b"
        assert wait_until(
            lambda: redis_cli(moved["container"], "get", "kept") == "in-zone-a", 30, "redis to load its data"
        )
        (now,) = json.loads(zbed.ok("volume", "show", volume, "--json"))["instances"]
        assert (now["name"], now["node"], now["zone"]) == (made["name"], other, "a")
        assert f"node: {other}" in zbed.ok("volume", "show", volume)

        # With zone a down altogether it waits: never started in zone b on an empty volume.
        _testbed(zbed, "node", "stop", other)
        stopped.append(other)
        zbed.wait_status(other, "offline")
        refused = zbed.fails("service", "deploy", name)
        assert "outside zone a of volume instance" in refused.err, refused.text
        (instance,) = json.loads(zbed.ok("service", "show", name, "--json"))["containers"]
        assert instance["state"] == "pending" and instance["node"] == other
        assert not containers(zbed, service_id, (ZONE_B,))
    finally:
        for node in stopped:
            _testbed(zbed, "node", "start", node)
    back = _running(zbed, service_id, ZONE_A)
    assert back["node"] == other
    assert wait_until(lambda: redis_cli(back["container"], "get", "kept") == "in-zone-a", 30, "its data")
    zbed.ok("service", "rm", "--force", name)
    zbed.ok("volume", "rm", "--force", volume)


def test_a_grid_topology_on_the_built_in_local_driver_is_refused(zbed: Bed, name: str) -> None:
    refused = zbed.fails(
        "volume", "create", "--scope", "instance", "--driver", "local", "--topology", "grid", f"{name}-data"
    )
    text = " ".join(refused.err.split())
    assert "Topology 'grid' needs a driver whose volumes other nodes can use" in text
    assert "driver 'local' is local on node-1, node-2, node-3" in text


def _redis(bed: Bed, name: str, volume: str) -> None:
    bed.ok(
        "service",
        "create",
        "-v",
        f"{volume}:/data",
        name,
        "redis:local",
        "--cmd",
        "redis-server --appendonly yes",
    )


def test_node_drain_empties_a_node_of_three_services_each_with_its_data(zbed: Bed, name: str) -> None:
    """Issue 12 item 3: stateless, instance-scope ``local`` and zone-topology services on node-1;
    ``node drain node-1`` moves every one of them off, the stateful ones with their data: the
    zone one re-attaching in its zone, the local one copied by a volume move job to the node the
    scheduler picks (its source kept, retired); one container of each instance runs."""
    web, local, zoned = f"{name}-web", f"{name}-local", f"{name}-zone"
    local_volume, zone_volume = f"{name}-ldata", f"{name}-zdata"
    zbed.ok("volume", "create", "--scope", "instance", "--driver", "local", local_volume)
    zbed.ok("volume", "create", "--scope", "instance", "--driver", "zdir", "--topology", "zone", zone_volume)
    drained = ["node-2", ZONE_B]
    every = (*ZONE_A, ZONE_B)
    try:
        # Everything on node-1 first: with the other nodes drained it is the only one that takes them.
        for node in drained:
            zbed.ok("node", "drain", node)
        zbed.ok("service", "create", web, "busybox:local", "--cmd", "sleep 3600")
        _redis(zbed, local, local_volume)
        _redis(zbed, zoned, zone_volume)
        for service in (web, local, zoned):
            zbed.ok("service", "deploy", service)
        ids = {s: f"testbed/null/{s}" for s in (web, local, zoned)}
        for service in (local, zoned):
            placed = _running(zbed, ids[service], ("node-1",))
            assert redis_cli(placed["container"], "set", "kept", service) == "OK"
        _running(zbed, ids[web], ("node-1",))
        for node in drained:
            assert zbed.ok("node", "undrain", node) == f"{node}: takes instances again\n"
        drained = []
        (local_instance,) = json.loads(zbed.ok("volume", "show", local_volume, "--json"))["instances"]
        docker_name = local_instance["name"]

        preview = zbed.ok("node", "drain", "node-1", "--dry-run")
        assert (
            f"{zoned}-1: to node-2, its volume instance {zoned}.{zone_volume}-1 re-attaching there" in preview
        )
        assert f"{web}-1: re-planned on" in preview
        assert f"{local}-1: to node-" in preview and "moved with its data (" in preview, preview
        assert "drained" not in zbed.ok("node", "ls")

        drained = ["node-1"]
        result = zbed.ok("node", "drain", "node-1")
        assert "Drained node-1: no instance left on it" in result, result
        rows = {line.split()[0]: line.split()[1] for line in zbed.ok("node", "ls").splitlines()[1:]}
        assert rows["node-1"] == "online,drained", rows
        assert zbed.node("node-1")["drained"] is True

        # exactly one container of each instance, none on node-1
        moved_web = _running(zbed, ids[web], every)
        moved_zone = _running(zbed, ids[zoned], every)
        moved_local = _running(zbed, ids[local], every)
        assert "node-1" not in {moved_web["node"], moved_zone["node"], moved_local["node"]}
        assert moved_zone["node"] == "node-2", "inside zone a"
        assert moved_web["status"] == "running"

        # the data of each stateful instance, read through its container on its new node
        assert wait_until(
            lambda: redis_cli(moved_zone["container"], "get", "kept") == zoned, 30, "the zone redis's data"
        )
        assert wait_until(
            lambda: redis_cli(moved_local["container"], "get", "kept") == local, 30, "the local redis's data"
        )
        (zone_instance,) = json.loads(zbed.ok("volume", "show", zone_volume, "--json"))["instances"]
        assert (zone_instance["node"], zone_instance["zone"]) == ("node-2", "a")
        (now,) = json.loads(zbed.ok("volume", "show", local_volume, "--json"))["instances"]
        assert (now["name"], now["node"]) == (docker_name, moved_local["node"])
        shown = zbed.ok("volume", "show", local_volume)
        assert f"retired:\n    - name: {docker_name}\n      node: node-1" in shown, shown
        assert f"Moved {docker_name} to {moved_local['node']}" in result, result
    finally:
        for node in drained:
            zbed.ok("node", "undrain", node)
        for service in (web, local, zoned):
            zbed.run("service", "rm", "--force", service)
        zbed.run("volume", "purge", "--force", local_volume)  # the copy node-1 kept
        for volume in (local_volume, zone_volume):
            zbed.run("volume", "rm", "--force", volume)

"""Volume topology through the API and the CLI, against a real master (SQLite and PostgreSQL):
the default comes from what the grid's nodes report of the driver and is stored; a topology wider
than the driver can honour is a 422 that says why; the JSON and the CLI show it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from moorage.model.names import LABEL_VALUE_MAX
from tests.support.fake_agent import FakeNode, hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

LOCAL = {"name": "local", "scope": "local"}
REFUSED = (
    "Topology '{topology}' needs a driver whose volumes other nodes can use (capability scope global), "
    "but {what}: only the node that made a volume instance sees its data; use topology node, or a "
    "driver that is global"
)


def _join_nodes(master: MasterProcess, grid: str, nodes: dict[str, list[dict[str, Any]]]) -> None:
    """Nodes that said hello with these drivers (then went away: what they reported stays)."""
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
    for name, drivers in nodes.items():
        ws, welcome = join(master.url, token, hello(name, labels=["zone=a"], drivers=drivers))
        assert welcome["type"] == "welcome", welcome
        ws.close()


def _create(master: MasterProcess, grid: str, **body: Any) -> Any:
    with master.client() as client:
        return client.post(f"/v1/volumes/{grid}", json={"scope": "instance", **body})


@pytest.mark.parametrize(
    ("driver", "reported", "topology"),
    [
        pytest.param("local", {}, "node", id="built-in-local-no-nodes"),
        pytest.param("zdir", {}, "node", id="driver-no-node-has-yet"),
        pytest.param("rexray", {"n1": [LOCAL, {"name": "rexray", "scope": "local"}]}, "node", id="local"),
        pytest.param(
            "nfs",
            {
                "n1": [LOCAL, {"name": "nfs", "scope": "local"}],
                "n2": [LOCAL, {"name": "nfs", "scope": "global"}],
            },
            "grid",
            id="global-on-some-node",
        ),
    ],
)
def test_without_a_topology_the_drivers_default_is_stored(
    master: MasterProcess, grid: str, driver: str, reported: dict[str, list[dict[str, Any]]], topology: str
) -> None:
    _join_nodes(master, grid, reported)
    created = _create(master, grid, name="data", driver=driver)
    assert created.status_code == 201, created.text
    assert created.json()["topology"] == topology
    # stored, not derived again: a node reporting the driver otherwise later changes nothing
    _join_nodes(master, grid, {"late": [LOCAL, {"name": driver, "scope": "global"}]})
    with master.client() as client:
        assert client.get(f"/v1/volumes/{grid}/data").json()["topology"] == topology
        assert [v["topology"] for v in client.get(f"/v1/volumes/{grid}").json()["volumes"]] == [topology]


@pytest.mark.parametrize("topology", ["node", "zone", "region", "grid"])
def test_any_topology_on_a_driver_some_node_has_global(
    master: MasterProcess, grid: str, topology: str
) -> None:
    _join_nodes(master, grid, {"n1": [LOCAL, {"name": "zdir", "scope": "global"}]})
    created = _create(master, grid, name="data", driver="zdir", topology=topology)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["topology"] == topology
    assert list(body)[:6] == ["id", "name", "scope", "driver", "topology", "driver_opts"]


def test_a_topology_is_accepted_while_no_node_has_the_driver(master: MasterProcess, grid: str) -> None:
    created = _create(master, grid, name="data", driver="zdir", topology="zone")
    assert created.status_code == 201, created.text
    assert created.json()["topology"] == "zone"


@pytest.mark.parametrize(
    ("body", "reported", "error"),
    [
        pytest.param(
            {"driver": "local", "topology": "grid"},
            {},
            REFUSED.format(topology="grid", what="'local' is Docker's built-in driver"),
            id="grid-on-built-in-local",
        ),
        pytest.param(
            {"driver": "rexray", "topology": "zone"},
            {"n1": [LOCAL, {"name": "rexray", "scope": "local"}], "n2": [LOCAL, {"name": "rexray"}]},
            REFUSED.format(
                topology="zone",
                what="driver 'rexray' is local on n1 and of no stated scope (Docker takes it as local) on n2",
            ),
            id="zone-on-a-driver-every-node-has-local",
        ),
        pytest.param(
            {"driver": "local", "topology": "rack"},
            {},
            "Unknown topology 'rack', must be one of node, zone, region, grid",
            id="unknown",
        ),
    ],
)
def test_a_topology_the_driver_cannot_honour_is_422_and_creates_nothing(
    master: MasterProcess,
    grid: str,
    body: dict[str, str],
    reported: dict[str, list[dict[str, Any]]],
    error: str,
) -> None:
    _join_nodes(master, grid, reported)
    refused = _create(master, grid, name="data", **body)
    assert refused.status_code == 422
    assert refused.json() == {"error": {"topology": error}}
    with master.client() as client:
        assert client.get(f"/v1/volumes/{grid}").json() == {"volumes": []}


def _moorage(
    master: MasterProcess, grid: str, tmp_path: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    environ |= {
        "MOORAGE_CONFIG": str(tmp_path / "config.json"),
        "MOORAGE_URL": master.url,
        "MOORAGE_TOKEN": master.admin_token,
        "MOORAGE_GRID": grid,
    }
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args], env=environ, capture_output=True, text=True, timeout=60
    )


def test_the_cli_creates_and_shows_the_topology(master: MasterProcess, grid: str, tmp_path: Path) -> None:
    made = _moorage(
        master,
        grid,
        tmp_path,
        "volume",
        "create",
        "--scope",
        "instance",
        "--driver",
        "zdir",
        "--topology",
        "zone",
        "db",
    )
    assert made.returncode == 0 and made.stdout == "db\n", made.stderr
    assert (
        _moorage(
            master, grid, tmp_path, "volume", "create", "--scope", "grid", "--driver", "local", "conf"
        ).returncode
        == 0
    )

    shown = _moorage(master, grid, tmp_path, "volume", "show", "db")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:5] == ["db:", f"  id: {grid}/db", lines[2], "  scope: instance", "  driver: zdir"]
    assert lines[5:] == [
        "  driver_opts:",
        "  instances:",
        "  services:",
        "  topology: zone",
        "  on_node_lost: wait",
        "  backups:",
        "    schedule: -",
        "    last_backup: -",
        "    last_verify: -",
    ], "after Kontena's fields, which keep their order"
    as_json = json.loads(_moorage(master, grid, tmp_path, "volume", "show", "db", "--json").stdout)
    assert as_json["topology"] == "zone"

    long = _moorage(master, grid, tmp_path, "volume", "ls", "--long").stdout.splitlines()
    assert long[0].split() == [
        "NAME",
        "SCOPE",
        "DRIVER",
        "TOPOLOGY",
        "ON_NODE_LOST",
        "STACK",
        "CREATED",
        "INSTANCES",
        "UNUSED",
        "DRIFTED",
        "SERVICES",
    ]
    rows = {line.split()[0]: line.split()[1:4] for line in long[1:]}
    assert rows == {"conf": ["grid", "local", "node"], "db": ["instance", "zdir", "zone"]}
    assert _moorage(master, grid, tmp_path, "volume", "ls").stdout.splitlines()[0].split() == [
        "NAME",
        "SCOPE",
        "DRIVER",
        "CREATED",
    ], "the plain listing keeps Kontena's columns"

    refused = _moorage(
        master,
        grid,
        tmp_path,
        "volume",
        "create",
        "--scope",
        "instance",
        "--driver",
        "local",
        "--topology",
        "grid",
        "x1",
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert REFUSED.format(topology="grid", what="'local' is Docker's built-in driver") in " ".join(
        refused.stderr.split()
    )


def test_a_zone_and_region_as_long_as_a_label_value_may_be_are_recorded(
    master: MasterProcess, grid: str
) -> None:
    """A volume instance keeps its node's zone= and region= labels whatever their length within
    the label limit (on PostgreSQL a 1,024-character zone failed every deploy onto that node)."""
    zone, region = "z" * LABEL_VALUE_MAX, "r" * LABEL_VALUE_MAX
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        with FakeNode(
            master.url, token, "far", report_volumes=True, labels=[f"zone={zone}", f"region={region}"]
        ):
            wait_until(
                lambda: client.get(f"/v1/nodes/{grid}/far").json().get("status") == "online", 10, "far online"
            )
            assert client.post(
                f"/v1/volumes/{grid}", json={"name": "db", "scope": "instance", "driver": "local"}
            )
            created = client.post(
                f"/v1/services/{grid}",
                json={"name": "pg", "image": "busybox:local", "volumes": ["db:/data"], "deploy": True},
            )
            assert created.status_code == 201, created.text

            def recorded() -> list[dict[str, Any]]:
                return client.get(f"/v1/volumes/{grid}/db").json()["instances"]

            (instance,) = wait_until(recorded, 20, "the volume instance to be recorded")
            assert (instance["node"], instance["zone"], instance["region"]) == ("far", zone, region)
            assert wait_until(
                lambda: (
                    client.get(f"/v1/services/{grid}/null/pg").json()["containers"][0]["state"] == "running"
                ),
                20,
                "pg-1 running",
            )

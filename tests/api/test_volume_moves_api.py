"""Volume moves through the API, against a real master (SQLite and PostgreSQL) and fake agents on
the real socket: what is validated (422), what is not there (404), what is refused (409, with a
message naming the volume instance, both nodes, their zones and the nodes it may move to), a
dry run of a re-attach, and retired copies (none yet) in the volume's JSON. Copies themselves
run on real engines: tests/e2e/test_e2e_volume_move.py."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.fake_agent import FakeNode
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

LOCAL = {"name": "local", "scope": "local"}
SHARED = {"name": "shared", "scope": "global"}


class NoContainers:
    """A node's volume data as a re-attach asks of it: which containers mount the volume (none
    once its instance was stopped: the fake node runs no containers)."""

    def users(self, volume: str) -> list[str]:
        return []


@dataclass
class Grid:
    master: MasterProcess
    name: str
    nodes: dict[str, FakeNode]

    def post(self, path: str, body: Any) -> Any:
        with self.master.client() as client:
            return client.post(f"/v1/volumes/{self.name}{path}", json=body)

    def get(self, path: str) -> Any:
        with self.master.client() as client:
            return client.get(f"/v1/volumes/{self.name}{path}")

    def deploy(self, service: str, volume: str, driver: str, topology: str) -> dict[str, Any]:
        """A service on one instance-scope volume; its volume instance once recorded."""
        assert (
            self.post(
                "", {"name": volume, "scope": "instance", "driver": driver, "topology": topology}
            ).status_code
            == 201
        )
        with self.master.client() as client:
            made = client.post(
                f"/v1/services/{self.name}",
                json={
                    "name": service,
                    "image": "redis:local",
                    "volumes": [f"{volume}:/data"],
                    "affinity": ["label==zone=a"],  # zone a has two nodes, zone b one
                },
            )
            assert made.status_code == 201, made.text
            assert client.post(f"/v1/services/{self.name}/null/{service}/deploy").status_code < 300

        def made_instance() -> dict[str, Any] | None:
            found = self.get(f"/{volume}").json()["instances"]
            return found[0] if found else None

        return wait_until(made_instance, 30, "the volume instance")


@pytest.fixture
def moving(master: MasterProcess, grid: str) -> Iterator[Grid]:
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
    with ExitStack() as stack:
        nodes = {
            name: stack.enter_context(
                FakeNode(
                    master.url,
                    token,
                    name,
                    labels=[f"zone={zone}"],
                    drivers=[LOCAL, SHARED],
                    report_volumes=True,
                    volume_data=NoContainers(),
                )
            )
            for name, zone in (("n1", "a"), ("n2", "a"), ("n3", "b"))
        }
        with master.client() as client:
            wait_until(
                lambda: (
                    sum(n["status"] == "online" for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]) == 3
                ),
                30,
                "three nodes online",
            )
        yield Grid(master, grid, nodes)


def test_bad_bodies_are_422_and_unknown_things_404(moving: Grid) -> None:
    vi = moving.deploy("web", "data", "local", "node")
    for body in ({"to": "n2"}, {"docker_volume": vi["name"]}, {"docker_volume": "/etc", "to": "n2"},
                 {"docker_volume": vi["name"], "to": "n2", "extra": 1}, {"docker_volume": vi["name"], "to": "N 2"}):  # fmt: skip
        answer = moving.post("/data/moves", body)
        assert answer.status_code == 422, (body, answer.text)
    assert moving.post("/nope/moves", {"docker_volume": vi["name"], "to": "n2"}).status_code == 404
    missing = moving.post("/data/moves", {"docker_volume": "web.other-1", "to": "n2"})
    assert missing.status_code == 404 and "has no volume instance web.other-1" in missing.json()["error"]
    assert moving.post("/data/moves", {"docker_volume": vi["name"], "to": "n9"}).status_code == 404
    assert moving.get("/data/moves").json() == {"moves": []}
    assert moving.get("/data/moves/" + "0" * 32).status_code == 404
    assert moving.get("/data/moves/not-an-id").status_code == 422
    assert moving.get("/data").json()["retired"] == []
    assert moving.post("/data/purge", {}).json() == {"purging": []}
    unknown = moving.post("/data/purge", {"docker_volumes": ["web.data-9"]})
    assert unknown.status_code == 404 and "no retired or stale copy web.data-9" in unknown.json()["error"]


def test_refusals_name_the_instance_the_nodes_their_zones_and_where_it_may_go(moving: Grid) -> None:
    vi = moving.deploy("web", "data", "shared", "zone")
    home = vi["node"]
    inside = "n2" if home == "n1" else "n1"
    same = moving.post("/data/moves", {"docker_volume": vi["name"], "to": home})
    assert same.status_code == 409 and "it is there already" in same.json()["error"]
    outside = moving.post("/data/moves", {"docker_volume": vi["name"], "to": "n3"})
    assert outside.status_code == 409, outside.text
    assert outside.json()["error"] == (
        f"Cannot move volume instance {vi['name']} of volume data from node {home} (zone a) to node n3 "
        f"(zone b): its volume has topology zone: its data can be used only inside its domain. "
        f"Nodes it may move to: {inside}"
    )
    plan = moving.post("/data/moves", {"docker_volume": vi["name"], "to": inside, "dry_run": True})
    assert plan.status_code == 200, plan.text
    assert plan.json() == {
        "plan": {
            "volume": "data",
            "docker_volume": vi["name"],
            "source": home,
            "source_zone": "a",
            "target": inside,
            "target_zone": "a",
            "method": "reattach",
            "bytes": 0,
            "files": 0,
            "instances": ["web-1"],
        },
        "move": None,
    }
    assert moving.get("/data/moves").json() == {"moves": []}, "a dry run records nothing"

    moving.nodes[inside].stopping.set()
    moving.nodes[inside].join(10)
    with moving.master.client() as client:
        wait_until(
            lambda: client.get(f"/v1/nodes/{moving.name}/{inside}").json()["status"] == "offline",
            30,
            "offline",
        )
    offline = moving.post("/data/moves", {"docker_volume": vi["name"], "to": inside})
    assert offline.status_code == 409 and f"node {inside} is offline" in offline.json()["error"]
    assert "Nodes it may move to: none" in offline.json()["error"]


def test_a_re_attach_moves_the_instance_and_its_volume_instance(moving: Grid) -> None:
    vi = moving.deploy("web", "data", "shared", "zone")
    inside = "n2" if vi["node"] == "n1" else "n1"
    started = moving.post("/data/moves", {"docker_volume": vi["name"], "to": inside})
    assert started.status_code == 201, started.text
    move = started.json()["move"]
    assert move["method"] == "reattach" and move["instances"] == ["web-1"]

    def finished() -> dict[str, Any] | None:
        found = moving.get(f"/data/moves/{move['id']}").json()
        return found if found["state"] != "running" else None

    done = wait_until(finished, 60, "the move to end")
    assert done["state"] == "succeeded", done["message"]
    assert done["stopped_at"] is not None and done["switched_at"] is not None
    (now,) = moving.get("/data").json()["instances"]
    assert (now["name"], now["node"], now["zone"]) == (vi["name"], inside, "a")
    assert moving.get("/data").json()["retired"] == [], "a re-attach copies nothing and retires nothing"
    with moving.master.client() as client:
        (container,) = client.get(f"/v1/services/{moving.name}/null/web").json()["containers"]
    assert container["node"] == inside
    assert moving.get("/data/moves").json()["moves"][0]["id"] == move["id"]


def test_an_instance_with_another_instance_scope_volume_is_not_moved_by_one_of_them(moving: Grid) -> None:
    """Moving one of an instance's two volume instances would start it on the new node with the
    other one empty (the engine makes a named volume a container mounts): refused, nothing changes."""
    for volume in ("data", "logs"):
        made = moving.post("", {"name": volume, "scope": "instance", "driver": "local"})
        assert made.status_code == 201, made.text
    with moving.master.client() as client:
        created = client.post(
            f"/v1/services/{moving.name}",
            json={"name": "db", "image": "redis:local", "volumes": ["data:/data", "logs:/logs"],
                  "affinity": ["label==zone=a"], "deploy": True},
        )  # fmt: skip
        assert created.status_code == 201, created.text
    both = wait_until(
        lambda: (
            (found := [moving.get(f"/{v}").json()["instances"] for v in ("data", "logs")])
            and all(found)
            and found
        ),
        30,
        "both volume instances",
    )
    (data,), (logs,) = both
    inside = "n2" if data["node"] == "n1" else "n1"
    refused = moving.post("/data/moves", {"docker_volume": data["name"], "to": inside})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == (
        f"Cannot move volume instance {data['name']} of volume data: its instance db-1 also mounts "
        f"volume instance(s) {logs['name']}, which would not move with it (and would start empty on the "
        "new node); a move takes an instance with one instance-scope volume instance only"
    )
    assert moving.get("/data/moves").json() == {"moves": []}
    assert moving.get("/data").json()["instances"][0]["node"] == data["node"]

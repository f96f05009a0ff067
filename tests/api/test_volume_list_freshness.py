"""``GET /v1/volumes/{grid}`` never serves a stale list: every write path, as a user sees it.

The master keeps each grid's rendered list while its store is unchanged. Each test lists first (so
there is a kept list to go stale), writes through one path, and lists again: the change must show.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import create_engine, select, update
from websockets.sync.client import ClientConnection

from moorage.store.database import normalize_url
from moorage.store.tables import GridRow, VolumeRow
from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _volumes(client: Any, grid: str) -> dict[str, dict[str, Any]]:
    response = client.get(f"/v1/volumes/{grid}")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    return {v["name"]: v for v in response.json()["volumes"]}


def _create(client: Any, grid: str, name: str, scope: str = "instance") -> None:
    client.post(
        f"/v1/volumes/{grid}", json={"name": name, "scope": scope, "driver": "local"}
    ).raise_for_status()


def _desired_volumes(ws: ClientConnection, timeout: float = 15) -> list[dict[str, Any]]:
    """The volumes of the first desired state that names any (desired states come on hello too)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message.get("type") == "desired" and message.get("volumes"):
            return list(message["volumes"])
    raise AssertionError("no desired state with volumes arrived")


def test_create_and_delete_show_at_once(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        assert _volumes(client, grid) == {}
        for n in range(3):
            _create(client, grid, f"vol-{n}")
            assert sorted(_volumes(client, grid)) == [f"vol-{i}" for i in range(n + 1)]
        assert _volumes(client, grid) == _volumes(client, grid)  # unchanged: the same list twice
        assert client.delete(f"/v1/volumes/{grid}/vol-1").status_code == 200
        assert sorted(_volumes(client, grid)) == ["vol-0", "vol-2"]
        refused = client.post(f"/v1/volumes/{grid}", json={"name": "vol-0", "scope": "grid", "driver": "x"})
        assert refused.status_code == 422  # a refused write changes nothing, and the list says so
        assert sorted(_volumes(client, grid)) == ["vol-0", "vol-2"]


def test_services_and_stacks_mounting_a_volume_show_and_go(master: MasterProcess, grid: str) -> None:
    stack = {
        "stack": "shop",
        "services": {"db": {"image": "postgres:local", "volumes": ["pgdata:/var/lib/postgresql/data"]}},
        "volumes": {"pgdata": {"external": {"name": "shop-data"}}},
    }
    with master.client() as client:
        _create(client, grid, "shop-data")
        assert _volumes(client, grid)["shop-data"]["services"] == []
        client.post(
            f"/v1/services/{grid}", json={"name": "solo", "image": "redis:local", "volumes": ["shop-data:/d"]}
        ).raise_for_status()
        assert _volumes(client, grid)["shop-data"]["services"] == [{"id": f"{grid}/null/solo"}]
        client.post(f"/v1/stacks/{grid}", json={"stack": stack, "deploy": False}).raise_for_status()
        assert _volumes(client, grid)["shop-data"]["services"] == [
            {"id": f"{grid}/null/solo"},
            {"id": f"{grid}/shop/db"},
        ]
        unmounted = {**stack, "services": {"db": {"image": "postgres:local"}}, "volumes": {}}
        client.put(f"/v1/stacks/{grid}/shop", json={"stack": unmounted, "deploy": False}).raise_for_status()
        assert _volumes(client, grid)["shop-data"]["services"] == [{"id": f"{grid}/null/solo"}]
        assert client.delete(f"/v1/services/{grid}/null/solo").status_code == 200
        assert _volumes(client, grid)["shop-data"]["services"] == []
        client.put(f"/v1/stacks/{grid}/shop", json={"stack": stack, "deploy": False}).raise_for_status()
        assert _volumes(client, grid)["shop-data"]["services"] == [{"id": f"{grid}/shop/db"}]
        assert client.delete(f"/v1/stacks/{grid}/shop").status_code == 200
        assert _volumes(client, grid)["shop-data"]["services"] == []


def test_deployments_and_agent_reports_show_in_volume_instances(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        node_id = uuid.uuid4().hex
        ws, welcome = join(master.url, token, hello("keeper", node_id=node_id, labels=["zone=a"]))
        try:
            _create(client, grid, "kept")
            client.post(
                f"/v1/services/{grid}", json={"name": "db", "image": "redis:local", "volumes": ["kept:/data"]}
            ).raise_for_status()
            assert _volumes(client, grid)["kept"]["instances"] == []
            assert client.post(f"/v1/services/{grid}/null/db/deploy").status_code == 200
            # the deployment records the volume instance before it tells the agent
            [spec] = _desired_volumes(ws)
            listed = _volumes(client, grid)["kept"]["instances"]
            assert listed == [
                {
                    "name": "db.kept-1",
                    "node": "keeper",
                    "zone": "a",
                    "region": None,
                    "state": "pending",
                    "error": None,
                    "unused_since": None,
                    "drift": None,
                }
            ]

            def report(state: str, error: str | None = None) -> None:
                volume = {
                    "volume_instance_id": spec["volume_instance_id"],
                    "name": spec["name"],
                    "state": state,
                }
                ws.send(json.dumps({"type": "status", "volumes": [{**volume, "error": error}]}))

            def shown() -> tuple[str, str | None]:
                [instance] = _volumes(client, grid)["kept"]["instances"]
                return instance["state"], instance["error"]

            report("present")
            wait_until(lambda: shown() == ("present", None), 10, "the agent's report in the list")
            report("error", "disk full")
            wait_until(lambda: shown() == ("error", "disk full"), 10, "the agent's error in the list")
            report("present")
            wait_until(lambda: shown() == ("present", None), 10, "the agent's recovery in the list")

            def engine_has(options: dict[str, str]) -> None:
                docker_volume = {"name": spec["name"], "driver": "local", "options": options, "labels": {}}
                ws.send(json.dumps({"type": "status", "docker_volumes": [docker_volume]}))

            def drift() -> object:
                return _volumes(client, grid)["kept"]["instances"][0]["drift"]

            engine_has({"type": "tmpfs"})  # re-created by hand with other options
            expected = {"driver_opts": {"definition": {}, "engine": {"type": "tmpfs"}}}
            wait_until(lambda: drift() == expected, 10, "the drift in the list")
            engine_has({})
            wait_until(lambda: drift() == {}, 10, "no drift once the engine agrees")
        finally:
            ws.close()
        # the same node comes back under another name: its volume instances show the new name
        wait_until(
            lambda: client.get(f"/v1/nodes/{grid}/keeper").json()["status"] == "offline", 10, "node offline"
        )
        assert _volumes(client, grid)["kept"]["instances"][0]["node"] == "keeper"
        ws, _ = join(master.url, welcome["credential"], hello("keeper-2", node_id=node_id, labels=["zone=a"]))
        try:
            wait_until(
                lambda: _volumes(client, grid)["kept"]["instances"][0]["node"] == "keeper-2",
                10,
                "the node's new name in the list",
            )
        finally:
            ws.close()


def test_a_removed_and_remade_grid_lists_afresh(master: MasterProcess) -> None:
    grid = f"g-{uuid.uuid4().hex[:8]}"
    with master.client() as client:
        client.post("/v1/grids", json={"name": grid}).raise_for_status()
        _create(client, grid, "old-data")
        assert list(_volumes(client, grid)) == ["old-data"]
        assert client.delete(f"/v1/grids/{grid}").status_code == 200
        gone = client.get(f"/v1/volumes/{grid}")
        assert gone.status_code == 404
        assert gone.json() == {"error": f"Grid {grid} not found"}
        client.post("/v1/grids", json={"name": grid}).raise_for_status()
        assert _volumes(client, grid) == {}


def test_a_write_by_another_process_shows(master: MasterProcess, grid: str) -> None:
    """The master learns of changes from the store, not from its own writers: a row changed by
    another process on the same store (a second master, a repair by hand) shows in the list."""
    with master.client() as client:
        _create(client, grid, "labelled")
        assert _volumes(client, grid)["labelled"]["labels"] == {}
        assert master.db_url is not None
        engine = create_engine(normalize_url(master.db_url))
        try:
            with engine.begin() as connection:
                grid_id = select(GridRow.id).where(GridRow.name == grid).scalar_subquery()
                connection.execute(
                    update(VolumeRow)
                    .where(VolumeRow.grid_id == grid_id, VolumeRow.name == "labelled")
                    .values(labels={"team": "ops"})
                )
        finally:
            engine.dispose()
        assert _volumes(client, grid)["labelled"]["labels"] == {"team": "ops"}

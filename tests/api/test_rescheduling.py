"""Instances waiting for a node place by themselves once a node can take them (real master,
agents over real WebSockets)."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import ClientConnection

from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _instance(client: Any, grid: str, name: str) -> dict[str, Any]:
    (only,) = client.get(f"/v1/services/{grid}/null/{name}").json()["containers"]
    return only


def _desired_containers(ws: ClientConnection) -> list[str]:
    """The container names of the next desired state the master sends this agent."""
    while True:
        message = json.loads(ws.recv(timeout=15))
        if message["type"] == "desired":
            return [c["name"] for c in message["containers"]]


def test_an_instance_pending_for_lack_of_nodes_places_when_one_joins(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        created = client.post(
            f"/v1/services/{grid}",
            json={"name": "web", "image": "busybox:local", "cmd": "sleep 3600", "deploy": True},
        )
        assert created.status_code == 201, created.text
        waiting = wait_until(
            lambda: (i := _instance(client, grid, "web"))["state"] == "pending" and i, 10, "web-1 pending"
        )
        assert waiting["node"] is None and "the grid has no nodes" in waiting["reason"]

        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        ws, welcome = join(master.url, token, hello("node-1"))
        try:
            assert welcome["type"] == "welcome"
            assert _desired_containers(ws) == []  # on connect: nothing for it yet
            assert _desired_containers(ws) == ["web-1"], "placed without another deploy"
            placed = _instance(client, grid, "web")
            assert placed["node"] == "node-1" and placed["state"] == "scheduled"
        finally:
            ws.close()

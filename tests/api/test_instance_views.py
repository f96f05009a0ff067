"""What the views say about instances whose node went away (real master, a fake agent on the
real socket)."""

from __future__ import annotations

import json
from typing import Any

from websockets.sync.client import ClientConnection

from moorage.store.services import shown_state
from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _desired(ws: ClientConnection) -> list[dict[str, Any]]:
    """The containers of the next desired state that names any."""
    while True:
        message = json.loads(ws.recv(timeout=15))
        if message["type"] == "desired" and message["containers"]:
            containers: list[dict[str, Any]] = message["containers"]
            return containers


def _instance(client: Any, grid: str, name: str) -> dict[str, Any]:
    (only,) = client.get(f"/v1/services/{grid}/null/{name}").json()["containers"]
    return only


def test_an_instance_whose_node_is_offline_is_shown_unknown_not_running(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        ws, welcome = join(master.url, token, hello("node-1"))
        assert welcome["type"] == "welcome"
        created = client.post(
            f"/v1/services/{grid}",
            json={"name": "web", "image": "busybox:local", "cmd": "sleep 3600", "deploy": True},
        )
        assert created.status_code == 201, created.text
        (spec,) = _desired(ws)
        report = {
            "service_id": spec["service_id"],
            "instance": spec["instance"],
            "state": "running",
            "config_hash": spec["config_hash"],
            "started_at": "2026-01-01T00:00:00+00:00",
        }
        ws.send(json.dumps({"type": "status", "instances": [report]}))
        wait_until(lambda: _instance(client, grid, "web")["state"] == "running", 10, "web-1 running")
        ws.close()

        shown = wait_until(
            lambda: (i := _instance(client, grid, "web"))["state"] != "running" and i, 10, "web-1 not running"
        )
        assert shown["state"] == "unknown"
        assert shown["reason"] == "node offline (last reported running)"
        assert shown["node"] == "node-1"
        (service,) = client.get(f"/v1/services/{grid}").json()["services"]
        assert [c["state"] for c in service["containers"]] == ["unknown"]


def test_only_what_an_agent_reported_turns_unknown_when_its_node_is_offline() -> None:
    assert shown_state("running", None, "offline") == ("unknown", "node offline (last reported running)")
    assert shown_state("exited", "code 1", "offline") == ("unknown", "node offline (last reported exited)")
    assert shown_state("running", None, "online") == ("running", None)
    assert shown_state("pending", "no node has 1 GB free", None) == ("pending", "no node has 1 GB free")
    for master_made in ("pending", "scheduled", "failed"):
        assert shown_state(master_made, "why", "offline") == (master_made, "why")

"""Grids, join tokens, and nodes registered by agents over a real WebSocket."""

from __future__ import annotations

import uuid

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _node(client, grid: str, name: str) -> dict:
    return client.get(f"/v1/nodes/{grid}/{name}").json()


def _join_token(client, grid: str) -> str:
    return client.post(f"/v1/grids/{grid}/token").json()["token"]


def test_grid_lifecycle(fresh_master: MasterProcess) -> None:
    with fresh_master.client() as client:
        created = client.post("/v1/grids", json={"name": "g"})
        assert created.status_code == 201
        assert created.json()["name"] == "g"
        assert client.post("/v1/grids", json={"name": "g"}).json() == {
            "error": {"name": "Grid with name g already exists"}
        }
        assert [g["name"] for g in client.get("/v1/grids").json()["grids"]] == ["g"]
        assert client.get("/v1/grids/g").json()["node_count"] == 0
        old = created.json()["join_token"]
        shown = client.get("/v1/grids/g/token")
        assert shown.status_code == 409 and "stored hashed" in shown.json()["error"], "never shown again"
        new = client.post("/v1/grids/g/token").json()["token"]
        assert new != old
        assert client.delete("/v1/grids/g").status_code == 200
        assert client.get("/v1/grids/g").status_code == 404


def test_agent_registers_goes_offline_and_returns_as_the_same_node(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        node_id = uuid.uuid4().hex
        ws, welcome = join(master.url, token, hello("node-1", node_id=node_id, labels=["zone=a"]))
        assert welcome["type"] == "welcome" and welcome["grid"] == grid
        credential = welcome["credential"]
        node = _node(client, grid, "node-1")
        assert node["status"] == "online"
        assert node["zone"] == "a"
        assert node["drivers"] == [{"name": "local", "version": None, "scope": "local"}]
        ws.close()
        wait_until(
            lambda: _node(client, grid, "node-1")["status"] == "offline", 10, "node-1 offline after close"
        )
        ws, welcome = join(master.url, credential, hello("node-1", node_id=node_id))
        assert welcome["type"] == "welcome" and welcome["credential"] is None, "issued once"
        wait_until(lambda: _node(client, grid, "node-1")["status"] == "online", 10, "node-1 online again")
        assert [n["id"] for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]] == [node_id]
        ws.close()


def test_silent_agent_goes_offline_after_missed_heartbeats(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        ws, _ = join(master.url, token, hello("quiet"))
        try:
            # heartbeat interval is 1 s in these tests: 3 missed beats make it offline
            wait_until(
                lambda: _node(client, grid, "quiet")["status"] == "offline", 15, "the silent node offline"
            )
        finally:
            ws.close()


def test_agent_with_a_wrong_token_is_refused(master: MasterProcess) -> None:
    with pytest.raises(InvalidStatus) as refused:
        join(master.url, "wrong", hello("x"))
    assert refused.value.response.status_code == 403


def test_duplicate_node_name_is_refused_with_advice(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        first, _ = join(master.url, token, hello("dup"))
        second, reply = join(master.url, token, hello("dup"))
        assert reply["type"] == "error"
        assert "already used by another node" in reply["message"]
        first.close()
        second.close()


def test_node_labels_and_removal(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        ws, _ = join(master.url, token, hello("n", labels=["zone=a"]))
        added = client.post(f"/v1/nodes/{grid}/n/labels", json={"labels": ["disk=ssd", "zone=b"]})
        assert added.json()["labels"] == ["disk=ssd", "zone=b"]
        bad = client.post(f"/v1/nodes/{grid}/n/labels", json={"labels": ["no spaces=1"]})
        assert bad.status_code == 422
        assert bad.json() == {
            "error": {"labels[0]": "Label 'no spaces=1' is not valid: write it as key=value, e.g. zone=a"}
        }
        missing = client.delete(f"/v1/nodes/{grid}/n/labels", params={"key": ["disk", "nope"]})
        assert missing.status_code == 404
        assert _node(client, grid, "n")["labels"] == ["disk=ssd", "zone=b"], (
            "a failed removal must change nothing"
        )
        assert client.delete(f"/v1/nodes/{grid}/n/labels", params={"key": ["disk"]}).json()["labels"] == [
            "zone=b"
        ]
        online_rm = client.delete(f"/v1/nodes/{grid}/n")
        assert online_rm.status_code == 409 and "stop its agent first" in online_rm.json()["error"]
        ws.close()
        wait_until(lambda: _node(client, grid, "n")["status"] == "offline", 10, "node offline")
        assert client.delete(f"/v1/nodes/{grid}/n").status_code == 200
        assert client.get(f"/v1/nodes/{grid}").json() == {"nodes": []}


def test_restart_keeps_grids_nodes_and_labels(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        ws, welcome = join(master.url, token, hello("keep", node_id="b" * 32, labels=["zone=c"]))
        client.post(f"/v1/nodes/{grid}/keep/labels", json={"labels": ["disk=ssd"]}).raise_for_status()
    ws.close()
    master.stop()
    master.start()
    with master.client() as client:
        node = _node(client, grid, "keep")
        assert node["status"] == "offline"
        assert node["labels"] == ["disk=ssd", "zone=c"]
        ws, _ = join(master.url, welcome["credential"], hello("keep", node_id="b" * 32, labels=["zone=x"]))
        node = wait_until(
            lambda: (n := _node(client, grid, "keep"))["status"] == "online" and n, 10, "node back"
        )
        assert node["labels"] == ["disk=ssd", "zone=c"], "agent labels only seed a new node"
        ws.close()

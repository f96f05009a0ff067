"""Agents as principals, on the real socket of a real master: node names checked at the hello, each
node its own credential, join tokens that only admit new nodes and that rotation takes away."""

from __future__ import annotations

import json
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _join_token(client, grid: str) -> str:
    return client.post(f"/v1/grids/{grid}/token").json()["token"]


def _status(client, grid: str, name: str) -> str:
    return client.get(f"/v1/nodes/{grid}/{name}").json()["status"]


def _alive(ws) -> bool:
    """The connection still carries messages both ways (a ping is answered)."""
    return bool(ws.ping().wait(5))


@pytest.mark.parametrize(
    "name",
    ["two\nlines", "\x1b[31mred\x1b[0m", "a/b", "", "-leading", "x" * 129, "caf\u00e9", "tab\there"],
    ids=["newline", "escape", "slash", "empty", "leading-dash", "too-long", "non-ascii", "tab"],
)
def test_bad_node_names_are_refused_at_the_hello(master: MasterProcess, grid: str, name: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        ws, reply = join(master.url, token, hello(name))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert reply["type"] == "error"
        assert reply["message"].startswith("Bad hello: hello.name: Node name")
        assert "--name NAME" in reply["message"], "the agent's user is told how to fix it"
        assert "\x1b" not in reply["message"] and "\n" not in reply["message"]
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason.startswith("Bad hello: hello.name: Node name")
        assert client.get(f"/v1/nodes/{grid}").json() == {"nodes": []}, "nothing stored"
    log = master.log_path.read_text()
    assert "\x1b" not in log, "an escape from a peer never reaches the master's log"


def test_a_join_token_cannot_take_over_a_joined_node(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        victim_id = uuid.uuid4().hex
        victim, welcome = join(master.url, token, hello("victim", node_id=victim_id))
        assert welcome["type"] == "welcome" and welcome["credential"]
        try:
            intruder, reply = join(master.url, token, hello("victim", node_id=victim_id))
            assert reply["type"] == "error"
            assert "already has its own credential" in reply["message"]
            assert "moorage node rm victim" in reply["message"]
            with pytest.raises(ConnectionClosed):
                intruder.recv(timeout=10)
            # under another name, too: the node id is what is claimed
            intruder, reply = join(master.url, token, hello("other-name", node_id=victim_id))
            assert reply["type"] == "error" and "already has its own credential" in reply["message"]
            assert _alive(victim), "the node's own connection is not touched"
            assert _status(client, grid, "victim") == "online"
            assert client.get(f"/v1/nodes/{grid}/other-name").status_code == 404
        finally:
            victim.close()


def test_a_node_credential_speaks_for_its_node_only(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        a, a_welcome = join(master.url, token, hello("cred-a"))
        b_id = uuid.uuid4().hex
        b, _ = join(master.url, token, hello("cred-b", node_id=b_id))
        try:
            forged, reply = join(master.url, a_welcome["credential"], hello("cred-b", node_id=b_id))
            assert reply["type"] == "error"
            assert "credential belongs to node id" in reply["message"]
            forged.close()
            assert _alive(b)
            assert _status(client, grid, "cred-b") == "online"
        finally:
            a.close()
            b.close()
        # the credential is not an admin token
        with master.client(a_welcome["credential"]) as as_node:
            assert as_node.get("/v1/grids").status_code == 401


def test_a_reconnect_with_the_credential_replaces_the_old_connection(
    master: MasterProcess, grid: str
) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        node_id = uuid.uuid4().hex
        first, welcome = join(master.url, token, hello("again", node_id=node_id))
        second, reply = join(master.url, welcome["credential"], hello("again", node_id=node_id))
        assert reply["type"] == "welcome" and reply["credential"] is None
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                first.recv(timeout=10)
        assert closed.value.rcvd is not None and "replaced by a new connection" in closed.value.rcvd.reason
        assert _alive(second)
        second.close()


def test_rotating_the_join_token_drops_what_it_admitted(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        old = _join_token(client, grid)
        by_token, welcome = join(master.url, old, hello("by-token"))
        keeper, keeper_welcome = join(master.url, old, hello("keeper"))
        keeper.close()
        wait_until(lambda: _status(client, grid, "keeper") == "offline", 10, "keeper offline")
        keeper, _ = join(
            master.url, keeper_welcome["credential"], hello("keeper", node_id=keeper_welcome["node_id"])
        )
        try:
            rotated = client.post(f"/v1/grids/{grid}/token").json()
            assert rotated["token"] != old and rotated["disconnected"] == 1
            with pytest.raises(ConnectionClosed) as closed:
                while True:
                    by_token.recv(timeout=10)
            assert closed.value.rcvd is not None and "join token was rotated" in closed.value.rcvd.reason
            wait_until(lambda: _status(client, grid, "by-token") == "offline", 10, "by-token offline")
            assert _alive(keeper), "a node connected with its own credential stays"
            with pytest.raises(InvalidStatus) as refused:
                join(master.url, old, hello("newcomer"))
            assert refused.value.response.status_code == 403
            back, reply = join(
                master.url, welcome["credential"], hello("by-token", node_id=welcome["node_id"])
            )
            assert reply["type"] == "welcome", "the node itself reconnects with its credential"
            back.close()
            fresh, reply = join(master.url, rotated["token"], hello("newcomer"))
            assert reply["type"] == "welcome" and reply["credential"]
            fresh.close()
        finally:
            keeper.close()


def test_a_removed_node_cannot_come_back_with_its_credential(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        token = _join_token(client, grid)
        ws, welcome = join(master.url, token, hello("gone"))
        ws.close()
        wait_until(lambda: _status(client, grid, "gone") == "offline", 10, "gone offline")
        assert client.delete(f"/v1/nodes/{grid}/gone").status_code == 200
        with pytest.raises(InvalidStatus) as refused:
            join(master.url, welcome["credential"], hello("gone", node_id=welcome["node_id"]))
        assert refused.value.response.status_code == 403
        again, reply = join(master.url, token, hello("gone", node_id=welcome["node_id"]))
        assert reply["type"] == "welcome" and reply["credential"] != welcome["credential"]
        again.close()


def test_secrets_are_stored_hashed(fresh_master: MasterProcess) -> None:
    from sqlalchemy import create_engine, text

    from moorage.store.database import normalize_url

    with fresh_master.client() as client:
        created = client.post("/v1/grids", json={"name": "hashed"}).json()
        ws, welcome = join(fresh_master.url, created["join_token"], hello("n"))
        ws.close()
        made = client.post("/v1/tokens", json={"name": "ci"}).json()
    secrets = [created["join_token"], welcome["credential"], made["token"], fresh_master.admin_token]
    engine = create_engine(normalize_url(fresh_master.db_url or ""))
    with engine.connect() as conn:
        dump = json.dumps(
            [
                [str(v) for v in row]
                for table in ("grids", "nodes", "admin_tokens")
                for row in conn.execute(text(f"SELECT * FROM {table}"))
            ]
        )
    engine.dispose()
    for secret in secrets:
        assert secret not in dump

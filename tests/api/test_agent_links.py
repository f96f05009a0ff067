"""Volume moves with two masters on one PostgreSQL, as a user behind a load balancer meets them:
whichever master takes the request, it moves data between agents connected to different masters
(the agent's own master passes the streams on over a link: master/agent_links.py). A link that
ends mid-move fails the move and leaves the instance on its source with its data; a link is only
opened by a live master of the store with its key. Real masters, real CLI-free HTTP, fake agents
on real sockets serving their volumes from folders (real tar streams and manifests)."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.conftest import _db_url
from tests.support.fake_agent import FakeNode
from tests.support.folder_volume_data import FolderVolumeData
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

GRID = "links"


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from _db_url("postgresql", tmp_path)  # skipped without PostgreSQL (failed on CI)


@pytest.fixture
def masters(tmp_path: Path, pg_url: str) -> Iterator[tuple[MasterProcess, MasterProcess]]:
    a = MasterProcess(data_dir=tmp_path / "a", db_url=pg_url).start()
    b = MasterProcess(data_dir=tmp_path / "b", db_url=pg_url).start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def _token(a: MasterProcess, b: MasterProcess) -> str:
    return next(m.admin_token for m in (a, b) if (m.data_dir / "admin.token").exists())


@contextmanager
def _node(master: MasterProcess, join: str, name: str, data: FolderVolumeData) -> Iterator[FakeNode]:
    with FakeNode(master.url, join, name, report_volumes=True, volume_data=data) as node:
        wait_until(lambda: node.welcomes, 15, f"{name} to join")
        yield node


def _seen(http: httpx.Client) -> dict[str, datetime]:
    return {m["id"]: datetime.fromisoformat(m["seen_at"]) for m in http.get("/v1/masters").json()["masters"]}


def _every_master_looked_twice(http: httpx.Client) -> None:
    """Each master reads which nodes the others hold at each look: two looks of each after the
    store said where the nodes are, and every master knows."""
    for _ in range(2):
        before = _seen(http)
        wait_until(
            lambda b=before: (now := _seen(http)).keys() >= b.keys() and all(now[k] > b[k] for k in b),
            15,
            "every master to look again",
        )


def _held_by(http: httpx.Client, a: MasterProcess, b: MasterProcess) -> dict[str, str]:
    masters = {m["name"]: m["url"] for m in http.get("/v1/masters").json()["masters"]}
    url_of = {a.url: "a", b.url: "b"}
    nodes = http.get(f"/v1/nodes/{GRID}").json()["nodes"]
    return {
        n["name"]: url_of.get(masters.get(n["master"], ""), "?") for n in nodes if n["status"] == "online"
    }


def _running_on(http: httpx.Client, node: str) -> None:
    def check() -> bool:
        shown = http.get(f"/v1/services/{GRID}/null/db").json()
        return [(c["node"], c["state"]) for c in shown["containers"]] == [(node, "running")]

    wait_until(check, 30, f"db-1 running on {node}")


def _move(http: httpx.Client, docker_volume: str, to: str) -> dict[str, Any]:
    started = http.post(f"/v1/volumes/{GRID}/data/moves", json={"docker_volume": docker_volume, "to": to})
    assert started.status_code == 201, started.text
    job = started.json()["move"]["id"]

    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = http.get(f"/v1/volumes/{GRID}/data/moves/{job}").json()
        return found if found["state"] != "running" else None

    result: dict[str, Any] = wait_until(ended, 60, f"move {job} to end")
    return result


def _setup(http: httpx.Client) -> str:
    assert http.post("/v1/grids", json={"name": GRID}).status_code == 201
    made = http.post(f"/v1/volumes/{GRID}", json={"name": "data", "scope": "instance", "driver": "local"})
    assert made.status_code == 201, made.text
    join: str = http.post(f"/v1/grids/{GRID}/token").json()["token"]
    return join


def _service(http: httpx.Client) -> str:
    created = http.post(
        f"/v1/services/{GRID}",
        json={
            "name": "db",
            "image": "busybox:local",
            "cmd": "sleep 3600",
            "volumes": ["data:/data"],
            "deploy": True,
        },
    )
    assert created.status_code == 201, created.text
    _running_on(http, "node-1")
    (instance,) = http.get(f"/v1/volumes/{GRID}/data").json()["instances"]
    name: str = instance["name"]
    return name


def test_data_moves_between_agents_of_different_masters_through_either_master(
    masters: tuple[MasterProcess, MasterProcess], tmp_path: Path
) -> None:
    a, b = masters
    folders = {n: FolderVolumeData(tmp_path / n) for n in ("node-1", "node-2", "node-3")}
    with a.client(_token(a, b)) as via_a, b.client(_token(a, b)) as via_b, ExitStack() as nodes:
        join = _setup(via_a)
        nodes.enter_context(_node(a, join, "node-1", folders["node-1"]))
        name = _service(via_a)  # the other nodes are not there yet: db-1 and its data are on node-1
        nodes.enter_context(_node(b, join, "node-2", folders["node-2"]))
        nodes.enter_context(_node(a, join, "node-3", folders["node-3"]))
        wait_until(
            lambda: _held_by(via_a, a, b) == {"node-1": "a", "node-2": "b", "node-3": "a"},
            15,
            "each node under its master",
        )
        _every_master_looked_twice(via_a)
        (folders["node-1"].folder(name) / "appendonly.aof").write_bytes(b"SET first yes\n" * 5000)

        # through a: the source is a's own agent, the target b's (reached over a link to b)
        there = _move(via_a, name, "node-2")
        assert there["state"] == "succeeded", there["message"]
        assert (there["source"], there["target"]) == ("node-1", "node-2")
        on_2 = folders["node-2"].folder(name)
        assert (on_2 / "appendonly.aof").read_bytes() == b"SET first yes\n" * 5000
        _running_on(via_b, "node-2")

        # through b: the source is b's own agent, the target a's; more data written meanwhile
        (on_2 / "later").write_text("written on node-2")
        on = _move(via_b, name, "node-3")
        assert on["state"] == "succeeded", on["message"]
        on_3 = folders["node-3"].folder(name)
        assert (on_3 / "later").read_text() == "written on node-2"
        assert (on_3 / "appendonly.aof").read_bytes() == b"SET first yes\n" * 5000
        _running_on(via_a, "node-3")
        for http in (via_a, via_b):  # the same from both masters
            shown = http.get(f"/v1/volumes/{GRID}/data").json()
            assert [(i["name"], i["node"]) for i in shown["instances"]] == [(name, "node-3")]
            assert sorted(r["node"] for r in shown["retired"]) == ["node-1", "node-2"]


def test_a_link_that_ends_mid_move_fails_it_and_the_instance_stays_on_its_source(
    masters: tuple[MasterProcess, MasterProcess], tmp_path: Path
) -> None:
    """Master b (holding the target's agent) is killed while a's move has copied its first pass:
    the link ends, the move fails saying so, db-1 runs on node-1 with its data as before."""
    a, b = masters
    folders = {n: FolderVolumeData(tmp_path / n) for n in ("node-1", "node-2")}
    with a.client(_token(a, b)) as via_a, ExitStack() as nodes:
        join = _setup(via_a)
        nodes.enter_context(_node(a, join, "node-1", folders["node-1"]))
        name = _service(via_a)
        nodes.enter_context(_node(b, join, "node-2", folders["node-2"]))
        wait_until(
            lambda: _held_by(via_a, a, b) == {"node-1": "a", "node-2": "b"}, 15, "each node under its master"
        )
        _every_master_looked_twice(via_a)
        source = folders["node-1"].folder(name)
        (source / "appendonly.aof").write_bytes(b"SET kept yes\n" * 3000)
        release = threading.Event()
        folders["node-2"].hold["manifest"] = release  # the target's check after the first pass
        started = via_a.post(f"/v1/volumes/{GRID}/data/moves", json={"docker_volume": name, "to": "node-2"})
        assert started.status_code == 201, started.text
        job = started.json()["move"]["id"]
        try:
            wait_until(folders["node-2"].reached.is_set, 30, "the move's first pass to end")
            assert b.proc is not None
            os.kill(b.proc.pid, signal.SIGKILL)
            b.proc.wait()
            b.proc = None
        finally:
            release.set()
        failed = wait_until(
            lambda: (
                (m := via_a.get(f"/v1/volumes/{GRID}/data/moves/{job}").json())["state"] != "running" and m
            ),
            30,
            "the move to end",
        )
        assert failed["state"] == "failed", failed
        assert "the link to node node-2 through master" in failed["message"], failed
        _running_on(via_a, "node-1")
        assert (source / "appendonly.aof").read_bytes() == b"SET kept yes\n" * 3000
        shown = via_a.get(f"/v1/volumes/{GRID}/data").json()
        assert [(i["name"], i["node"]) for i in shown["instances"]] == [(name, "node-1")]


def test_only_a_live_master_with_its_key_opens_a_link(masters: tuple[MasterProcess, MasterProcess]) -> None:
    a, b = masters
    with a.client(_token(a, b)) as via_a:
        ids = [m["id"] for m in via_a.get("/v1/masters").json()["masters"]]
    url = b.url.replace("http://", "ws://") + "/v1/agent-links/0123456789abcdef"
    for headers in (
        {},  # nothing
        {"x-moorage-master": "not-a-master", "authorization": "Bearer x"},
        *({"x-moorage-master": i, "authorization": "Bearer a-guessed-key"} for i in ids),  # a's id too
        {"x-moorage-master": ids[0]},  # an id without a key
    ):
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, open_timeout=10).close()
        assert refused.value.response.status_code == 403, headers

"""``POST /v1/nodes/{grid}/{node}/drain`` and ``/undrain`` against a real master (SQLite and
PostgreSQL) with fake agents over real WebSockets: a drained node takes no instance, its
instances move off in a deployment (stateless ones re-planned, zone-topology ones re-attaching
in their zone), node-topology ones with their data by real volume move jobs (the fake agents
serve their volumes from folders: real tar streams and manifests) to the node the scheduler
picks; what cannot go anywhere stays, running, with its reason, and so does an instance whose
move failed; a dry run changes nothing; bad input is refused with words. The same on real
engines: tests/e2e/test_e2e_topology.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fake_agent import FakeNode
from tests.support.folder_volume_data import FolderVolumeData
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

ZDIR = [{"name": "local", "scope": "local"}, {"name": "zdir", "scope": "global"}]


@contextmanager
def _nodes(
    master: MasterProcess,
    grid: str,
    *names: str,
    data: Mapping[str, FolderVolumeData] | None = None,
    **kw: Any,
) -> Iterator[list[FakeNode]]:
    """Fake agents ``names`` (``name@zone`` gives a zone label), online and reporting; ``data``:
    by node name, the folders its volumes' data is served from (for volume moves)."""
    with master.client() as client:
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
    with ExitStack() as stack:
        nodes = []
        for spec in names:
            name, _, zone = spec.partition("@")
            labels = [f"zone={zone}"] if zone else None
            nodes.append(
                stack.enter_context(
                    FakeNode(
                        master.url,
                        token,
                        name,
                        report_volumes=True,
                        labels=labels,
                        volume_data=(data or {}).get(name),
                        **kw,
                    )
                )
            )
        with master.client() as client:
            wait_until(
                lambda: {n["name"] for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]
                         if n["status"] == "online"} >= {n.node_name for n in nodes},
                15,
                "the fake nodes online",
            )  # fmt: skip
        yield nodes


def _service(client: httpx.Client, grid: str, name: str, **body: Any) -> None:
    created = client.post(
        f"/v1/services/{grid}",
        json={"name": name, "image": "busybox:local", "cmd": "sleep 3600", "deploy": True, **body},
    )
    assert created.status_code == 201, created.text


def _where(client: httpx.Client, grid: str, name: str) -> dict[int, tuple[str | None, str]]:
    """Instance number -> (node, state) of a null-stack service."""
    shown = client.get(f"/v1/services/{grid}/null/{name}").json()
    return {c["instance"]: (c["node"], c["state"]) for c in shown["containers"]}


def _running(client: httpx.Client, grid: str, name: str, count: int) -> dict[int, tuple[str | None, str]]:
    def check() -> dict[int, tuple[str | None, str]] | None:
        found = _where(client, grid, name)
        return found if len(found) == count and all(s == "running" for _, s in found.values()) else None

    result: dict[int, tuple[str | None, str]] = wait_until(
        check, 20, f"{count} instance(s) of {name} running"
    )
    return result


def _finished(client: httpx.Client, deployment: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        shown: dict[str, Any] = client.get(f"/v1/deployments/{deployment}").json()
        return shown if shown["state"] != "running" else None

    result: dict[str, Any] = wait_until(check, 30, f"deployment {deployment} to finish")
    return result


def _drain(client: httpx.Client, grid: str, node: str, dry_run: bool = False) -> dict[str, Any]:
    answer = client.post(f"/v1/nodes/{grid}/{node}/drain", params={"dry_run": "true"} if dry_run else None)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def test_drain_moves_stateless_instances_off_and_the_node_takes_none_until_undrained(
    master: MasterProcess, grid: str
) -> None:
    with _nodes(master, grid, "node-1", "node-2"), master.client() as client:
        _service(client, grid, "web", instances=2)
        before = _running(client, grid, "web", 2)
        assert sorted(node for node, _ in before.values()) == ["node-1", "node-2"]
        on_1 = next(n for n, (node, _) in before.items() if node == "node-1")

        report = _drain(client, grid, "node-1")
        assert report["node"]["drained"] is True and report["dry_run"] is False
        assert report["moving"] == [
            {
                "instance": f"web-{on_1}",
                "service": f"{grid}/null/web",
                "number": on_1,
                "how": "replan",
                "to": "node-2",
                "volume_instance": None,
                "volume": None,
                "bytes": None,
                "job": None,
            }
        ]
        assert report["staying"] == []
        assert _finished(client, report["deployment"])["state"] == "success"
        assert {node for node, _ in _running(client, grid, "web", 2).values()} == {"node-2"}

        shown = client.get(f"/v1/nodes/{grid}/node-1").json()
        assert shown["drained"] is True
        listed = {n["name"]: n["drained"] for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]}
        assert listed == {"node-1": True, "node-2": False}

        _service(client, grid, "late", instances=2)  # new instances: none on the drained node
        assert {node for node, _ in _running(client, grid, "late", 2).values()} == {"node-2"}

        undrained = client.post(f"/v1/nodes/{grid}/node-1/undrain")
        assert undrained.status_code == 200, undrained.text
        assert undrained.json()["drained"] is False
        again = client.post(f"/v1/services/{grid}/null/web/deploy").json()["deployment"]
        assert _finished(client, again)["state"] == "success"
        # nothing moves back by itself: running instances stay where they are
        assert {node for node, _ in _running(client, grid, "web", 2).values()} == {"node-2"}
        _service(client, grid, "later", instances=2)
        assert sorted(n for n, _ in _running(client, grid, "later", 2).values()) == ["node-1", "node-2"]


def test_a_dry_run_says_what_would_move_and_changes_nothing(master: MasterProcess, grid: str) -> None:
    with _nodes(master, grid, "node-1", "node-2"), master.client() as client:
        _service(client, grid, "web", instances=2)
        before = _running(client, grid, "web", 2)
        deployments_before = client.get(f"/v1/grids/{grid}").json()

        preview = _drain(client, grid, "node-1", dry_run=True)
        assert preview["dry_run"] is True and preview["deployment"] is None
        assert preview["node"]["drained"] is False
        assert [(m["how"], m["to"]) for m in preview["moving"]] == [("replan", "node-2")]
        assert client.get(f"/v1/nodes/{grid}/node-1").json()["drained"] is False
        assert _where(client, grid, "web") == before
        assert client.get(f"/v1/grids/{grid}").json() == deployments_before

        report = _drain(client, grid, "node-1")  # the real one does what the preview said
        assert [(m["instance"], m["how"], m["to"]) for m in report["moving"]] == [
            (m["instance"], m["how"], m["to"]) for m in preview["moving"]
        ]
        _finished(client, report["deployment"])
        after = _drain(client, grid, "node-1", dry_run=True)
        assert after["moving"] == [] and after["staying"] == []
        assert after["node"]["drained"] is True


def test_draining_again_is_the_same_and_what_has_nowhere_to_go_stays_running(
    master: MasterProcess, grid: str
) -> None:
    with _nodes(master, grid, "node-1"), master.client() as client:
        _service(client, grid, "web")
        assert _running(client, grid, "web", 1) == {1: ("node-1", "running")}
        first = _drain(client, grid, "node-1")
        assert first["moving"] == []
        assert first["staying"] == [
            {
                "instance": "web-1",
                "service": f"{grid}/null/web",
                "number": 1,
                "reason": "0/1 nodes available: 1 node(s) drained",
            }
        ]
        assert _finished(client, first["deployment"])["state"] == "error"
        second = _drain(client, grid, "node-1")
        assert second["node"]["drained"] is True
        assert second["staying"] == first["staying"]
        _finished(client, second["deployment"])
        assert _where(client, grid, "web") == {1: ("node-1", "running")}, "never stopped for want of a node"


def _folders(tmp_path: Path, *names: str, **failing: str) -> dict[str, FolderVolumeData]:
    """Volume data folders of these nodes; ``failing``: node name (``node_2``) -> its writes' error."""
    return {n: FolderVolumeData(tmp_path / n, fail_writes=failing.get(n.replace("-", "_"))) for n in names}


def _volume(client: httpx.Client, grid: str, name: str) -> None:
    made = client.post(f"/v1/volumes/{grid}", json={"name": name, "scope": "instance", "driver": "local"})
    assert made.status_code == 201, made.text


def _move_ended(client: httpx.Client, grid: str, volume: str, job: str) -> dict[str, Any]:
    def ended() -> dict[str, Any] | None:
        found: dict[str, Any] = client.get(f"/v1/volumes/{grid}/{volume}/moves/{job}").json()
        return found if found["state"] != "running" else None

    result: dict[str, Any] = wait_until(ended, 60, f"move {job} to end")
    return result


def test_a_node_topology_instance_moves_with_its_data_to_the_node_the_scheduler_picks(
    master: MasterProcess, grid: str, tmp_path: Path
) -> None:
    folders = _folders(tmp_path, "node-1", "node-2", "node-3", "node-4")
    with _nodes(master, grid, "node-2", data=folders), master.client() as client:
        _volume(client, grid, "data")
        _service(client, grid, "db", volumes=["data:/data"], affinity=["node!=node-4"])
        assert _running(client, grid, "db", 1) == {1: ("node-2", "running")}
        (made,) = client.get(f"/v1/volumes/{grid}/data").json()["instances"]
        first = folders["node-2"].folder(made["name"])
        (first / "appendonly.aof").write_bytes(b"SET kept yes\n" * 1000)
        (first / "dir").mkdir()
        (first / "dir" / "small").write_text("x")
        size = 13 * 1000 + 1
        with _nodes(master, grid, "node-1", data=folders):
            # moved to node-1 by hand: node-2 keeps a retired copy of that name
            body = {"docker_volume": made["name"], "to": "node-1"}
            started = client.post(f"/v1/volumes/{grid}/data/moves", json=body)
            assert started.status_code == 201, started.text
            assert _move_ended(client, grid, "data", started.json()["move"]["id"])["state"] == "succeeded"
            assert _running(client, grid, "db", 1) == {1: ("node-1", "running")}
            source = folders["node-1"].folder(made["name"])
            with _nodes(master, grid, "node-3", "node-4", data=folders):
                _drain_moves_it_to_node_3(client, grid, made, folders, source, size)


def _drain_moves_it_to_node_3(
    client: httpx.Client,
    grid: str,
    made: dict[str, Any],
    folders: dict[str, FolderVolumeData],
    source: Path,
    size: int,
) -> None:
    """node-2 holds a retired copy of the name (the data cannot be written there), node-4 is
    outside the service's affinity: node-3 is the one the scheduler picks."""
    moves_before = client.get(f"/v1/volumes/{grid}/data/moves").json()
    preview = _drain(client, grid, "node-1", dry_run=True)
    assert preview["moving"] == [
        {
            "instance": "db-1",
            "service": f"{grid}/null/db",
            "number": 1,
            "how": "data",
            "to": "node-3",
            "volume_instance": made["name"],
            "volume": "data",
            "bytes": size,
            "job": None,
        }
    ]
    assert client.get(f"/v1/volumes/{grid}/data/moves").json() == moves_before, "a dry run moves nothing"

    report = _drain(client, grid, "node-1")
    (moving,) = report["moving"]
    assert {k: moving[k] for k in ("how", "to", "bytes")} == {"how": "data", "to": "node-3", "bytes": size}
    assert report["staying"] == []
    done = _move_ended(client, grid, "data", moving["job"])
    assert done["state"] == "succeeded", done["message"]
    assert (done["source"], done["target"], done["instances"]) == ("node-1", "node-3", ["db-1"])
    target = folders["node-3"].folder(made["name"])
    assert (target / "appendonly.aof").read_bytes() == b"SET kept yes\n" * 1000
    assert (target / "dir" / "small").read_text() == "x"
    assert (source / "appendonly.aof").exists(), "the source is kept"
    shown = client.get(f"/v1/volumes/{grid}/data").json()
    assert [(i["name"], i["node"]) for i in shown["instances"]] == [(made["name"], "node-3")]
    assert [(r["name"], r["node"]) for r in shown["retired"]] == [
        (made["name"], "node-2"),
        (made["name"], "node-1"),
    ], "oldest first"
    assert _running(client, grid, "db", 1) == {1: ("node-3", "running")}
    after = _drain(client, grid, "node-1", dry_run=True)
    assert after["moving"] == [] and after["staying"] == []


def test_a_drain_whose_master_is_killed_mid_move_runs_again_cleanly(
    fresh_master: MasterProcess, tmp_path: Path
) -> None:
    """The master SIGKILLed while a drain's move has copied its first pass: the next master
    fails that move (the instance runs on node-1 as before, with its data); draining again moves
    it, over the partial copy the killed move left on node-2."""
    master = fresh_master
    with master.client() as client:
        assert client.post("/v1/grids", json={"name": "killed"}).status_code == 201
    grid = "killed"
    folders = _folders(tmp_path, "node-1", "node-2")
    with _nodes(master, grid, "node-1", data=folders) as first, master.client() as client:
        _volume(client, grid, "data")
        _service(client, grid, "db", volumes=["data:/data"])
        assert _running(client, grid, "db", 1) == {1: ("node-1", "running")}
        (made,) = client.get(f"/v1/volumes/{grid}/data").json()["instances"]
        source = folders["node-1"].folder(made["name"])
        (source / "appendonly.aof").write_bytes(b"SET kept yes\n" * 300)
        release = threading.Event()
        with _nodes(master, grid, "node-2", data=folders) as second:
            folders["node-2"].hold["manifest"] = release  # the check after the first pass
            (moving,) = _drain(client, grid, "node-1")["moving"]
            try:
                wait_until(folders["node-2"].reached.is_set, 30, "the move's first pass to end")
                assert folders["node-2"].exists(made["name"]), "a partial copy on node-2"
                assert master.proc is not None
                os.kill(master.proc.pid, signal.SIGKILL)
                master.proc.wait()
                master.proc = None
            finally:
                release.set()
            master.start()  # same address and store
            wait_until(
                lambda: all(n.welcomes >= 2 for n in [*first, *second]),
                30,
                "the nodes to join the new master",
            )
            failed = wait_until(
                lambda: (
                    (m := client.get(f"/v1/volumes/{grid}/data/moves/{moving['job']}").json())["state"]
                    != "running"
                    and m
                ),
                30,
                "the killed master's move to be failed",
            )
            assert failed["state"] == "failed", failed
            assert "stopped during it; run it again" in failed["message"], failed
            assert _running(client, grid, "db", 1) == {1: ("node-1", "running")}

            (again,) = _drain(client, grid, "node-1")["moving"]
            assert again["how"] == "data" and again["job"] != moving["job"]
            done = _move_ended(client, grid, "data", again["job"])
            assert done["state"] == "succeeded", done["message"]
            target = folders["node-2"].folder(made["name"])
            assert (target / "appendonly.aof").read_bytes() == b"SET kept yes\n" * 300
            assert _running(client, grid, "db", 1) == {1: ("node-2", "running")}
            shown = client.get(f"/v1/volumes/{grid}/data").json()
            assert [(r["name"], r["node"]) for r in shown["retired"]] == [(made["name"], "node-1")]


def test_no_node_that_can_take_it_with_its_data_keeps_it_running_with_the_reason(
    master: MasterProcess, grid: str, tmp_path: Path
) -> None:
    folders = _folders(tmp_path, "node-1", "node-2")
    with _nodes(master, grid, "node-1", data=folders), master.client() as client:
        _volume(client, grid, "data")
        _service(client, grid, "db", volumes=["data:/data"], affinity=["node==node-1"])
        assert _running(client, grid, "db", 1) == {1: ("node-1", "running")}
        with _nodes(master, grid, "node-2", data=folders):
            report = _drain(client, grid, "node-1")
            assert report["moving"] == []
            (stays,) = report["staying"]
            assert (stays["instance"], stays["service"], stays["number"]) == ("db-1", f"{grid}/null/db", 1)
            # (node-2 is offline to it when a loaded machine made its fake agent miss a heartbeat)
            assert stays["reason"] in (
                f"no node can take it with its data: 0/2 nodes available: 1 node(s) {why}, 1 node(s) drained"
                for why in ("didn't match affinity node==node-1", "offline")
            ), stays
            _finished(client, report["deployment"])
            assert _where(client, grid, "db") == {1: ("node-1", "running")}
            assert client.get(f"/v1/volumes/{grid}/data/moves").json() == {"moves": []}


def test_a_zone_topology_instance_re_attaches_in_its_zone(master: MasterProcess, grid: str) -> None:
    with _nodes(master, grid, "node-1@a", drivers=ZDIR), master.client() as client:
        made = client.post(
            f"/v1/volumes/{grid}",
            json={"name": "zdata", "scope": "instance", "driver": "zdir", "topology": "zone"},
        )
        assert made.status_code == 201, made.text
        _service(client, grid, "zdb", volumes=["zdata:/data"])
        assert _running(client, grid, "zdb", 1) == {1: ("node-1", "running")}
        (made_on,) = client.get(f"/v1/volumes/{grid}/zdata").json()["instances"]
        assert (made_on["node"], made_on["zone"]) == ("node-1", "a")
        with _nodes(master, grid, "node-2@a", "node-3@b", drivers=ZDIR):
            report = _drain(client, grid, "node-1")
            assert [(m["instance"], m["how"], m["to"], m["volume_instance"]) for m in report["moving"]] == [
                ("zdb-1", "reattach", "node-2", made_on["name"])
            ]
            assert _finished(client, report["deployment"])["state"] == "success"
            assert _running(client, grid, "zdb", 1) == {1: ("node-2", "running")}
            (now,) = client.get(f"/v1/volumes/{grid}/zdata").json()["instances"]
            assert (now["name"], now["node"], now["zone"]) == (made_on["name"], "node-2", "a")

            # node-2 drained too: zone a has no other node, and zone b is outside its domain
            second = _drain(client, grid, "node-2")
            (stays,) = second["staying"]
            assert stays["instance"] == "zdb-1"
            assert "outside zone a of volume instance" in stays["reason"], stays
            _finished(client, second["deployment"])
            assert _where(client, grid, "zdb") == {1: ("node-2", "running")}


@pytest.mark.parametrize(
    ("path", "params", "status", "words"),
    [
        pytest.param("/v1/nodes/{grid}/ghost/drain", None, 404, "Node ghost not found in grid {grid}", id="unknown-node"),
        pytest.param("/v1/nodes/{grid}/ghost/undrain", None, 404, "Node ghost not found in grid {grid}", id="undrain-unknown"),
        pytest.param("/v1/nodes/nogrid/node-1/drain", None, 404, "nogrid", id="unknown-grid"),
        pytest.param("/v1/nodes/{grid}/node-1/drain", {"dry_run": "maybe"}, 422, "dry_run", id="dry-run-not-a-bool"),
        pytest.param("/v1/nodes/{grid}/-bad!/drain", None, 422, "node", id="bad-node-name"),
    ],
)  # fmt: skip
def test_bad_drains_are_refused_with_words_and_change_nothing(
    master: MasterProcess, grid: str, path: str, params: dict[str, str] | None, status: int, words: str
) -> None:
    with _nodes(master, grid, "node-1"), master.client() as client:
        answer = client.post(path.format(grid=grid), params=params)
        assert answer.status_code == status, answer.text
        assert words.format(grid=grid) in answer.text
        assert client.get(f"/v1/nodes/{grid}/node-1").json()["drained"] is False


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


def test_the_cli_drains_shows_it_and_exits_1_listing_a_failed_move_with_its_reason(
    master: MasterProcess, grid: str, tmp_path: Path
) -> None:
    folders = _folders(tmp_path, "node-1", "node-2", node_2="No space left on device")
    with _nodes(master, grid, "node-1", data=folders), master.client() as client:
        _volume(client, grid, "data")
        _service(client, grid, "db", volumes=["data:/data"])
        _service(client, grid, "web")
        _running(client, grid, "db", 1)
        assert _running(client, grid, "web", 1) == {1: ("node-1", "running")}
        (made,) = client.get(f"/v1/volumes/{grid}/data").json()["instances"]
        (folders["node-1"].folder(made["name"]) / "dump.rdb").write_bytes(b"r" * 3000)
        with _nodes(master, grid, "node-2", data=folders):
            preview = _moorage(master, grid, tmp_path, "node", "drain", "node-1", "--dry-run")
            assert preview.returncode == 0, preview.stderr
            assert "Draining node-1 would move 2 instance(s) and leave 0 on it" in preview.stdout
            assert (
                f"db-1: to node-2, moved with its data (3000 bytes, 2.9 KiB) by a volume move of {made['name']}"
                in preview.stdout
            ), preview.stdout
            listed = _moorage(master, grid, tmp_path, "node", "ls")
            assert "drained" not in listed.stdout, "a dry run drains nothing"

            drained = _moorage(master, grid, tmp_path, "node", "drain", "node-1")
            assert drained.returncode == 1, drained.stdout + drained.stderr
            (move,) = client.get(f"/v1/volumes/{grid}/data/moves").json()["moves"]
            assert move["state"] == "failed"
            err = " ".join(drained.stderr.split())
            assert (
                f"Staying on node-1: db-1: volume move {move['id']} to node-2 failed: writing on node "
                "node-2: No space left on device; it runs on node-1 as before"
            ) in err, drained.stderr
            assert "node-1 is drained, but 1 instance(s) stayed on it and 0 did not start elsewhere" in err
            assert "web-1: re-planned on node-2" in drained.stdout
            assert f"Moving db-1 to node-2 with its data ({made['name']})" in drained.stdout
            assert _running(client, grid, "web", 1) == {1: ("node-2", "running")}
            assert _running(client, grid, "db", 1) == {1: ("node-1", "running")}, "back on the source"
            shown = client.get(f"/v1/volumes/{grid}/data").json()
            assert [(i["name"], i["node"]) for i in shown["instances"]] == [(made["name"], "node-1")]
            assert shown["retired"] == []
            assert (folders["node-1"].folder(made["name"]) / "dump.rdb").read_bytes() == b"r" * 3000
            wait_until(lambda: made["name"] in folders["node-2"].dropped, 20, "the partial copy removed")
            rows = {
                line.split()[0]: line.split()[1]
                for line in _moorage(master, grid, tmp_path, "node", "ls").stdout.splitlines()[1:]
            }
            # (the status is the node's own: a loaded machine may miss a heartbeat of a fake agent)
            assert rows["node-1"].endswith(",drained") and "drained" not in rows["node-2"], rows
            shown_node = _moorage(master, grid, tmp_path, "node", "show", "node-1")
            assert "drained: yes" in shown_node.stdout
            back = _moorage(master, grid, tmp_path, "node", "undrain", "node-1")
            assert back.returncode == 0 and back.stdout == "node-1: takes instances again\n", back.stderr


def test_drain_and_undrain_are_events_once_each(master: MasterProcess, grid: str) -> None:
    with _nodes(master, grid, "node-1"), master.client() as client:
        _drain(client, grid, "node-1", dry_run=True)  # a dry run records nothing
        _drain(client, grid, "node-1")
        _drain(client, grid, "node-1")  # already drained: nothing changed, no event
        assert client.post(f"/v1/nodes/{grid}/node-1/undrain").status_code == 200
        assert client.post(f"/v1/nodes/{grid}/node-1/undrain").status_code == 200
        events = client.get(f"/v1/grids/{grid}/events", params={"node": "node-1"}).json()["events"]
        kinds = [
            (e["kind"], e["message"], e["actor"])
            for e in events
            if e["kind"].startswith("node.") and "drain" in e["kind"]
        ]
        assert kinds == [
            ("node.drained", "node node-1 drained: it takes no new instances", "admin"),
            ("node.undrained", "node node-1 undrained: it takes instances again", "admin"),
        ], events

"""Issue 2 as a user sees it: nodes online with zones and drivers, liveness, plugins, restarts."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Bed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_node_ls_lists_three_online_nodes_with_zones_and_local_driver(bed: Bed) -> None:
    nodes = json.loads(bed.ok("node", "ls", "--json"))
    assert [(n["name"], n["status"], n["zone"]) for n in nodes] == [
        ("node-1", "online", "a"),
        ("node-2", "online", "b"),
        ("node-3", "online", "c"),
    ]
    for node in nodes:
        assert "local" in [d["name"] for d in node["drivers"]]
    lines = bed.ok("node", "ls").splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "SINCE", "ZONE", "LABELS", "DRIVERS", "MASTER"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1]) for r in rows] == [("node-1", "online"), ("node-2", "online"), ("node-3", "online")]
    assert all("local" in r[-2].split(",") for r in rows)
    masters = {n["master"] for n in nodes}
    assert len(masters) == 1 and None not in masters, "every agent names the one master it is connected to"
    assert all(r[-1] == n["master"] for r, n in zip(rows, nodes, strict=True))


def test_node_show_lists_drivers_with_version_and_scope(bed: Bed) -> None:
    text = bed.ok("node", "show", "node-1")
    assert "status: online since" in text
    assert "- local (version: 20.10" in text and "scope: local)" in text
    assert "- dirvol (version: unknown, scope: local)" in text
    assert "- shared (version: unknown, scope: global)" in text
    assert "dirvol" not in bed.ok("node", "show", "node-3")


def test_stopped_agent_goes_offline_and_comes_back_as_the_same_node(bed: Bed) -> None:
    before = bed.node("node-3")
    bed.ok("testbed", "agent", "stop", "node-3", "--dir", str(bed.directory))
    try:
        offline = bed.wait_status("node-3", "offline", timeout=30)
        assert offline["status_since"] != before["status_since"]
    finally:
        bed.ok("testbed", "agent", "start", "node-3", "--dir", str(bed.directory))
    online = bed.wait_status("node-3", "online", timeout=30)
    assert online["id"] == before["id"]
    assert online["labels"] == before["labels"]


def test_a_plugin_added_later_appears_on_that_node_only(bed: Bed, tmp_path: Path) -> None:
    plugins = bed.directory / "nodes" / "node-3" / "plugins"
    socket = plugins / "later.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "moorage",
            "driver",
            "dirvol",
            "--root",
            str(tmp_path / "later"),
            "--socket",
            str(socket),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: "- later (" in bed.ok("node", "show", "node-3"), 30, "driver 'later' on node-3")
        assert "later" not in bed.ok("node", "show", "node-1")
        assert "later" not in bed.ok("node", "show", "node-2")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert not socket.exists()


def test_master_restart_keeps_grids_nodes_and_labels_and_agents_reconnect(bed: Bed) -> None:
    bed.ok("node", "label", "add", "node-2", "disk=ssd")
    try:
        before = json.loads(bed.ok("node", "ls", "--json"))
        bed.ok("testbed", "master", "restart", "--dir", str(bed.directory))
        after = wait_until(
            lambda: (
                (nodes := json.loads(bed.ok("node", "ls", "--json")))
                and all(n["status"] == "online" for n in nodes)
                and nodes
            ),
            60,
            "every node online after the master restart",
        )
        assert [(n["id"], n["name"], n["labels"]) for n in after] == [
            (n["id"], n["name"], n["labels"]) for n in before
        ]
        assert "disk=ssd" in bed.node("node-2")["labels"]
        assert json.loads(bed.ok("grid", "ls", "--json"))[0]["name"] == "testbed"
    finally:
        bed.ok("node", "label", "rm", "node-2", "disk")


def test_cli_errors_say_how_to_fix_and_exit_1(bed: Bed) -> None:
    result = bed.fails("node", "show", "node-9")
    assert "Node node-9 not found in grid testbed" in result.err
    result = bed.run("node", "ls", "--json")
    assert result.code == 0
    bad = Bed(bed.directory, {**bed.env, "MOORAGE_TOKEN": "wrong"}).fails("node", "ls")
    assert "Token not accepted" in bad.err
    started = time.monotonic()
    away = Bed(bed.directory, {**bed.env, "MOORAGE_URL": "http://127.0.0.1:9"}).fails("node", "ls")
    assert "Cannot reach the master" in away.err
    assert time.monotonic() - started < 30


def test_agents_hold_their_own_credential_and_no_token_shows_in_ps(bed: Bed) -> None:
    import os
    import stat

    from moorage.testbed.state import load_state

    state = load_state(bed.directory)
    assert state is not None and state.master is not None
    join_token = state.master.join_token
    for node in state.nodes:
        assert node.agent is not None
        cmdline = Path(f"/proc/{node.agent.pid}/cmdline").read_bytes().decode()
        assert "agent" in cmdline and join_token not in cmdline, "the join token is not in 'ps'"
        credential = node.agent_dir / "node_credential"
        assert stat.S_IMODE(os.stat(credential).st_mode) == 0o600
        assert credential.read_text().strip() not in (join_token, "")

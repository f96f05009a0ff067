"""Faults on a real testbed: nodes cut off, masters and agents killed, engines power-cut.

One testbed of its own for the module (three nodes, heartbeat every second, so a silent node is
offline after 3 s), so that the faults here never leave another module's testbed damaged.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Bed, running_testbed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

HEARTBEAT = 1.0  # the master's --heartbeat-interval here; offline after 3 missed


@pytest.fixture(scope="module")
def fbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_testbed(
        tmp_path_factory.mktemp("faults") / "config.json",
        "--nodes", "3", "--zones", "a,b,c", "--heartbeat-interval", f"{HEARTBEAT:g}",
    ) as bed:  # fmt: skip
        yield bed


def _testbed(bed: Bed, *args: str) -> str:
    return bed.ok("testbed", *args, "--dir", str(bed.directory))


def _state(bed: Bed) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((bed.directory / "state.json").read_text())
    return state


def _node_state(bed: Bed, name: str) -> dict[str, Any]:
    return next(n for n in _state(bed)["nodes"] if n["name"] == name)


def _master_log(bed: Bed) -> Path:
    return bed.directory / "master" / "master.log"


def _netns(bed: Bed, name: str) -> str:
    from moorage.testbed.engine import EnginePaths

    return EnginePaths(name, bed.directory / "nodes" / name).netns


def _bridge_up(bed: Bed, node: str, bridge: str = "docker0") -> bool:
    out = subprocess.run(
        ["ip", "-n", _netns(bed, node), "-o", "link", "show", bridge],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    flags = re.search(r"<([^>]*)>", out)
    assert flags is not None, out
    return "UP" in flags.group(1).split(",")


def _agent_connection_open(bed: Bed, node: str) -> bool:
    """The node's agent still has an established TCP connection to its relay (the link to the master)."""
    record = _node_state(bed, node)
    pid, port = record["agent"]["pid"], record["relay_port"]
    out = subprocess.run(
        ["ss", "-Htnp", "state", "established", f"( dport = :{port} )"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return f"pid={pid}," in out


def test_a_cut_node_goes_offline_by_missed_heartbeats_and_comes_back_on_heal(fbed: Bed) -> None:
    before = fbed.node("node-3")
    docker = fbed.docker("node-3")
    probe = docker.containers.run("busybox:local", ["sleep", "600"], detach=True, name="cut-probe")
    try:
        probe.reload()
        gateway = probe.attrs["NetworkSettings"]["Gateway"]  # docker0, inside the node's namespace
        assert probe.exec_run(["ping", "-c", "1", "-W", "2", gateway]).exit_code == 0
        log_mark = _master_log(fbed).stat().st_size

        said = _testbed(fbed, "node", "cut", "node-3")
        assert "node-3 cut off" in said and "docker0" in said
        try:
            fbed.wait_status("node-3", "offline", timeout=20)
            log = _master_log(fbed).read_text()[log_mark:]
            assert re.search(r"node node-3 \(\S+\) offline: missed heartbeats", log), log
            assert not re.search(r"node node-3 \(\S+\) offline: connection closed", log), log
            # A partition, not a disconnect: the agent's connection is still open, nothing was reset.
            assert _agent_connection_open(fbed, "node-3")
            assert not _bridge_up(fbed, "node-3")
            assert probe.exec_run(["ping", "-c", "1", "-W", "2", gateway]).exit_code != 0
            assert fbed.node("node-1")["status"] == "online"
        finally:
            healed = _testbed(fbed, "node", "heal", "node-3")
        assert "node-3 healed" in healed
        after = fbed.wait_status("node-3", "online", timeout=30)
        assert after["id"] == before["id"]
        assert _bridge_up(fbed, "node-3")
        assert probe.exec_run(["ping", "-c", "1", "-W", "2", gateway]).exit_code == 0
    finally:
        probe.remove(force=True)


def test_service_show_calls_an_instance_on_a_cut_node_unknown_not_running(fbed: Bed, name: str) -> None:
    fbed.ok("service", "create", "--affinity", "label==zone=c", name, "busybox:local", "--cmd", "sleep 3600")
    fbed.ok("service", "deploy", name)
    assert "running" in _instance_line(fbed, name)
    _testbed(fbed, "node", "cut", "node-3")
    try:
        fbed.wait_status("node-3", "offline", timeout=20)
        line = _instance_line(fbed, name)
        assert "unknown" in line and "node offline (last reported running)" in line, line
        assert "running" not in line.replace("last reported running", "")
    finally:
        _testbed(fbed, "node", "heal", "node-3")
    fbed.wait_status("node-3", "online", timeout=30)
    wait_until(lambda: _instance_line(fbed, name).split()[2] == "running", 30, "the instance running again")
    fbed.ok("service", "rm", "--force", name)


def _instance_line(bed: Bed, service: str) -> str:
    """The service's one instance row in ``service show``."""
    lines = [
        line for line in bed.ok("service", "show", service).splitlines() if line.startswith(f"{service}-1 ")
    ]
    assert len(lines) == 1, lines
    return lines[0]


def test_master_restart_succeeds_and_says_so_when_an_agent_is_dead(fbed: Bed) -> None:
    _testbed(fbed, "agent", "stop", "node-2", "--kill")
    try:
        said = _testbed(fbed, "master", "restart")
        assert "Master restarted." in said
        assert "node-2: not waited for, its agent is not running" in said
        assert fbed.node("node-1")["status"] == "online"
        assert fbed.node("node-3")["status"] == "online"
        assert fbed.node("node-2")["status"] == "offline"
    finally:
        _testbed(fbed, "agent", "start", "node-2")
    assert fbed.node("node-2")["status"] == "online"


def test_cut_and_heal_name_an_unknown_node(fbed: Bed) -> None:
    result = fbed.run("testbed", "node", "cut", "node-9", "--dir", str(fbed.directory))
    assert result.code == 1
    assert "No node 'node-9'" in result.err and "Traceback" not in result.text

"""``moorage up``: a master and one agent on the local engine, in the foreground; Ctrl-C stops both."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Bed
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_up_runs_a_one_node_grid_and_ctrl_c_stops_it(bed: Bed, tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    # The "local" Docker Engine of this machine is one of the testbed's engines.
    env |= {
        "DOCKER_HOST": bed.env["DOCKER_HOST_3"],
        "MOORAGE_DATA_DIR": str(tmp_path / "data"),
        "MOORAGE_CONFIG": str(config),
    }
    log = (tmp_path / "up.log").open("w")
    up = subprocess.Popen(
        [sys.executable, "-m", "moorage", "up", "--listen", f"127.0.0.1:{port}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        # Ctrl-C as in a terminal, however the tests were started: a background job has SIGINT
        # ignored, and a Python started with it ignored leaves it so (Ctrl-C would do nothing).
        preexec_fn=_sigint_as_in_a_terminal,
        start_new_session=True,  # its group: the master and agent it starts, stopped with it
    )
    try:
        wait_until(
            lambda: "Moorage is up" in (tmp_path / "up.log").read_text(), 60, "moorage up to say it is up"
        )
        assert "moorage node ls" in (tmp_path / "up.log").read_text()
        cli = Bed(bed.directory, {"MOORAGE_CONFIG": str(config)})  # logged in by `up` itself
        nodes = wait_until(
            lambda: (n := json.loads(cli.ok("node", "ls", "--json"))) and n[0]["status"] == "online" and n,
            60,
            "the local node online",
        )
        assert len(nodes) == 1 and "local" in [d["name"] for d in nodes[0]["drivers"]]
        assert json.loads(config.read_text())["grid"] == "local"
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    finally:
        with contextlib.suppress(ProcessLookupError):  # `up` and all it started, never left running
            os.killpg(up.pid, signal.SIGKILL)
        up.wait()
        log.close()
    text = (tmp_path / "up.log").read_text()
    assert "Traceback" not in text
    assert "Stopping" in text
    assert (tmp_path / "data" / "master" / "admin.token").exists()

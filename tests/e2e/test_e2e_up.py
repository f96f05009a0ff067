"""``moorage up``: a master and one agent on the local engine, in the foreground; Ctrl-C stops both.
And the README's own first-run commands, pasted as written, against it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.e2e.conftest import Bed
from tests.support.processes import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
LOCAL_IMAGES = ("redis:local", "busybox:local")


def _sigint_as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def running_up(bed: Bed, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Bed, Path]]:
    """``moorage up`` on the testbed's node-3 engine (this machine's "local" engine), said to be up;
    yields the process, a CLI logged in by ``up`` itself, and the log. Killed with its group after."""
    port = free_port()
    config = tmp_path / "config.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env |= {
        "DOCKER_HOST": bed.env["DOCKER_HOST_3"],
        "MOORAGE_DATA_DIR": str(tmp_path / "data"),
        "MOORAGE_CONFIG": str(config),
    }
    log_path = tmp_path / "up.log"
    log = log_path.open("w")
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
        wait_until(lambda: "Moorage is up" in log_path.read_text(), 120, "moorage up to say it is up")
        yield up, Bed(bed.directory, {"MOORAGE_CONFIG": str(config)}), log_path
    finally:
        with contextlib.suppress(ProcessLookupError):  # `up` and all it started, never left running
            os.killpg(up.pid, signal.SIGKILL)
        up.wait()
        log.close()


def test_up_runs_a_one_node_grid_and_ctrl_c_stops_it(bed: Bed, tmp_path: Path) -> None:
    with running_up(bed, tmp_path) as (up, cli, log):
        said = log.read_text()
        assert "moorage node ls" in said
        assert f"Admin token in {tmp_path / 'data' / 'master' / 'admin.token'}" in said
        assert "grid 'local'" in said
        nodes = wait_until(
            lambda: (n := json.loads(cli.ok("node", "ls", "--json"))) and n[0]["status"] == "online" and n,
            60,
            "the local node online",
        )
        assert len(nodes) == 1 and "local" in [d["name"] for d in nodes[0]["drivers"]]
        assert json.loads((tmp_path / "config.json").read_text())["grid"] == "local"
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=30) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert "Stopping" in text
    assert "Running upgrade" not in text, "each Alembic migration logged at start"
    assert (tmp_path / "data" / "master" / "admin.token").exists()


def readme_sh_blocks(section: str) -> list[str]:
    """The ```sh blocks of one ``## section`` of the README, as written."""
    text = README.read_text()
    match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, f"README has no '## {section}' section"
    return re.findall(r"^```sh\n(.*?)^```\n", match.group(1), re.M | re.S)


def test_the_readme_first_run_works_as_written(bed: Bed, tmp_path: Path) -> None:
    """Quick start, then the volume example, pasted in order. ``scripts/run`` is setup (the suite
    runs in its result) and then ``moorage up``, which this test starts on a bare engine."""
    start, *after_start = readme_sh_blocks("Quick start")
    assert [line.split()[0] for line in start.splitlines()] == ["scripts/run", "scripts/test"]
    volumes = readme_sh_blocks("Volumes that stay with their data")
    assert len(after_start) == 1 and len(volumes) == 1
    script = after_start[0] + volumes[0]
    assert "moorage stack install redis.yml" in script and "image: redis:local" in script

    engine = bed.docker("node-3")
    for ref in LOCAL_IMAGES:  # a fresh machine's engine: no such images (containers keep theirs)
        with contextlib.suppress(docker.errors.ImageNotFound):
            engine.images.remove(ref, force=True, noprune=True)
    with running_up(bed, tmp_path) as (_up, cli, log):
        assert "local images: imported busybox:local, redis:local." in log.read_text()
        for ref in LOCAL_IMAGES:
            engine.images.get(ref)
        wait_until(lambda: "online" in cli.ok("node", "ls"), 60, "the local node online")
        work = tmp_path / "work"
        work.mkdir()
        (work / ".venv").symlink_to(sys.prefix)  # `. .venv/bin/activate`, as in a checkout
        try:
            run = subprocess.run(
                ["bash", "-e", "-x", "-c", script],
                cwd=work,
                env={**os.environ, **cli.env},
                capture_output=True,
                text=True,
                timeout=600,
            )
            output = run.stdout + run.stderr
            assert run.returncode == 0, f"the README's commands failed:\n{output}"
            assert "Traceback" not in output
            assert "redis.redis.redis-data-1" in run.stdout  # `volume show`, as the README says
            (container,) = engine.containers.list(
                filters={"label": "io.moorage.service-id=local/redis/redis"}
            )
            assert container.attrs["Mounts"][0]["Name"] == "redis.redis.redis-data-1"
            code, out = container.exec_run(["redis-cli", "ping"])
            assert (code, out.strip()) == (0, b"PONG")
        finally:
            cli.run("stack", "rm", "--force", "redis")
            cli.run("volume", "rm", "--force", "redis-data")
            wait_until(
                lambda: not engine.volumes.list(filters={"name": "redis.redis.redis-data-1"}),
                60,
                "the README's Docker volume removed",
            )

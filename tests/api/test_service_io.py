"""`moorage service logs` and `moorage service exec` as a user runs them: the real CLI, the real
master, and a fake agent on the real socket whose streams are the agent's own code over an
in-memory engine (tests/support/fake_agent.py, fake_engine.py)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from moorage.client.api import ApiError, MasterClient
from tests.support.fake_agent import FakeNode
from tests.support.fake_engine import FakeEngine
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


@dataclass
class Setup:
    master: MasterProcess
    grid: str
    node: FakeNode
    engine: FakeEngine
    env: dict[str, str]

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "moorage", *args],
            env=self.env,
            input=input,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def start(self, *args: str) -> Running:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moorage", *args],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        return Running(proc)


class Running:
    """A CLI command still running: its stdout line by line as it comes."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def next_line(self, timeout: float = 10) -> str:
        return self.lines.get(timeout=timeout)

    def finish(self, timeout: float = 15) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout)
        finally:
            self.proc.kill()
        assert self.proc.stderr is not None
        return code, self.proc.stderr.read()


def _env(master: MasterProcess, grid: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env.update(
        MOORAGE_CONFIG=str(tmp_path / "config.json"),
        MOORAGE_URL=master.url,
        MOORAGE_TOKEN=master.admin_token,
        MOORAGE_GRID=grid,
    )
    return env


@pytest.fixture
def setup(master: MasterProcess, grid: str, tmp_path: Path) -> Iterator[Setup]:
    """Service ``web`` with two instances running on fake node-1."""
    engine = FakeEngine(images=("busybox:local",))
    with master.client() as client:
        created = client.post(
            f"/v1/services/{grid}",
            json={"name": "web", "image": "busybox:local", "cmd": "sleep 3600", "instances": 2},
        )
        assert created.status_code == 201, created.text
        token = client.post(f"/v1/grids/{grid}/token").json()["token"]
        with FakeNode(master.url, token, "node-1", engine=engine) as node:
            wait_until(lambda: node.welcomes, 10, "the fake node to join")
            deployment = client.post(f"/v1/services/{grid}/null/web/deploy").json()["deployment"]
            wait_until(
                lambda: client.get(f"/v1/deployments/{deployment}").json()["state"] == "success",
                15,
                "web to run on node-1",
            )
            yield Setup(master, grid, node, engine, _env(master, grid, tmp_path))


def test_logs_are_prefixed_by_instance_and_node_and_keep_stdout_and_stderr_apart(setup: Setup) -> None:
    setup.engine.print("web-1", "hello from one\nsecond line\n")
    setup.engine.print("web-2", "trouble\n", fd=2)
    done = setup.run("service", "logs", "web")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["web-1@node-1 | hello from one", "web-1@node-1 | second line"]
    assert done.stderr.splitlines() == ["web-2@node-1 | trouble"]
    one = setup.run("service", "logs", "web", "1", "--tail", "1", "--json")
    assert one.returncode == 0, one.stderr
    assert [json.loads(line) for line in one.stdout.splitlines()] == [
        {"instance": 1, "node": "node-1", "stream": "stdout", "line": "second line"}
    ]
    stamped = setup.run("service", "logs", "web", "1", "--since", "10m", "-t")
    assert stamped.stdout.splitlines()[0] == "web-1@node-1 | 2024-01-01T00:00:00.000000000Z hello from one"
    asked = setup.engine.log_requests[-1]
    assert asked["container"] == "web-1" and asked["timestamps"] and asked["since"] > 0


def test_a_followed_log_shows_new_lines_and_ctrl_c_ends_it_on_the_node(setup: Setup) -> None:
    running = setup.start("service", "logs", "-f", "web", "1")
    wait_until(lambda: setup.engine.open_sources(), 10, "the log to be followed on the node")
    setup.engine.print("web-1", "printed after the command started\n")
    assert running.next_line() == "web-1@node-1 | printed after the command started\n"
    running.proc.send_signal(signal.SIGINT)
    code, _ = running.finish()
    assert code == 130
    wait_until(lambda: not setup.engine.open_sources(), 10, "the node to end the followed log")
    assert setup.node.streams is not None and setup.node.streams.join(5)


@pytest.mark.parametrize(
    ("cmd", "code", "stdout", "stderr"),
    [
        pytest.param(["echo", "PONG"], 0, "PONG\n", "", id="echo"),
        pytest.param(["exit", "3"], 3, "", "exiting with 3\n", id="exit-status"),
        pytest.param(["no-such-program"], 127,
                     'OCI runtime exec failed: exec: "no-such-program": executable file not found\n', "",
                     id="not-found"),
    ],
)  # fmt: skip
def test_exec_prints_the_commands_output_and_exits_with_its_status(
    setup: Setup, cmd: list[str], code: int, stdout: str, stderr: str
) -> None:
    done = setup.run("service", "exec", "web", "1", "--", *cmd)
    assert (done.returncode, done.stdout, done.stderr) == (code, stdout, stderr)


def test_exec_with_stdin_passes_it_and_its_end(setup: Setup) -> None:
    text = "".join(f"line {n}\n" for n in range(20000))  # bigger than a stream's window
    done = setup.run("service", "exec", "-i", "web", "2", "--", "cat", input=text)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == text


def test_a_client_that_goes_away_ends_the_command_s_stream_on_the_node(setup: Setup) -> None:
    running = setup.start("service", "exec", "web", "1", "--", "sleep")
    wait_until(lambda: setup.engine.open_sources(), 10, "the command to start on the node")
    running.proc.kill()
    running.finish()
    wait_until(lambda: not setup.engine.open_sources(), 10, "the node to end the command's stream")


def test_what_cannot_be_reached_is_refused_with_the_reason(setup: Setup) -> None:
    cases = [
        (("service", "logs", "nope"), f"Error: Service nope not found in grid {setup.grid}"),
        (("service", "logs", "web", "9"), "Error: Service web has no instance 9 (it has: 1, 2)"),
        (
            ("service", "exec", "web", "9", "--", "echo"),
            "Error: Service web has no instance 9 (it has: 1, 2)",
        ),
    ]
    for args, message in cases:
        done = setup.run(*args)
        assert (done.returncode, done.stdout) == (1, ""), done
        assert done.stderr.startswith(message), done.stderr
    setup.engine.exit("web-2", 0)
    stopped = setup.run("service", "exec", "web", "2", "--", "echo")
    assert stopped.returncode == 1
    assert "instance web-2 on node node-1: Container" in stopped.stderr and "is not running" in stopped.stderr
    bad = setup.run("service", "logs", "web", "--since", "last week")
    assert bad.returncode == 2
    assert "Invalid value for '--since': 'last week' is not a time: give a duration like 10m" in bad.stderr


def test_the_api_checks_its_input_like_every_route(setup: Setup) -> None:
    base = f"/v1/services/{setup.grid}/null/web"
    with setup.master.client() as client:
        since = client.get(f"{base}/logs", params={"since": "yesterday"})
        assert since.status_code == 422
        assert since.json()["error"]["since"].startswith("'yesterday' is not a time")
        tail = client.get(f"{base}/logs", params={"tail": -1})
        assert (tail.status_code, list(tail.json()["error"])) == (422, ["tail"])
        assert client.get(f"{base}/logs", params={"instance": 0}).status_code == 422
    with MasterClient(setup.master.url, None) as anonymous, pytest.raises(ApiError) as refused:
        anonymous.websocket(f"{base}/exec", [("instance", "1"), ("cmd", "echo")])
    assert refused.value.status_code == 401
    with MasterClient(setup.master.url, setup.master.admin_token) as client:
        with pytest.raises(ApiError) as missing:
            client.websocket(f"{base}/exec", [("instance", "1")])
        assert (missing.value.status_code, missing.value.error) == (422, {"cmd": "is required"})
        with pytest.raises(ApiError) as unknown:
            client.websocket(f"/v1/services/{setup.grid}/null/nope/exec", [("instance", "1"), ("cmd", "x")])
        assert unknown.value.status_code == 404


def test_an_instance_on_an_offline_node_is_a_409_naming_the_node(setup: Setup) -> None:
    setup.node.stopping.set()
    setup.node.join(10)
    with setup.master.client() as client:
        wait_until(
            lambda: client.get(f"/v1/nodes/{setup.grid}/node-1").json()["status"] == "offline",
            15,
            "node-1 to be offline",
        )
        answer = client.get(f"/v1/services/{setup.grid}/null/web/logs", params={"instance": 1})
    assert answer.status_code == 409
    assert answer.json()["error"].startswith("node node-1 is offline")
    done = setup.run("service", "exec", "web", "1", "--", "echo")
    assert (done.returncode, done.stderr.splitlines()[0][:29]) == (1, "Error: node node-1 is offline")


def test_a_stopping_master_ends_followed_logs_and_commands(
    fresh_master: MasterProcess, tmp_path: Path
) -> None:
    master = fresh_master
    engine = FakeEngine(images=("busybox:local",))
    with master.client() as client:
        client.post("/v1/grids", json={"name": "g"}).raise_for_status()
        client.post("/v1/services/g", json={"name": "web", "image": "busybox:local", "deploy": True})
        token = client.post("/v1/grids/g/token").json()["token"]
    with FakeNode(master.url, token, "node-1", engine=engine) as node:
        wait_until(lambda: engine.named("web-1"), 15, "web-1 to run on node-1")
        setup = Setup(master, "g", node, engine, _env(master, "g", tmp_path))
        logs = setup.start("service", "logs", "-f", "web")
        command = setup.start("service", "exec", "web", "1", "--", "sleep")
        wait_until(lambda: len(engine.open_sources()) == 2, 10, "both streams to start on the node")
        master.stop()
        assert logs.finish() == (1, "Error: web-1@node-1: the master is stopping\n")
        code, err = command.finish()
        assert (code, err) == (255, "Error: the master is stopping\n")
        wait_until(lambda: not engine.open_sources(), 10, "the node to end both streams")


def test_the_logs_route_is_in_the_openapi_document(master: MasterProcess) -> None:
    document = httpx.get(f"{master.url}/openapi.json").json()
    route = document["paths"]["/v1/services/{grid}/{stack}/{name}/logs"]["get"]
    assert "application/x-ndjson" in route["responses"]["200"]["content"]
    assert {"404", "409", "422"} <= set(route["responses"])

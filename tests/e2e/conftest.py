"""The end-to-end testbed: a real master, three real Docker Engines (node-1..3 in zones a, b, c),
their agents, a ``dirvol`` volume plugin on node-1 and node-2 and a ``shared`` (global) one on all
nodes. Started once per session with the CLI, as a user would, and torn down with the CLI."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import pytest

from tests.support.leftovers import assert_nothing_left
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the testbed needs root (network and mount namespaces)"
    if not Path("/usr/sbin/dockerd").exists() and not Path("/usr/bin/dockerd").exists():
        return "dockerd is not installed (scripts/setup installs docker.io)"
    return None


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Bed:
    directory: Path
    env: dict[str, str]
    clients: dict[str, docker.DockerClient] = field(default_factory=dict)

    def run(self, *args: str, input: str | None = None, timeout: float = 300) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "moorage", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str, timeout: float = 300) -> str:
        result = self.run(*args, timeout=timeout)
        assert result.code == 0, f"moorage {shlex.join(args)} failed ({result.code}):\n{result.text}"
        return result.out

    def fails(self, *args: str) -> Result:
        result = self.run(*args)
        assert result.code == 1, (
            f"moorage {shlex.join(args)} should fail with 1, got {result.code}:\n{result.text}"
        )
        assert "Traceback" not in result.text
        return result

    def docker(self, node: str) -> docker.DockerClient:
        if node not in self.clients:
            index = node.rsplit("-", 1)[1]
            self.clients[node] = docker.DockerClient(base_url=self.env[f"DOCKER_HOST_{index}"], timeout=60)
        return self.clients[node]

    def node(self, name: str) -> dict:
        import json

        return json.loads(self.ok("node", "show", name, "--json"))

    def wait_status(self, name: str, status: str, timeout: float = 30) -> dict:
        return wait_until(
            lambda: (n := self.node(name))["status"] == status and n, timeout, f"{name} {status}"
        )


def _parse_env(text: str) -> dict[str, str]:
    env = {}
    for line in text.splitlines():
        if line.startswith("export "):
            key, _, value = line.removeprefix("export ").partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env


@contextlib.contextmanager
def running_testbed(config: Path, *args: str) -> Iterator[Bed]:
    """A testbed brought up with ``moorage testbed up ARGS`` in a fresh folder, down afterwards."""
    reason = _skip_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"end-to-end tests cannot run: {reason}")
        pytest.skip(reason)
    directory = Path(f"/tmp/mrg-e2e-{uuid.uuid4().hex[:6]}")
    setup = Bed(directory=directory, env={"MOORAGE_CONFIG": str(config)})
    up = setup.run("testbed", "up", *args, "--dir", str(directory), timeout=600)
    try:
        assert up.code == 0, f"testbed up failed:\n{up.text}"
        setup.env.update(_parse_env(up.out))
        yield setup
    finally:
        for client in setup.clients.values():
            client.close()
        down = setup.run("testbed", "down", "--dir", str(directory), timeout=300)
        assert down.code == 0, f"testbed down failed:\n{down.text}"
        nodes = [f"node-{i}" for i in range(1, int(args[args.index("--nodes") + 1]) + 1)]
        assert_nothing_left(directory, nodes)
        # no mount left under it (checked just above): the image cache 'testbed down' keeps for a
        # next 'up' in the same folder goes too, since no test uses this folder again
        shutil.rmtree(directory)


@pytest.fixture(scope="session")
def bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bed]:
    with running_testbed(
        tmp_path_factory.mktemp("cli") / "config.json",
        "--nodes", "3", "--zones", "a,b,c", "--driver", "dirvol@node-1,node-2", "--shared-driver", "shared",
    ) as setup:  # fmt: skip
        yield setup


@pytest.fixture
def name() -> str:
    """A unique name for this test's stacks, services and volumes."""
    return f"t{uuid.uuid4().hex[:6]}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A report, not a test: what the engine steps cost on this machine, and what the rollouts
    through faults showed, when they ran."""
    from tests.e2e.test_e2e_masters import FIGURES as MASTERS
    from tests.e2e.test_rollout_faults import FIGURES
    from tests.e2e.test_testbed_engines import TIMINGS

    if TIMINGS:
        terminalreporter.section("testbed engine timings on this machine")
        for what, seconds in TIMINGS.items():
            terminalreporter.write_line(f"  {what:55s} {seconds:6.2f} s")
    if FIGURES:
        terminalreporter.section("rolling upgrades of 10 instances through faults")
        for test, figures in FIGURES.items():
            terminalreporter.write_line(f"  {test}: {figures}")
    if MASTERS:
        terminalreporter.section("two masters behind HAProxy")
        for what, figures in MASTERS.items():
            terminalreporter.write_line(f"  {what}: {figures}")

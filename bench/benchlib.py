"""What the benchmarks share: a 1-node testbed, a master alone, the machine, timing and CPU helpers.

Everything runs on this machine: one ``dockerd`` in its own network namespace (the testbed's node-1),
the master on 127.0.0.1 and the node's agent; or, for the API benches, only the master
(``Master``: ``python -m moorage master`` on a free loopback port, SQLite in its data dir or a
fresh PostgreSQL database from ``fresh_pg_database``). Whatever a bench starts it stops, by pid (through the
testbed's own ``down``), never by name. Measurements that are compared run one after the other in
the same testbed, in rotated order, so that what else runs on the machine weighs on all of them.
"""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import docker
import httpx

from moorage.client.api import MasterClient
from moorage.testbed import Testbed
from moorage.testbed.state import BedState

T = TypeVar("T")
R = TypeVar("R")

TICKS = os.sysconf("SC_CLK_TCK")
IMAGE = "busybox:local"


class BenchError(Exception):
    """A bench cannot run or a measurement went wrong; the message says which and why."""


def machine() -> str:
    """``machine: 2 CPUs (model), 23.4 GiB memory, Linux 6.1, Python 3.11``."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"machine: {os.cpu_count()} CPUs ({model or platform.machine()}), {memory:.1f} GiB memory, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of one process so far (``/proc/<pid>/stat`` utime + stime)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def parallel(function: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``function`` on every item, ``workers`` at a time; the first error is raised after all finished."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
        futures = [pool.submit(function, item) for item in items]
    return [f.result() for f in futures]


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def rotations(names: Sequence[str], runs: int) -> list[list[str]]:
    """The order of the measurements in each run: rotated, so that none always goes first."""
    return [[names[(r + i) % len(names)] for i in range(len(names))] for r in range(runs)]


def load_average() -> float:
    """The 1-minute load average: other work on the machine skews absolute times (ratios hold better)."""
    return os.getloadavg()[0]


@dataclass
class Bed:
    """A running 1-node testbed: its state, the engine (docker-py) and the master (REST client)."""

    testbed: Testbed
    state: BedState
    docker_host: str
    api: docker.APIClient
    master: MasterClient
    grid: str

    @property
    def master_pid(self) -> int:
        assert self.state.master is not None and self.state.master.process is not None
        return self.state.master.process.pid

    @property
    def agent_pid(self) -> int:
        agent = self.state.nodes[0].agent
        assert agent is not None
        return agent.pid

    def cpu(self) -> tuple[float, float]:
        """CPU seconds so far of the master and of the agent."""
        return cpu_seconds(self.master_pid), cpu_seconds(self.agent_pid)


@contextmanager
def one_node_bed(directory: Path, *, max_pool_size: int = 64) -> Iterator[Bed]:
    """A fresh 1-node testbed (master, agent, engine) in ``directory``; always taken down afterwards.

    Its engine's network namespace and cgroup are named after the folder, so it never touches
    another testbed on the same host (but shares the CPUs with it: see ``load_average``).
    """
    testbed = Testbed(directory)
    api: docker.APIClient | None = None
    master: MasterClient | None = None
    try:
        state = testbed.up(nodes=1)
        assert state.master is not None
        docker_host = state.nodes[0].paths.docker_host
        api = docker.APIClient(base_url=docker_host, timeout=120, max_pool_size=max_pool_size)
        master = MasterClient(state.master.url, state.master.admin_token, timeout=120)
        yield Bed(testbed, state, docker_host, api, master, state.master.grid)
    finally:
        if master is not None:
            master.close()
        if api is not None:
            api.close()
        testbed.down()


def log(message: str) -> None:
    """Progress goes to stderr; the figures go to stdout."""
    print(message, file=sys.stderr, flush=True)


# -- a master alone (the API benches) ---------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def fresh_pg_database(url: str) -> Iterator[str]:
    """A new empty database on the server of ``url``, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from moorage.store.database import normalize_url

    name = f"moorage_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalize_url(url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()


@dataclass
class Master:
    """``python -m moorage master`` on a free loopback port: its store in ``data_dir`` (SQLite) or
    at ``db_url``, its output in ``master.log`` beside the data dir; ``start`` waits for /v1/ping."""

    data_dir: Path
    db_url: str | None
    heartbeat_interval: float = 5.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "master.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [
            sys.executable, "-m", "moorage", "master",
            "--listen", f"127.0.0.1:{self.port}",
            "--data-dir", str(self.data_dir),
            "--heartbeat-interval", str(self.heartbeat_interval),
        ]  # fmt: skip
        if self.db_url:
            cmd += ["--db", self.db_url]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the master exited with {self.proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v1/ping", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the master did not answer /v1/ping within 60 s:\n{self.log_tail()}")

    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text()[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

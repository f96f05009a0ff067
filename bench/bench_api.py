"""How the master's REST API holds up under load while agents heartbeat. One figure per line.

    python bench/bench_api.py                 # 1,000 agents, 500 requests/s for 20 s (about a minute)
    python bench/bench_api.py --smoke         # 20 agents, 50 requests/s for 2 s, to check it still runs
    python bench/bench_api.py --db postgresql://moorage:moorage@127.0.0.1:5432/moorage
    python bench/bench_api.py --profile DIR   # also py-spy the master during both runs (raw stacks in DIR)
    python bench/bench_api.py --masters 2 --db postgresql://moorage:moorage@127.0.0.1:5432/moorage

Three processes on loopback: the master (``python -m moorage master``, SQLite in a temp dir, or a
fresh database made on the PostgreSQL server ``--db`` names and dropped afterwards), a swarm of
simulated agents (asyncio + websockets, one connection and one node each, speaking the real
protocol: hello, then a heartbeat every interval the master's welcome names) and this one, the load
generator: an httpx.AsyncClient sending requests open-loop at a fixed rate (request i is sent at
start + i/rate whether or not earlier ones have answered), a bounded number of them, each timed with
time.perf_counter from send to the whole response read.

The mix: 80% ``GET /v1/volumes/{grid}`` (the grid has --volumes definitions, 50, and --services
stand-alone services, 20, mounting two of them each), 10% ``POST`` of a new volume and 10% ``DELETE``
of one created earlier. The same load runs twice against the same
master: first with no agents (the baseline), then with all agents connected and heartbeating; the
ratio lines compare the two. Target (issue 5, scenario 4): p99 <= 50 ms at 500 requests/s on SQLite.

``--masters 2`` (PostgreSQL): the same load, with agents, first against one master, then spread
over two masters of the same store (each request lane and half the agents on each); the ratio
lines compare them. Then the failover: a service deployed through the master that does not lead
(the time until its instance is placed, on a healthy pair), the leader killed with SIGKILL, and
the same deploy asked of the survivor at once: the time until the survivor leads and until that
instance is placed (deployments progressing again), against the healthy figure.

Exit status 1 when the bench itself could not run: agents that could not join, requests answered
with an unexpected status. Slow answers and timeouts are figures, not failures.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchlib import Master, fresh_pg_database, percentile
from moorage.protocol import Heartbeat

PHASES = ("baseline", "agents")
KINDS = ("list", "create", "delete")
MIX = ("list",) * 8 + ("create", "delete")  # request i has kind MIX[i % 10]
CHURN_POOL = 20  # volumes made up front so a DELETE always has one to remove
TARGET_P99_MS = 50.0  # issue 5, scenario 4: at 500 requests/s with 1,000 agents, on SQLite
TARGET_RATE = 500.0
TARGET_AGENTS = 1000
WARM_UP_SHARE = 0.1  # each run starts with this share of its duration at the same rate, not counted,
WARM_UP_MIN = 1.0  # and at least this many seconds
COST_SAMPLES = 200  # requests of each kind for the CPU-per-request figures
CONNECTIONS = 32  # the load generator's keep-alive connections (lanes), one request in flight on each


def run(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """asyncio.run on uvloop when it is installed (it is, with uvicorn[standard])."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(main())
    return uvloop.run(main())


def raise_fd_limit() -> None:
    """1,000 agents are 1,000 sockets in the swarm and in the master (which inherits this)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the agents (a process of their own) -------------------------------------------------------------


@dataclass(frozen=True)
class SwarmConfig:
    ws_url: str
    token: str
    count: int
    prefix: str
    connect_concurrency: int = 50


def hello(node_id: str, name: str) -> str:
    return json.dumps(
        {
            "type": "hello",
            "node_id": node_id,
            "name": name,
            "labels": [f"zone=zone-{hash(name) % 5}"],
            "info": {
                "engine_version": "24.0.7",
                "cpus": 4,
                "memory": 8 << 30,
                "drivers": [{"name": "local", "scope": "local"}],
            },
        }
    )


class Swarm:
    """``count`` simulated agents: each one connection, one node, heartbeats on the master's interval."""

    def __init__(self, config: SwarmConfig) -> None:
        self.config = config
        self.sockets: list[Any] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.heartbeats = 0
        self.dropped = 0
        self.failed: list[str] = []
        self.interval = 5.0

    async def join(self, n: int, gate: asyncio.Semaphore) -> None:
        from websockets.asyncio.client import connect

        name = f"{self.config.prefix}-{n:05d}"
        async with gate:
            try:
                ws = await connect(
                    self.config.ws_url,
                    additional_headers={"Authorization": f"Bearer {self.config.token}"},
                    open_timeout=60,
                    max_size=2**24,
                )
                await ws.send(hello(f"node-{name}", name))
                welcome = json.loads(await asyncio.wait_for(ws.recv(), 60))
            except Exception as err:
                self.failed.append(f"{name}: {type(err).__name__}: {err}")
                return
        if welcome.get("type") != "welcome":
            self.failed.append(f"{name}: answered {welcome}")
            await ws.close()
            return
        self.interval = float(welcome["heartbeat_interval"])
        self.sockets.append(ws)
        self.tasks.append(asyncio.create_task(self.receive(ws)))
        self.tasks.append(asyncio.create_task(self.beat(ws, float(welcome["heartbeat_interval"]))))

    async def receive(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for _ in ws:  # desired states; nothing to converge
                pass
        except ConnectionClosed:
            pass
        self.dropped += 1

    async def beat(self, ws: Any, interval: float) -> None:
        from websockets.exceptions import ConnectionClosed

        beat = Heartbeat().model_dump_json()  # as the real agent sends it
        next_at = time.monotonic() + random.uniform(0, interval)  # spread evenly over the interval
        with contextlib.suppress(ConnectionClosed):
            while True:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                await ws.send(beat)
                self.heartbeats += 1
                next_at += interval

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)


def swarm_main(config: SwarmConfig, pipe: multiprocessing.connection.Connection) -> None:
    """Entry of the agents' process: join all, report, heartbeat until told to stop, report."""

    async def main() -> None:
        swarm = Swarm(config)
        gate = asyncio.Semaphore(config.connect_concurrency)
        start = time.perf_counter()
        await asyncio.gather(*(swarm.join(n, gate) for n in range(config.count)))
        pipe.send(
            {
                "joined": len(swarm.sockets),
                "failed": swarm.failed[:5],
                "failed_count": len(swarm.failed),
                "seconds": time.perf_counter() - start,
                "interval": swarm.interval,
            }
        )
        # Beats counted only between the two marks the load generator sends around its run.
        await asyncio.to_thread(pipe.recv)  # "mark"
        beats, since = swarm.heartbeats, time.perf_counter()
        await asyncio.to_thread(pipe.recv)  # "stop"
        window = time.perf_counter() - since
        report = {"heartbeats": swarm.heartbeats - beats, "window": window, "dropped": swarm.dropped}
        await swarm.close()
        pipe.send(report)

    run(main)


class SwarmProcess:
    def __init__(self, config: SwarmConfig) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipe, child = ctx.Pipe()
        self.proc = ctx.Process(target=swarm_main, args=(config, child), name="agent-swarm")
        self.proc.start()
        child.close()

    def receive(self, timeout: float) -> dict[str, Any]:
        if not self.pipe.poll(timeout):
            raise RuntimeError(f"the agent swarm did not report within {timeout:.0f} s")
        report: dict[str, Any] = self.pipe.recv()
        return report

    def send(self, message: str) -> None:
        self.pipe.send(message)

    def stop(self, wait: float = 30) -> None:
        """Wait for the swarm to end after "stop"; kill it (by pid) if it does not."""
        if self.proc.is_alive():
            self.proc.join(timeout=wait)
        if self.proc.is_alive() and self.proc.pid is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.join()


# -- the load ------------------------------------------------------------------------------------------


@dataclass
class Sample:
    kind: str
    latency: float  # seconds, send to whole response
    error: str | None  # None, "status <code>", or the exception's name
    sent: float
    done: float
    lag: float = 0.0  # how late the generator sent it after its due time (it should stay near 0)


class LaneError(Exception):
    """The connection broke or answered something that is not HTTP/1.1 with a Content-Length."""


@dataclass(frozen=True)
class Answer:
    status_code: int
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode(errors="replace")


class Lane:
    """One keep-alive HTTP/1.1 connection to the master, one request at a time on it.

    The load's client: it writes each request in one piece and reads the status line, the headers
    and exactly Content-Length bytes of body (uvicorn always sends it for these routes), so the
    master is timed from the first byte sent to the last byte read. httpx did the same for about
    two milliseconds of CPU per request: at 500 requests/s the load generator took a whole core of
    the two, and its late sends, not the master, set the latencies.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.prefix = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        if self.writer is None or self.reader is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = f"{method} {path} HTTP/1.1\r\n{self.prefix}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        try:
            self.writer.write(head.encode() + b"\r\n" + (body or b""))
            block = await self.reader.readuntil(b"\r\n\r\n")
            status_line, *lines = block.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines if line)
            length = int(headers["content-length"])
            content = await self.reader.readexactly(length)
            status = int(status_line.split(" ", 2)[1])
        except (OSError, EOFError, ValueError, KeyError, IndexError, asyncio.IncompleteReadError) as err:
            self.close()
            raise LaneError(f"{type(err).__name__}: {err}") from err
        except BaseException:  # a timeout mid-answer: the connection is out of step, drop it
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, content)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


@dataclass
class Load:
    """One open-loop run: ``rate`` requests/s for ``duration`` s against one grid.

    The generator's connections are lanes (``Lane``, one keep-alive connection each), handed out
    in order from a queue.
    """

    lanes: asyncio.Queue[Lane]
    grid: str
    tag: str
    churn: collections.deque[str]
    rate: float
    duration: float
    timeout: float
    samples: list[Sample] = field(default_factory=list)
    made: int = 0

    def request(self, kind: str) -> tuple[str, Callable[[Lane], Awaitable[Answer]], int]:
        if kind == "list":
            return kind, lambda lane: lane.request("GET", f"/v1/volumes/{self.grid}"), 200
        if kind == "create" or not self.churn:
            self.made += 1
            name = f"churn-{self.tag}-{self.made}"
            body = json.dumps(
                {"name": name, "scope": "instance", "driver": "local", "labels": {"bench": "api"}}
            )

            async def create(lane: Lane) -> Answer:
                response = await lane.request("POST", f"/v1/volumes/{self.grid}", body.encode())
                if response.status_code == 201:
                    self.churn.append(name)
                return response

            return "create", create, 201
        name = self.churn.popleft()
        return "delete", lambda lane: lane.request("DELETE", f"/v1/volumes/{self.grid}/{name}"), 200

    async def one(self, kind: str, due: float) -> None:
        kind, call, expected = self.request(kind)
        sent = time.perf_counter()
        error: str | None = None
        try:
            # Waiting for a free lane counts: the request was due at ``sent``.
            async with asyncio.timeout(self.timeout):
                lane = await self.lanes.get()
                try:
                    response = await call(lane)
                finally:
                    self.lanes.put_nowait(lane)
            if response.status_code != expected:
                error = f"status {response.status_code}: {response.text[:200]}"
        except (LaneError, TimeoutError) as err:
            error = type(err).__name__
        done = time.perf_counter()
        self.samples.append(Sample(kind, done - sent, error, sent, done, sent - due))

    async def run(self) -> float:
        """Send every request at its time; wait for the answers, at most ``timeout`` after the last."""
        total = max(1, round(self.rate * self.duration))
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        for i in range(total):
            due = start + i / self.rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.add(asyncio.create_task(self.one(MIX[i % len(MIX)], due)))
        _, pending = await asyncio.wait(tasks, timeout=self.timeout + 5)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for _ in pending:
            self.samples.append(Sample("unanswered", self.timeout, "timeout", start, start))
        return time.perf_counter() - start


@dataclass(frozen=True)
class Figures:
    count: int
    rate: float
    p50: float
    p99: float
    max: float
    errors: int

    def line(self, label: str) -> str:
        return (
            f"{label}: {self.rate:7.1f} requests/s, p50 {self.p50 * 1000:6.1f} ms, "
            f"p99 {self.p99 * 1000:6.1f} ms, max {self.max * 1000:7.1f} ms, "
            f"errors {self.errors} of {self.count:,}"
        )


def figures(samples: list[Sample]) -> Figures:
    answered = [s for s in samples if s.kind != "unanswered"]
    latencies = sorted(s.latency for s in samples)
    window = (max(s.done for s in answered) - min(s.sent for s in answered)) if answered else 0.0
    ok = sum(s.error is None for s in samples)
    return Figures(
        count=len(samples),
        rate=ok / window if window > 0 else 0.0,
        p50=percentile(latencies, 50),
        p99=percentile(latencies, 99),
        max=latencies[-1] if latencies else float("nan"),
        errors=len(samples) - ok,
    )


# -- profiling ---------------------------------------------------------------------------------------


def start_profile(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes] | None:
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        print("profile: py-spy not found (pip install py-spy); running without it", flush=True)
        return None
    cmd = [
        py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
        "--rate", "250", "--format", "raw", "--gil", "--nonblocking", "--output", str(out),
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def top_of_profile(path: Path, label: str, count: int = 12) -> list[str]:
    """The functions with most samples on top of the stack (self) from py-spy's raw output."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    try:
        text = path.read_text()
    except OSError:
        return [f"profile {label}: no samples ({path} missing)"]
    for line in text.splitlines():
        stack, _, samples = line.rpartition(" ")
        if not stack or not samples.isdigit():
            continue
        total += int(samples)
        frame = stack.rpartition(";")[2]
        own[frame] += int(samples)
    lines = [f"profile {label}: {total:,} samples in {path}"]
    for frame, n in own.most_common(count):
        lines.append(f"profile {label} self {100 * n / max(1, total):5.1f}%  {frame}")
    return lines


# -- the run -------------------------------------------------------------------------------------------


@dataclass
class Options:
    agents: int
    rate: float
    duration: float
    volumes: int
    services: int
    heartbeat_interval: float
    db: str | None
    profile: Path | None
    timeout: float


async def setup_grid(client: httpx.AsyncClient, grid: str, volumes: int, services: int) -> str:
    (await client.post("/v1/grids", json={"name": grid})).raise_for_status()
    token = str((await client.post(f"/v1/grids/{grid}/token")).raise_for_status().json()["token"])
    for n in range(volumes):
        body = {
            "name": f"data-{n:03d}",
            "scope": ("instance", "stack", "grid")[n % 3],
            "driver": "local",
            "driver_opts": {"size": f"{n + 1}g"},
            "labels": {"team": f"t{n % 4}"},
        }
        (await client.post(f"/v1/volumes/{grid}", json=body)).raise_for_status()
    for n in range(services):  # stand-alone services (not deployed) mounting two volumes each
        mounts = [f"data-{(2 * n) % volumes:03d}:/data", f"data-{(2 * n + 1) % volumes:03d}:/logs:ro"]
        service = {"name": f"svc-{n:03d}", "image": "busybox:local", "volumes": mounts if volumes else []}
        (await client.post(f"/v1/services/{grid}", json=service)).raise_for_status()
    return token


@dataclass(frozen=True)
class Phase:
    samples: list[Sample]
    seconds: float  # the measured run, from its first send to its last answer or timeout
    master_cpu: float | None  # the master's CPU seconds over the measured run
    own_cpu: float  # the load generator's


async def load_phase(
    masters: list[Master], opts: Options, token: str, grid: str, churn: collections.deque[str], tag: str
) -> Phase:
    """The load over these masters: lane i to master i mod n."""
    clients = [Lane("127.0.0.1", masters[i % len(masters)].port, token) for i in range(CONNECTIONS)]
    try:
        lanes: asyncio.Queue[Lane] = asyncio.Queue()
        await asyncio.gather(*(client.request("GET", "/v1/ping") for client in clients))  # connected first
        for client in clients:
            lanes.put_nowait(client)
        warm_up = max(WARM_UP_MIN, opts.duration * WARM_UP_SHARE)
        await Load(lanes, grid, f"{tag}w", churn, opts.rate, warm_up, opts.timeout).run()
        load = Load(lanes, grid, tag, churn, opts.rate, opts.duration, opts.timeout)
        master_before, own_before = [cpu_seconds(m.pid) for m in masters], time.process_time()
        seconds = await load.run()
        master_after, own = [cpu_seconds(m.pid) for m in masters], time.process_time() - own_before
    finally:
        for client in clients:
            client.close()
    known = None not in master_before and None not in master_after
    master_cpu = sum(a - b for a, b in zip(master_after, master_before, strict=True)) if known else None  # type: ignore[operator]
    return Phase(load.samples, seconds, master_cpu, own)


def report_phase(backend: str, phase: str, samples: list[Sample]) -> dict[str, Figures]:
    out = {"all": figures(samples)}
    for kind in KINDS:
        out[kind] = figures([s for s in samples if s.kind == kind])
    for kind in (*KINDS, "all"):
        print(out[kind].line(f"api {backend} {phase:<8} {kind:<6}"), flush=True)
    return out


def bench(opts: Options, master: Master, backend: str, cleanup: contextlib.ExitStack) -> int:
    problems: list[str] = []
    admin = master.admin_token()
    grid = f"bench-{uuid.uuid4().hex[:6]}"

    async def prepare() -> tuple[str, list[str]]:
        async with httpx.AsyncClient(
            base_url=master.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
        ) as client:
            join_token = await setup_grid(client, grid, opts.volumes, opts.services)
            churn = []
            for n in range(CHURN_POOL):
                name = f"churn-pool-{n}"
                body = {"name": name, "scope": "instance", "driver": "local"}
                (await client.post(f"/v1/volumes/{grid}", json=body)).raise_for_status()
                churn.append(name)
        return join_token, churn

    join_token, pool = run(prepare)
    churn = collections.deque(pool)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(
        f"api {backend}: {os.cpu_count()} CPUs, load average {load} at start; "
        f"master pid {master.pid}, grid {grid} with {opts.volumes} volumes used by "
        f"{opts.services} services; "
        f"open-loop {opts.rate:g} requests/s for {opts.duration:g} s per run, mix 80% list / "
        f"10% create / 10% delete",
        flush=True,
    )

    for line in request_costs(master, admin, grid, COST_SAMPLES // (10 if opts.rate < 100 else 1)):
        print(f"api {backend} {line}", flush=True)
    results: dict[str, dict[str, Figures]] = {}
    for phase in PHASES:
        swarm: SwarmProcess | None = None
        if phase == "agents":
            config = SwarmConfig(
                ws_url=master.url.replace("http://", "ws://") + "/v1/agent",
                token=join_token,
                count=opts.agents,
                prefix=f"{grid}-n",
            )
            swarm = SwarmProcess(config)
            cleanup.callback(swarm.stop, 0)
            joined = swarm.receive(timeout=300)
            print(
                f"api {backend} {phase}: {joined['joined']:,} of {opts.agents:,} agents joined in "
                f"{joined['seconds']:.1f} s, heartbeat every {joined['interval']:g} s",
                flush=True,
            )
            if joined["joined"] != opts.agents:
                problems.append(f"{joined['failed_count']} agents could not join: {joined['failed']}")
            swarm.send("mark")
        profiler = None
        if opts.profile is not None:
            opts.profile.mkdir(parents=True, exist_ok=True)
            profiler = start_profile(
                master.pid, opts.profile / f"master-{backend}-{phase}.txt", opts.duration + 2
            )
        result = run(lambda: load_phase([master], opts, admin, grid, churn, phase))  # noqa: B023
        samples, seconds = result.samples, result.seconds
        results[phase] = report_phase(backend, phase, samples)
        bad = [s.error for s in samples if s.error and s.error.startswith("status")]
        if bad:
            problems.append(f"{len(bad)} unexpected answers in the {phase} run, e.g. {bad[0]}")
        if result.master_cpu is not None:
            print(
                f"api {backend} {phase:<8} master CPU {result.master_cpu / seconds:.2f} cores, "
                f"{result.master_cpu / len(samples) * 1000:.2f} ms per request",
                flush=True,
            )
        lags = sorted(s.lag for s in samples if s.kind != "unanswered")
        print(
            f"api {backend} {phase:<8} load generator CPU {result.own_cpu / seconds:.2f} cores, sent late by "
            f"p50 {percentile(lags, 50) * 1000:.1f} ms, p99 {percentile(lags, 99) * 1000:.1f} ms "
            f"(late sends mean the generator, not the master, limits the rate)",
            flush=True,
        )
        if swarm is not None:
            online = count_online(master.url, admin, grid)
            swarm.send("stop")
            beats = swarm.receive(timeout=120)
            swarm.stop()
            shown = "?" if online is None else f"{online:,}"
            print(
                f"api {backend} {phase:<8} heartbeats {beats['heartbeats'] / beats['window']:.1f}/s "
                f"from {opts.agents:,} agents, {shown} nodes online after the run, "
                f"{beats['dropped']} connections dropped",
                flush=True,
            )
            if beats["dropped"] or (online is not None and online != opts.agents):
                problems.append(
                    f"nodes went offline during the load ({beats['dropped']} connections dropped)"
                )
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(timeout=60)
            if profiler.poll() is None:
                profiler.kill()
                profiler.wait()
            for line in top_of_profile(opts.profile / f"master-{backend}-{phase}.txt", phase):  # type: ignore[operator]
                print(f"api {backend} {line}", flush=True)

    base, loaded = results["baseline"], results["agents"]
    for kind in (*KINDS, "all"):
        ratio = loaded[kind].p99 / base[kind].p99 if base[kind].p99 > 0 else float("nan")
        print(
            f"api {backend} ratio {kind:<6} p99 with {opts.agents:,} agents / without: {ratio:5.2f}x "
            f"({loaded[kind].p99 * 1000:.1f} / {base[kind].p99 * 1000:.1f} ms)",
            flush=True,
        )
    loaded_all = loaded["all"]
    met = loaded_all.p99 * 1000 <= TARGET_P99_MS and loaded_all.rate >= 0.95 * opts.rate
    full_size = backend == "sqlite" and opts.rate >= TARGET_RATE and opts.agents >= TARGET_AGENTS
    verdict = ("met" if met else "NOT met") if full_size else "not measured by a run of this size"
    print(
        f"api {backend} target (p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE:g} requests/s with "
        f"{TARGET_AGENTS:,} agents, SQLite): {verdict}; this run: p99 {loaded_all.p99 * 1000:.1f} ms "
        f"at {loaded_all.rate:.1f} requests/s with {opts.agents:,} agents",
        flush=True,
    )
    for problem in problems:
        print(f"api {backend} problem: {problem}", file=sys.stderr, flush=True)
    return 1 if problems else 0


def start_swarms(masters: list[Master], opts: Options, join_token: str, prefix: str) -> list[SwarmProcess]:
    """``opts.agents`` agents, spread evenly over these masters; each swarm reports once joined."""
    swarms = []
    for i, master in enumerate(masters):
        config = SwarmConfig(
            ws_url=master.url.replace("http://", "ws://") + "/v1/agent",
            token=join_token,
            count=opts.agents // len(masters),
            prefix=f"{prefix}-{i}",
        )
        swarms.append(SwarmProcess(config))
    return swarms


def bench_masters(opts: Options, first: Master, second: Master, cleanup: contextlib.ExitStack) -> int:
    """One master vs two under the same load, with agents; then the failover (see the docstring)."""
    problems: list[str] = []
    admin = first.admin_token()
    grid = f"bench-{uuid.uuid4().hex[:6]}"

    async def prepare() -> tuple[str, list[str]]:
        async with httpx.AsyncClient(
            base_url=first.url, headers={"Authorization": f"Bearer {admin}"}, timeout=30
        ) as client:
            join_token = await setup_grid(client, grid, opts.volumes, opts.services)
            churn = []
            for n in range(CHURN_POOL):
                body = {"name": f"churn-pool-{n}", "scope": "instance", "driver": "local"}
                (await client.post(f"/v1/volumes/{grid}", json=body)).raise_for_status()
                churn.append(body["name"])
        return join_token, churn

    join_token, pool = run(prepare)
    churn = collections.deque(pool)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"
    print(
        f"masters: {os.cpu_count()} CPUs, load average {load} at start; PostgreSQL; grid {grid} with "
        f"{opts.volumes} volumes used by {opts.services} services; open-loop {opts.rate:g} requests/s "
        f"for {opts.duration:g} s per run with {opts.agents:,} agents, mix 80% list / 10% create / "
        "10% delete",
        flush=True,
    )
    results: dict[str, dict[str, Figures]] = {}
    swarms: list[SwarmProcess] = []
    for phase, masters in (("one", [first]), ("two", [first, second])):
        if phase == "two":
            second.start()
        swarms = start_swarms(masters, opts, join_token, f"{grid}-{phase}")
        for swarm in swarms:
            cleanup.callback(swarm.stop, 0)
            joined = swarm.receive(timeout=300)
            if joined["joined"] != opts.agents // len(masters):
                problems.append(f"{joined['failed_count']} agents could not join: {joined['failed']}")
            swarm.send("mark")
        result = run(lambda: load_phase(masters, opts, admin, grid, churn, phase))  # noqa: B023
        results[phase] = report_phase(
            "masters", f"{phase:<3} master{'s' if phase == 'two' else ''}", result.samples
        )
        bad = [s.error for s in result.samples if s.error and s.error.startswith("status")]
        if bad:
            problems.append(f"{len(bad)} unexpected answers with {phase} master(s), e.g. {bad[0]}")
        if result.master_cpu is not None:
            print(
                f"api masters {phase:<3} masters' CPU {result.master_cpu / result.seconds:.2f} cores, "
                f"{result.master_cpu / len(result.samples) * 1000:.2f} ms per request",
                flush=True,
            )
        if phase == "one":
            for swarm in swarms:
                swarm.send("stop")
                swarm.receive(timeout=120)
                swarm.stop()
    for kind in (*KINDS, "all"):
        one, two = results["one"][kind].p99, results["two"][kind].p99
        print(
            f"api masters ratio {kind:<6} p99 two masters / one: {two / one if one > 0 else float('nan'):5.2f}x "
            f"({two * 1000:.1f} / {one * 1000:.1f} ms)",
            flush=True,
        )
    for line in failover([first, second], admin, grid, problems):
        print(f"api masters failover: {line}", flush=True)
    for swarm in swarms:
        swarm.send("stop")
        swarm.receive(timeout=120)
        swarm.stop()
    for problem in problems:
        print(f"api masters problem: {problem}", file=sys.stderr, flush=True)
    return 1 if problems else 0


def _masters_view(url: str, token: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/masters", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def _placed(client: httpx.Client, grid: str, name: str) -> bool:
    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
        shown = client.get(f"/v1/services/{grid}/null/{name}").json()
        return any(c["node"] for c in shown["containers"])
    return False


def _leads(client: httpx.Client) -> bool:
    with contextlib.suppress(httpx.HTTPError, KeyError, ValueError):
        view = client.get("/v1/masters").json()
        return bool(view["leader"] == view["this"])
    return False


def failover(masters: list[Master], token: str, grid: str, problems: list[str]) -> list[str]:
    """A one-instance deploy asked of the master that does not lead (healthy); then the leader
    killed and the same deploy asked of the survivor at once: when it leads, when it is placed."""
    view = _masters_view(masters[0].url, token)
    leader_url = next(m["url"] for m in view["masters"] if m["id"] == view["leader"])
    leader = next(m for m in masters if m.url == leader_url)
    survivor = next(m for m in masters if m is not leader)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=survivor.url, headers=headers, timeout=10) as client:

        def deploy(name: str) -> None:
            body = {"name": name, "image": "busybox:local", "instances": 1, "deploy": True}
            client.post(f"/v1/services/{grid}", json=body).raise_for_status()

        start = time.perf_counter()
        deploy("failover-healthy")
        while not _placed(client, grid, "failover-healthy") and time.perf_counter() - start < 60:
            time.sleep(0.02)
        healthy = time.perf_counter() - start
        assert leader.proc is not None
        leader.proc.send_signal(signal.SIGKILL)
        killed = time.perf_counter()
        deploy("failover-after")
        leads = placed = None
        while (leads is None or placed is None) and time.perf_counter() - killed < 60:
            if leads is None and _leads(client):
                leads = time.perf_counter() - killed
            if placed is None and _placed(client, grid, "failover-after"):
                placed = time.perf_counter() - killed
            time.sleep(0.02)
        leader.proc.wait()
    if placed is None or leads is None:
        said = f"the surviving master did not take over within 60 s (leads: {leads}, placed: {placed})"
        problems.append(f"{said}; its log ends:\n{survivor.log_tail()}")
        return [said]
    return [
        f"the survivor leads {leads:.2f} s after the leader's SIGKILL",
        f"a deploy asked of it right after the kill is placed {placed:.2f} s after the kill "
        f"(deployments progressing again; on the healthy pair, asked of the master that does not "
        f"lead: {healthy:.2f} s, {placed / healthy:.1f}x)",
    ]


def request_costs(master: Master, token: str, grid: str, count: int) -> list[str]:
    """The master's CPU time per request of each kind, one request at a time: what a core can
    serve at most, whatever else the machine runs (the open-loop figures depend on that too).

    ``list`` lists an unchanged grid ``count`` times in a row, so the master may serve all but the
    first from the body it kept; ``mix`` is the load's mix in its order (eight lists, a create, a
    delete), where the first list after each write is built afresh: the figure to hold against a
    core."""
    lines = []
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=master.url, headers=headers, timeout=30) as client:

        def create(name: str) -> httpx.Response:
            body = {"name": name, "scope": "instance", "driver": "local", "labels": {"bench": "api"}}
            return client.post(f"/v1/volumes/{grid}", json=body)

        for kind in ("ping", "list", "create", "delete", "mix"):
            made: collections.deque[str] = collections.deque()
            before = cpu_seconds(master.pid)
            for n in range(count):
                name = f"cost-{n}"
                step = MIX[n % len(MIX)] if kind == "mix" else kind
                if step == "ping":
                    response = client.get("/v1/ping")
                elif step == "list":
                    response = client.get(f"/v1/volumes/{grid}")
                elif kind != "mix":
                    response = (
                        create(name) if step == "create" else client.delete(f"/v1/volumes/{grid}/{name}")
                    )
                elif step == "create" or not made:
                    made.append(f"cost-mix-{n}")
                    response = create(made[-1])
                else:
                    response = client.delete(f"/v1/volumes/{grid}/{made.popleft()}")
                response.raise_for_status()
            after = cpu_seconds(master.pid)
            for name in made:  # the mix's last creates, so the grid is as it was
                client.delete(f"/v1/volumes/{grid}/{name}").raise_for_status()
            if before is None or after is None:
                return ["cost: no /proc here, so no CPU figures"]
            ms = (after - before) / count * 1000
            if ms <= 0:  # fewer CPU clock ticks than requests (a smoke run's few requests)
                resolution = 1000 / os.sysconf("SC_CLK_TCK") / count
                lines.append(
                    f"cost {kind:<6}: master CPU under {resolution:.2f} ms per request (the clock's resolution)"
                )
                continue
            lines.append(
                f"cost {kind:<6}: master CPU {ms:5.2f} ms per request, one at a time "
                f"(at most {1000 / ms:,.0f} requests/s per core)"
            )
    return lines


def count_online(url: str, token: str, grid: str) -> int | None:
    """Nodes online in the grid, or None when the master does not answer in time (overloaded)."""
    try:
        response = httpx.get(
            f"{url}/v1/nodes/{grid}", headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
        response.raise_for_status()
    except httpx.HTTPError:
        return None
    nodes: list[dict[str, Any]] = response.json()["nodes"]
    return sum(1 for node in nodes if node["status"] == "online")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the bench still runs")
    parser.add_argument("--agents", type=int, help="simulated agents (default 1000; smoke 20)")
    parser.add_argument("--rate", type=float, help="requests per second (default 500; smoke 50)")
    parser.add_argument("--duration", type=float, help="seconds of load per run (default 20; smoke 2)")
    parser.add_argument("--volumes", type=int, default=50, help="volumes defined in the grid (default 50)")
    parser.add_argument(
        "--services", type=int, default=20, help="services mounting those volumes (default 20)"
    )
    parser.add_argument("--heartbeat-interval", type=float, default=5.0, help="seconds (default 5)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds (default 10)")
    parser.add_argument("--db", help="a PostgreSQL URL; the bench makes a fresh database there and drops it")
    parser.add_argument("--profile", type=Path, help="py-spy the master during each run; raw stacks here")
    parser.add_argument(
        "--masters",
        type=int,
        choices=(1, 2),
        default=1,
        help="2: one master vs two (needs --db), and failover",
    )
    args = parser.parse_args()
    if args.masters == 2 and not args.db:
        parser.error("--masters 2 needs --db postgresql://...: several masters share one PostgreSQL")
    opts = Options(
        agents=args.agents or (20 if args.smoke else 1000),
        rate=args.rate or (50.0 if args.smoke else 500.0),
        duration=args.duration or (2.0 if args.smoke else 20.0),
        volumes=args.volumes,
        services=args.services,
        heartbeat_interval=args.heartbeat_interval,
        db=args.db,
        profile=args.profile,
        timeout=args.timeout,
    )
    raise_fd_limit()
    backend = "postgresql" if opts.db else "sqlite"
    with tempfile.TemporaryDirectory(prefix="moorage-bench-api-") as tmp, contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_pg_database(opts.db)) if opts.db else None
        master = Master(Path(tmp) / "master", db_url, opts.heartbeat_interval)
        stack.callback(master.stop)
        master.start()
        try:
            if args.masters == 2:
                second = Master(Path(tmp) / "second" / "master", db_url, opts.heartbeat_interval)
                second.data_dir.parent.mkdir(parents=True)
                stack.callback(second.stop)
                return bench_masters(opts, master, second, stack)
            status = bench(opts, master, backend, stack)
        except Exception:
            print(
                f"api {backend}: the bench failed; the master's log ends:\n{master.log_tail()}",
                file=sys.stderr,
            )
            raise
    return status


if __name__ == "__main__":
    sys.exit(main())

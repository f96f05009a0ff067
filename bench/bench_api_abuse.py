"""How the master's API holds up against abuse: races on one name, a create/delete storm, and a
30 MB body from a stranger. One figure per line.

    python bench/bench_api_abuse.py           # 10 rounds of 20-way races, 16 clients for 10 s, 2 s of bodies each way
    python bench/bench_api_abuse.py --smoke   # 2 rounds, 4 clients for 1 s, 0.3 s of bodies each way
    python bench/bench_api_abuse.py --db postgresql://moorage:moorage@127.0.0.1:5432/moorage

Two processes on loopback: the master (``benchlib.Master``: SQLite in a temp dir, or a fresh
database made on the PostgreSQL server ``--db`` names and dropped afterwards) and this one, whose
clients speak real HTTP to it (httpx, and a raw socket for the large bodies).

1. Races: 20 clients, each on a connection of its own opened beforehand, send the same
   ``POST /v1/volumes/{grid}`` (one name) at once; then the same for a stack install
   (``POST /v1/stacks/{grid}``, one stack name, ``deploy: false``). In each round exactly one
   answer is a 201; every other one is a 409 or a 422 saying the name already exists; the grid
   then lists that volume (that stack, and its one service) once.
2. A storm: ``--clients`` clients for ``--duration`` seconds, each sending back to back a create or
   a delete (half each, at random) of a volume or a stack picked from a few names. Every answer
   must be one a user expects: 201 or 200 when it succeeded, a 409 or 422 "already exists" for a
   create of a name that exists, a 404 for a delete of one that does not. The successful creates
   and deletes of a name alternate (each name starts absent), so its creates less its deletes are 0
   or 1 and say whether it exists at the end: the lists must show exactly those, and the services
   exactly those of the stacks left (no orphans).
3. A stranger's body: a 30 MB body without a token to ``POST /v1/volumes/{grid}`` (with
   ``Content-Length``, then chunked), one after the other on a connection of its own each, at
   least ``--uploads`` times and for ``--window`` seconds, while another connection
   sends ``GET /v1/ping`` back to back. Targets (issue 11): the answer, a 401 given before the body
   is read, within 1 s; ping p99 under 200 ms meanwhile. The same body with an admin token is sent
   too, for comparison (a 413: at once with a length, after 8 MiB read when chunked).

Exit status 1 on any 5xx, an unexpected answer, a store left inconsistent, or a target missed.
At ``--smoke`` size the timing targets are printed but do not fail the run (the suite runs it on
a busy machine); everything else does.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from benchlib import Master, fresh_pg_database, machine, median, percentile

CONTENDERS = 20  # clients in each race
STORM_NAMES = 4  # volume names, and as many stack names, the storm's clients pick from
BODY_BYTES = 30 * 1024 * 1024  # the stranger's body
BODY_CHUNK = 64 * 1024
TARGET_ANSWER_S = 1.0
TARGET_PING_P99_MS = 200.0
TAKEN = "already exists"
STATUS_TIMEOUT = 30.0  # per request: an answer later than this is a failure of the bench


def stack_body(name: str) -> dict[str, Any]:
    return {"stack": {"stack": name, "services": {"web": {"image": "busybox:local"}}}, "deploy": False}


def volume_body(name: str) -> dict[str, Any]:
    return {"name": name, "scope": "instance", "driver": "local"}


def message(response: httpx.Response) -> str:
    """The error's words, a field's message or the whole text (``{"error": str | {field: str}}``)."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return response.text[:200]
    if isinstance(error, dict):
        return "; ".join(f"{k}: {v}" for k, v in error.items())
    return str(error)


def unexpected(op: str, response: httpx.Response) -> str | None:
    """Why this answer to a create or a delete is not one a user expects; None when it is."""
    status = response.status_code
    if op == "create" and (status == 201 or (status in (409, 422) and TAKEN in message(response))):
        return None
    if op == "delete" and (status == 200 or (status == 404 and "not found" in message(response))):
        return None
    return f"{op} answered {status}: {message(response)[:200]}"


def tally(statuses: Iterable[int]) -> str:
    counts = collections.Counter(statuses)
    return ", ".join(f"{counts[s]:,} x {s}" for s in sorted(counts)) or "none"


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


@dataclass
class Run:
    backend: str
    master: Master
    admin: str
    grid: str
    smoke: bool
    problems: list[str] = field(default_factory=list)
    server_errors: int = 0

    @property
    def label(self) -> str:
        return f"abuse {self.backend}"

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.master.url,
            headers=self.headers(),
            timeout=STATUS_TIMEOUT,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        )

    def count_5xx(self, statuses: Iterable[int]) -> int:
        found = sum(1 for s in statuses if s >= 500)
        self.server_errors += found
        return found

    async def listed(self, client: httpx.AsyncClient, what: str) -> list[dict[str, Any]]:
        response = await client.get(f"/v1/{what}/{self.grid}")
        response.raise_for_status()
        items: list[dict[str, Any]] = response.json()[what]
        return items


# -- 1. races ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Race:
    kind: str  # volume | stack
    path: str
    body: Callable[[str], dict[str, Any]]


async def races(run: Run, rounds: int) -> None:
    kinds = [
        Race("volume", f"/v1/volumes/{run.grid}", volume_body),
        Race("stack", f"/v1/stacks/{run.grid}", stack_body),
    ]
    clients = [run.client() for _ in range(CONTENDERS)]
    try:
        await asyncio.gather(*(c.get("/v1/ping") for c in clients))  # each its connection, open
        for race in kinds:
            await one_race(run, clients, race, rounds)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def one_race(run: Run, clients: list[httpx.AsyncClient], race: Race, rounds: int) -> None:
    statuses: list[int] = []
    latencies: list[float] = []
    bad: list[str] = []
    winners_per_round: list[int] = []

    async def send(client: httpx.AsyncClient, name: str) -> httpx.Response:
        sent = time.perf_counter()
        response = await client.post(race.path, json=race.body(name))
        latencies.append(time.perf_counter() - sent)
        return response

    for n in range(rounds):
        name = f"race-{race.kind[0]}{n}"
        answers = await asyncio.gather(*(send(c, name) for c in clients))
        statuses += [a.status_code for a in answers]
        winners_per_round.append(sum(1 for a in answers if a.status_code == 201))
        bad += [why for a in answers if (why := unexpected("create", a))]
        bad += await race_left(run, clients[0], race.kind, name)
    winners_ok = all(w == 1 for w in winners_per_round)
    if not winners_ok:
        bad.append(f"201s per round: {winners_per_round} (one each expected)")
    fives = run.count_5xx(statuses)
    latencies.sort()
    print(
        f"{run.label} race {race.kind} create x{CONTENDERS}, {rounds} rounds: {tally(statuses)}; "
        f"{fives} 5xx, {len(bad)} unexpected; one {race.kind} listed after each round: "
        f"{'yes' if not any('listed' in b for b in bad) else 'NO'}; answered in p50 "
        f"{percentile(latencies, 50) * 1000:.1f} ms, max {latencies[-1] * 1000:.1f} ms "
        f"(target: one 201 a round, the rest 409/422 '{TAKEN}', 0 5xx: {verdict(not bad and not fives)})",
        flush=True,
    )
    run.problems += [f"race {race.kind}: {b}" for b in bad[:5]]


async def race_left(run: Run, client: httpx.AsyncClient, kind: str, name: str) -> list[str]:
    """What is wrong with the grid after a race on ``name`` (its one volume, or stack and service)."""
    if kind == "volume":
        found = [v for v in await run.listed(client, "volumes") if v["name"] == name]
        return [] if len(found) == 1 else [f"volume {name} listed {len(found)} times"]
    stacks = [s for s in await run.listed(client, "stacks") if s["name"] == name]
    services = [s for s in await run.listed(client, "services") if s["stack"] == name]
    if len(stacks) == 1 and [s["name"] for s in services] == ["web"]:
        return []
    return [f"stack {name} listed {len(stacks)} times with services {[s['name'] for s in services]}"]


# -- 2. the storm ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    kind: str  # volume | stack
    name: str
    op: str  # create | delete
    status: int
    latency: float
    problem: str | None


async def storm(run: Run, clients: int, duration: float) -> None:
    answers: list[Answer] = []
    names = {
        "volume": [f"storm-v{n}" for n in range(STORM_NAMES)],
        "stack": [f"storm-s{n}" for n in range(STORM_NAMES)],
    }

    async def one_client(number: int, deadline: float) -> None:
        chosen = random.Random(number)
        async with run.client() as client:
            while time.perf_counter() < deadline:
                kind = chosen.choice(("volume", "stack"))
                name = chosen.choice(names[kind])
                op = chosen.choice(("create", "delete"))
                area = "volumes" if kind == "volume" else "stacks"
                sent = time.perf_counter()
                if op == "create":
                    body = volume_body(name) if kind == "volume" else stack_body(name)
                    response = await client.post(f"/v1/{area}/{run.grid}", json=body)
                else:
                    response = await client.delete(f"/v1/{area}/{run.grid}/{name}")
                latency = time.perf_counter() - sent
                answers.append(
                    Answer(kind, name, op, response.status_code, latency, unexpected(op, response))
                )

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n, started + duration) for n in range(clients)))
    seconds = time.perf_counter() - started
    async with run.client() as client:
        listed = {
            "volume": sorted(
                v["name"] for v in await run.listed(client, "volumes") if v["name"] in names["volume"]
            ),
            "stack": sorted(s["name"] for s in await run.listed(client, "stacks")),
        }
        services = sorted((s["stack"], s["name"]) for s in await run.listed(client, "services"))
    race_stacks = sorted(s for s in listed["stack"] if s.startswith("race-"))
    for kind in ("volume", "stack"):
        mine = [a for a in answers if a.kind == kind]
        implied, broken = implied_by(mine, names[kind])
        shown = [n for n in listed[kind] if not n.startswith("race-")]
        bad = [a.problem for a in mine if a.problem] + broken
        if shown != implied:
            bad.append(f"listed {shown}, the answers imply {implied}")
        if kind == "stack":
            want = sorted((s, "web") for s in [*race_stacks, *implied])
            if services != want:
                bad.append(f"services {services}, the stacks left imply {want} (orphans or missing)")
        fives = run.count_5xx(a.status for a in mine)
        latencies = sorted(a.latency for a in mine)
        ops = "; ".join(f"{op} {tally(a.status for a in mine if a.op == op)}" for op in ("create", "delete"))
        extra = " and their services" if kind == "stack" else ""
        print(
            f"{run.label} storm {kind}s, {clients} clients for {duration:g} s on {STORM_NAMES} names: "
            f"{len(mine):,} requests ({len(mine) / seconds:.0f}/s), {ops}; {fives} 5xx, "
            f"{len(bad)} unexpected; at the end {len(shown)} listed{extra}, as the answers imply: "
            f"{'yes' if not broken and shown == implied else 'NO'}; p50 "
            f"{percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
            f"max {latencies[-1] * 1000 if latencies else float('nan'):.1f} ms "
            f"(target: 0 5xx, the store consistent: {verdict(not bad and not fives)})",
            flush=True,
        )
        run.problems += [f"storm {kind}s: {b}" for b in bad[:5]]


def implied_by(answers: list[Answer], names: list[str]) -> tuple[list[str], list[str]]:
    """The names that exist at the end by the successful answers, and what breaks the rule that a
    name's successful creates and deletes alternate (so creates - deletes is 0 or 1)."""
    exist, broken = [], []
    for name in names:
        created = sum(1 for a in answers if a.name == name and a.op == "create" and a.status == 201)
        deleted = sum(1 for a in answers if a.name == name and a.op == "delete" and a.status == 200)
        if created - deleted not in (0, 1):
            broken.append(f"{name}: {created} successful creates but {deleted} deletes")
        if created - deleted == 1:
            exist.append(name)
    return sorted(exist), broken


# -- 3. a stranger's body ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    status: int | None  # None: no answer
    seconds: float  # from the request's first byte to the answer's headers
    sent: int  # body bytes that had left this client by then (the kernel buffers a few MB)
    error: str | None = None


def upload(port: int, path: str, *, chunked: bool, token: str | None) -> Upload:
    """One ``BODY_BYTES`` body over a socket of its own: the body is written by a thread while this
    one waits for the answer, as a client that does not wait for ``100 Continue`` would."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=STATUS_TIMEOUT)
    head = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {BODY_BYTES}")
    sent = 0
    stop = threading.Event()

    def write_body() -> None:
        nonlocal sent
        piece = b"x" * BODY_CHUNK
        with contextlib.suppress(OSError):  # the master closed the connection: it answered
            while sent < BODY_BYTES and not stop.is_set():
                part = piece[: BODY_BYTES - sent]
                sock.sendall(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                sent += len(part)
            if chunked and not stop.is_set():
                sock.sendall(b"0\r\n\r\n")

    writer = threading.Thread(target=write_body, daemon=True)
    start = time.perf_counter()
    try:
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        writer.start()
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
        seconds, sent_then = time.perf_counter() - start, sent
    except OSError as error:
        return Upload(None, time.perf_counter() - start, sent, f"{type(error).__name__}: {error}")
    finally:
        stop.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the writer if it is blocked in a send
        if writer.ident is not None:  # started
            writer.join(timeout=STATUS_TIMEOUT)
        sock.close()
    status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
    parts = status_line.split(" ")
    if len(parts) < 2 or not parts[1].isdigit():
        return Upload(None, seconds, sent_then, f"no HTTP answer: {status_line[:80]!r}")
    return Upload(int(parts[1]), seconds, sent_then)


class PingLoop:
    """``GET /v1/ping`` back to back on one kept-alive connection, in a thread, until stopped."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._ready = threading.Event()

    def _loop(self) -> None:
        with httpx.Client(base_url=self.url, timeout=STATUS_TIMEOUT) as client:
            client.get("/v1/ping")  # connected before the measurements
            self._ready.set()
            while not self._stop.is_set():
                sent = time.perf_counter()
                try:
                    response = client.get("/v1/ping")
                except httpx.HTTPError as error:
                    self.errors.append(f"{type(error).__name__}: {error}")
                    continue
                self.latencies.append(time.perf_counter() - sent)
                self.statuses.append(response.status_code)

    def __enter__(self) -> PingLoop:
        self._thread.start()
        self._ready.wait(timeout=STATUS_TIMEOUT)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=STATUS_TIMEOUT)


def large_bodies(run: Run, uploads: int, window: float) -> None:
    """Each way, ``uploads`` bodies one after the other, and more until ``window`` seconds have
    passed: the master answers each at once, and the pings need time to be a figure."""
    path = f"/v1/volumes/{run.grid}"
    for who, token, expected in (("unauthenticated", None, 401), ("admin's", run.admin, 413)):
        for chunked in (False, True):
            with PingLoop(run.master.url) as pings:
                results: list[Upload] = []
                began = time.perf_counter()
                while len(results) < uploads or time.perf_counter() < began + window:
                    results.append(upload(run.master.port, path, chunked=chunked, token=token))
                elapsed = time.perf_counter() - began
            statuses = [r.status for r in results if r.status is not None]
            fives = run.count_5xx(statuses) + run.count_5xx(pings.statuses)
            bad = [f"no answer: {r.error}" for r in results if r.status is None]
            bad += [
                f"answered {r.status}, not {expected}" for r in results if r.status not in (None, expected)
            ]
            bad += [f"ping answered {s}" for s in pings.statuses if s != 200] + pings.errors
            slowest = max(r.seconds for r in results)
            pinged = sorted(pings.latencies)
            p99_ms = percentile(pinged, 99) * 1000
            met = slowest < TARGET_ANSWER_S and p99_ms < TARGET_PING_P99_MS
            how = "chunked" if chunked else "Content-Length"
            counted = " (timing reported, not judged, at --smoke size)" if run.smoke else ""
            print(
                f"{run.label} {BODY_BYTES // 2**20}MB {who} body ({how}) x{len(results)} in {elapsed:.1f} s: answered "
                f"{tally(statuses)} in {slowest:.3f} s at most (median "
                f"{median([r.seconds for r in results]):.3f} s, {max(r.sent for r in results) / 2**20:.1f} MB "
                f"of the body sent by then at most); ping during it p50 {percentile(pinged, 50) * 1000:.1f} ms "
                f"p99 {p99_ms:.1f} ms max {pinged[-1] * 1000 if pinged else float('nan'):.1f} ms over "
                f"{len(pinged):,} pings; {fives} 5xx (target < {TARGET_ANSWER_S:g} s, < "
                f"{TARGET_PING_P99_MS:g} ms: {verdict(met)}{counted})",
                flush=True,
            )
            run.problems += [f"{who} {how} body: {b}" for b in bad[:5]]
            if not met and not run.smoke:
                run.problems.append(f"{who} {how} body: a timing target was missed")


# -- the run -------------------------------------------------------------------------------------------


def bench(run: Run, args: argparse.Namespace) -> int:
    print(
        f"{run.label}: {machine()}; master pid {run.master.pid}, grid {run.grid}",
        flush=True,
    )
    asyncio.run(races(run, args.rounds))
    asyncio.run(storm(run, args.clients, args.duration))
    large_bodies(run, args.uploads, args.window)
    log = run.master.log_tail()
    print(
        f"{run.label} total: {run.server_errors} 5xx answers; "
        f"{'no' if 'internal error' not in log else 'an'} internal error in the master's log "
        f"(target: 0 5xx: {verdict(run.server_errors == 0 and 'internal error' not in log)})",
        flush=True,
    )
    if "internal error" in log:
        run.problems.append("the master logged an internal error")
    for problem in run.problems:
        print(f"{run.label} problem: {problem}", file=sys.stderr, flush=True)
    return 1 if run.problems or run.server_errors else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, to check the bench still runs")
    parser.add_argument("--rounds", type=int, help="races of each kind (default 10; smoke 2)")
    parser.add_argument("--clients", type=int, help="clients in the storm (default 16; smoke 4)")
    parser.add_argument("--duration", type=float, help="seconds of storm (default 10; smoke 1)")
    parser.add_argument("--uploads", type=int, help="30 MB bodies of each way at least (default 10; smoke 2)")
    parser.add_argument(
        "--window", type=float, help="seconds of 30 MB bodies of each way at least (default 2; smoke 0.3)"
    )
    parser.add_argument("--db", help="a PostgreSQL URL; the bench makes a fresh database there and drops it")
    args = parser.parse_args()
    args.rounds = args.rounds or (2 if args.smoke else 10)
    args.clients = args.clients or (4 if args.smoke else 16)
    args.duration = args.duration or (1.0 if args.smoke else 10.0)
    args.uploads = args.uploads or (2 if args.smoke else 10)
    args.window = args.window or (0.3 if args.smoke else 2.0)
    backend = "postgresql" if args.db else "sqlite"
    with tempfile.TemporaryDirectory(prefix="moorage-bench-abuse-") as tmp, contextlib.ExitStack() as stack:
        db_url = stack.enter_context(fresh_pg_database(args.db)) if args.db else None
        master = Master(Path(tmp) / "master", db_url)
        stack.callback(master.stop)
        master.start()
        admin = master.admin_token()
        grid = f"abuse-{uuid.uuid4().hex[:6]}"
        headers = {"Authorization": f"Bearer {admin}"}
        httpx.post(f"{master.url}/v1/grids", json={"name": grid}, headers=headers).raise_for_status()
        run = Run(backend, master, admin, grid, args.smoke)
        try:
            status = bench(run, args)
        except Exception:
            print(
                f"{run.label}: the bench failed; the master's log ends:\n{master.log_tail()}", file=sys.stderr
            )
            raise
    return status


if __name__ == "__main__":
    sys.exit(main())

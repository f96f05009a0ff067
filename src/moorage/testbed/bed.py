"""A multi-node Moorage grid on one Linux host: N Docker Engines, a master, one agent per node.

Layout of the testbed folder (``/var/lib/moorage-testbed`` unless told otherwise)::

    state.json                  what runs, with pids (see ``state.py``)
    cache/                      image tarballs, kept by ``down``
    master/                     the master's --data-dir (admin.token) and master.log; with
                                --masters N: master/master-<i>/ each (master.log in each) and
                                master/haproxy.cfg, haproxy.log (the balancer in front of them)
    nodes/node-<i>/             docker.sock, dockerd.log, docker/ (data root), run/ (exec root),
                                plugins/ (seen as /run/docker/plugins by this engine only),
                                agent/ (the agent's --data-dir), agent.log, driver-<name>.log,
                                relay.sock and relay.log (the node's link to the master)
    shared/<driver>/            the root of the shared (global scope) volume driver
    shared/<driver>/<zone>/     a zone driver's root for the nodes of one zone (global scope,
                                shared by that zone's nodes only: EBS-like storage)

Each agent dials the master through its node's relay (``relay.py``) on 127.0.0.1, so
``node_cut`` can partition a node for real: its traffic to the master goes silent (nothing is
closed) and its containers' bridges go down, until ``node_heal``. Every byte stays on loopback or
inside the nodes' namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from moorage.testbed import netns, relay
from moorage.testbed.balancer import haproxy_config, haproxy_path
from moorage.testbed.engine import check_host, engine_processes, remove_engine, start_engine, stop_engine
from moorage.testbed.errors import TestbedError
from moorage.testbed.images import BUSYBOX, ImageTarball, build_images, import_images
from moorage.testbed.mounts import mounted_under, unmount_under
from moorage.testbed.process import ProcessRef, kill_all, log_tail, spawn, stop_process, stop_processes
from moorage.testbed.state import (
    BalancerRecord,
    BedState,
    DriverRecord,
    MasterRecord,
    NodeRecord,
    load_state,
    save_state,
    state_file,
)
from moorage.testbed.waiting import wait_for

__all__ = [
    "DEFAULT_DIR",
    "GRID",
    "Testbed",
    "Timeouts",
    "agent_start",
    "agent_stop",
    "down",
    "env",
    "master_restart",
    "master_start",
    "master_stop",
    "node_cut",
    "node_heal",
    "node_start",
    "node_stop",
    "parse_drivers",
    "up",
]

DEFAULT_DIR = Path("/var/lib/moorage-testbed")
GRID = "testbed"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Timeouts:
    """Seconds each wait may take before it fails with an error naming the log to read."""

    engine_start: float = 60.0
    master_start: float = 60.0
    nodes_online: float = 90.0
    driver_start: float = 30.0
    process_stop: float = 10.0
    engine_stop: float = 30.0


def _parallel(function: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """Run ``function`` on every item in threads; wait for all, then raise the first error."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(8, len(items))) as pool:
        futures = [pool.submit(function, item) for item in items]
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
    return [f.result() for f in futures]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _plugin_answers(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), timeout=2.0) as http:
            return http.post("http://plugin/Plugin.Activate", json={}).status_code == 200
    except httpx.HTTPError:
        return False


class _Recorder:
    """Keeps the state as nodes start (in threads) and saves it after every step."""

    def __init__(self, state: BedState) -> None:
        self.state = state
        self._lock = threading.Lock()

    def record(self, node: NodeRecord) -> None:
        with self._lock:
            self.state = self.state.with_node(node)
            save_state(self.state)


class Testbed:
    """One testbed folder and the operations on it. Every operation holds ``<dir>/.lock``."""

    __test__ = False  # not a pytest test class, though its name starts with "Test"

    def __init__(
        self,
        dir: Path = DEFAULT_DIR,
        *,
        moorage: Sequence[str] = (sys.executable, "-m", "moorage"),
        timeouts: Timeouts = Timeouts(),
        heartbeat_interval: float | None = None,
        masters: int = 1,
        db_url: str | None = None,
    ) -> None:
        self.dir = Path(dir).absolute()
        self.moorage = tuple(moorage)  # how to run the moorage command (master, agent, driver)
        self.timeouts = timeouts
        self.heartbeat_interval = heartbeat_interval  # the master's --heartbeat-interval, if given
        self.masters = masters  # several: behind HAProxy, on one PostgreSQL (db_url)
        self.db_url = db_url  # the masters' --db (default: the master's SQLite file)

    # ----- public operations -------------------------------------------------------------

    def up(
        self,
        nodes: int = 3,
        zones: Sequence[str] = (),
        *,
        drivers: Mapping[str, Sequence[str]] | None = None,
        shared_driver: str | None = None,
        zone_driver: str | None = None,
        control_plane: bool = True,
    ) -> BedState:
        """Replace whatever testbed was in the folder by a new one and return its state.

        ``zones`` are given round-robin to nodes as the label ``zone=``; ``drivers`` maps a
        volume driver name to the nodes that get it (each its own root); ``shared_driver``
        runs on every node on one shared root with ``--scope global``; ``zone_driver`` runs on
        every node with ``--scope global`` on a root shared by the nodes of its zone only (one
        folder per zone), so a volume re-attaches within its zone and nowhere else. Without
        ``control_plane`` only the engines are started (no master, no agents).
        """
        check_host()
        if nodes < 1:
            raise TestbedError(f"--nodes must be at least 1, not {nodes}.")
        if self.masters < 1:
            raise TestbedError(f"--masters must be at least 1, not {self.masters}.")
        if self.masters > 1 and not (self.db_url or "").startswith(("postgresql", "postgres")):
            raise TestbedError(
                f"--masters {self.masters} needs one PostgreSQL database they share: give "
                "--db postgresql://USER:PASSWORD@HOST/DB (one SQLite file serves one master)."
            )
        if self.masters > 1:
            haproxy_path()  # fail before anything starts
        for zone in zones:
            if not _NAME.match(zone):
                raise TestbedError(f"Zone {zone!r} is not a valid label value (letters, digits, _ . -).")
        names = [f"node-{i}" for i in range(1, nodes + 1)]
        zone_of = {name: zones[(i - 1) % len(zones)] if zones else None for i, name in enumerate(names, 1)}
        plan = self._driver_plan(names, drivers or {}, shared_driver)
        if zone_driver is not None:
            plan = self._zone_driver_plan(plan, zone_of, zone_driver, {*(drivers or {}), shared_driver})
        with self._locked():
            self._teardown(remove_files=True)
            state = BedState(
                dir=self.dir,
                nodes=tuple(
                    NodeRecord(
                        name=name,
                        index=i,
                        root=self.dir / "nodes" / name,
                        zone=zone_of[name],
                        drivers=plan.get(name, ()),
                    )
                    for i, name in enumerate(names, start=1)
                ),
            )
            save_state(state)
            try:
                return self._bring_up(state, control_plane)
            except BaseException as exc:
                self._after_failed_up(exc)
                raise

    def _after_failed_up(self, exc: BaseException) -> None:
        """Stop everything a failed ``up`` started but keep its logs; say so in the error."""
        try:
            self._teardown(remove_files=False)
        except Exception as cleanup:
            raise TestbedError(
                f"{exc}\nStopping what had started also failed: {cleanup}\n"
                f"Run `moorage testbed down --dir {self.dir}` to retry."
            ) from exc
        state_file(self.dir).unlink(missing_ok=True)  # nothing runs any more
        if isinstance(exc, TestbedError):
            raise TestbedError(
                f"{exc.message}\nEverything the testbed had started is stopped; its logs stay under "
                f"{self.dir} until the next `moorage testbed up` or `down`."
            ) from exc

    def down(self) -> None:
        """Stop everything the testbed started and remove its folders, keeping the image cache."""
        with self._locked():
            self._teardown(remove_files=True)

    def state(self) -> BedState:
        state = load_state(self.dir)
        if state is None:
            raise TestbedError(f"No testbed in {self.dir}; start one with `moorage testbed up`.")
        return state

    def env(self) -> str:
        """Shell ``export`` lines for the testbed: MOORAGE_URL, _TOKEN, _GRID, DOCKER_HOST_<i>."""
        state = self.state()
        lines = [f"export MOORAGE_TESTBED={shlex.quote(str(state.dir))}"]
        if state.master is not None:
            lines += [
                f"export MOORAGE_URL={shlex.quote(state.master.url)}",
                f"export MOORAGE_TOKEN={shlex.quote(state.master.admin_token)}",
                f"export MOORAGE_GRID={shlex.quote(state.master.grid)}",
            ]
        if state.masters:
            urls = ",".join(m.url for m in state.masters)
            lines.append(f"export MOORAGE_MASTER_URLS={shlex.quote(urls)}")  # each master, not the balancer
        lines += [f"export DOCKER_HOST_{n.index}={shlex.quote(n.paths.docker_host)}" for n in state.nodes]
        return "\n".join(lines) + "\n"

    def node_stop(self, name: str, *, grace: float = 15.0) -> None:
        """Take one node down: its agent, its engine (containers stop with it), its drivers.

        The engine gets ``grace`` seconds to stop its containers; ``grace=0`` is a power cut.
        Its data root, agent data and netns stay, so ``node_start`` brings back the same node.
        """
        self.state().node(name)  # fail before taking the lock (which makes the folder)
        with self._locked():
            state = self.state()
            self._stop_node(state, state.node(name), grace=grace)

    def node_start(self, name: str) -> None:
        """Bring a stopped node back: same data root, netns, agent data (so the same node id)."""
        self.state().node(name)
        with self._locked():
            state = self.state()
            node = state.node(name)
            healthy = node.engine is not None and node.engine.dockerd.alive()
            healthy = healthy and (state.master is None or (node.agent is not None and node.agent.alive()))
            if node.running and healthy:
                return
            state = self._stop_node(state, node, grace=0)  # whatever is left of a crashed node
            recorder = _Recorder(state)
            self._start_node(state.node(name), build_images(self.dir / "cache"), recorder)
            state = recorder.state
            if state.node(name).cut:
                netns.set_bridges(state.node(name).paths.netns, up=False)
            if state.master is not None and state.master.join_token:
                state = self._start_agent(state, state.node(name))
                self._wait_online(state, [name])

    def agent_stop(self, name: str, *, kill: bool = False) -> None:
        """Stop only the node's agent (its engine and containers keep running); ``kill``: SIGKILL."""
        self.state().node(name)
        with self._locked():
            state = self.state()
            node = state.node(name)
            if node.agent is not None and kill:
                kill_all([node.agent], what=f"agent of {name}")
            elif node.agent is not None:
                stop_process(node.agent, what=f"agent of {name}", grace=self.timeouts.process_stop)
            state = state.with_node(replace(node, agent=None))
            save_state(state)

    def agent_start(self, name: str) -> None:
        """Start the node's agent again (same data dir, so the same node) and wait until it is online."""
        self.state().node(name)
        with self._locked():
            state = self.state()
            node = state.node(name)
            if state.master is None or not state.master.join_token:
                raise TestbedError("This testbed has no master; run 'moorage testbed up' first.")
            if node.agent is not None and node.agent.alive():
                return
            state = self._start_agent(state, node)
            self._wait_online(state, [name])

    def master_restart(self, *, kill: bool = False) -> str:
        """Stop the master (SIGTERM, or SIGKILL with ``kill``) and start it again on the same address
        and data dir; wait for every node whose agent runs and that is not cut off. What happened,
        in a line or more, for the user."""
        with self._locked():
            state = self.state()
            master = state.master
            if master is None:
                raise TestbedError("This testbed has no master; run 'moorage testbed up' first.")
            if state.masters:
                raise TestbedError(
                    "This testbed has several masters: stop or start one by name "
                    f"({', '.join(str(m.name) for m in state.masters)}) with "
                    "`moorage testbed master stop NAME [--kill]` and `moorage testbed master start NAME`."
                )
            if master.process is not None and kill:
                kill_all([master.process], what="master")
            elif master.process is not None:
                stop_process(master.process, what="master", grace=self.timeouts.process_stop)
            argv = self._master_argv(master)
            master = replace(master, process=spawn(argv, master.log, env=self._child_env()))
            state = replace(state, master=master)
            save_state(state)
            self._wait_master(master)
            live = [n for n in state.nodes if n.running and n.agent is not None and n.agent.alive()]
            self._wait_online(state, [n.name for n in live])
            lines = ["Master restarted."]
            lines += [
                f"{n.name}: not waited for, its agent is not running "
                f"(`moorage testbed agent start {n.name}` starts it)."
                for n in state.nodes
                if n.running and n not in live
            ]
            lines += [f"{n.name}: not waited for, it is cut off." for n in live if n.cut]
            lines += [f"{n.name}: stopped." for n in state.nodes if not n.running]
            return "\n".join(lines)

    def master_stop(self, name: str, *, kill: bool = False) -> None:
        """Stop one of several masters (SIGTERM, or SIGKILL with ``kill``: a crash); the balancer
        sends its agents and requests to the others."""
        self.state().peer(name)
        with self._locked():
            state = self.state()
            peer = state.peer(name)
            if peer.process is not None and kill:
                kill_all([peer.process], what=name)
            elif peer.process is not None:
                stop_process(peer.process, what=name, grace=self.timeouts.process_stop)
            save_state(state.with_peer(replace(peer, process=None)))

    def master_start(self, name: str) -> None:
        """Start one of several masters again (same address and data dir); wait until it answers."""
        self.state().peer(name)
        with self._locked():
            state = self.state()
            peer = state.peer(name)
            if peer.process is not None and peer.process.alive():
                return
            peer = replace(peer, process=spawn(self._master_argv(peer), peer.log, env=self._child_env()))
            save_state(state.with_peer(peer))
            self._wait_answers(peer)

    def node_cut(self, name: str) -> str:
        """Cut the node off: its agent's traffic to the master is held (silence, no close) and its
        containers' bridges go down, until ``node_heal``. Kept across a node stop and start."""
        self.state().node(name)
        with self._locked():
            state = self.state()
            node = replace(state.node(name), cut=True)
            save_state(state.with_node(node))
            if node.relay is not None and node.relay.alive():
                self._relay_command(node, "cut")
            bridges = netns.set_bridges(node.paths.netns, up=False) if self._engine_alive(node) else []
            down = f"bridges {', '.join(bridges)} down" if bridges else "no engine running"
            return (
                f"{name} cut off: its traffic to the master is held, {down}; "
                f"`moorage testbed node heal {name}` ends it."
            )

    def node_heal(self, name: str) -> str:
        """End a cut: the node's held traffic flows again and its containers' bridges come up."""
        self.state().node(name)
        with self._locked():
            state = self.state()
            node = state.node(name)
            if self._engine_alive(node):
                netns.set_bridges(node.paths.netns, up=True)
            if node.relay is not None and node.relay.alive():
                self._relay_command(node, "heal")
            save_state(state.with_node(replace(node, cut=False)))
            return f"{name} healed: its traffic to the master flows again and its containers' network is up."

    @staticmethod
    def _engine_alive(node: NodeRecord) -> bool:
        return node.engine is not None and node.engine.dockerd.alive()

    def _relay_command(self, node: NodeRecord, command: str) -> None:
        want = "cut" if command == "cut" else "healed"
        try:
            answer = relay.control(node.relay_socket, command)
        except OSError as exc:
            raise TestbedError(
                f"The relay of {node.name} did not answer on {node.relay_socket}: {exc}. "
                f"{log_tail(node.relay_log)}"
            ) from exc
        if answer != want:
            raise TestbedError(f"The relay of {node.name} answered {answer!r} to {command!r}, not {want!r}.")

    def _stop_node(self, state: BedState, node: NodeRecord, *, grace: float) -> BedState:
        if node.agent is not None:
            stop_process(node.agent, what=f"agent of {node.name}", grace=self.timeouts.process_stop)
        if node.relay is not None:
            stop_process(node.relay, what=f"relay of {node.name}", grace=self.timeouts.process_stop)
        stop_engine(node.paths, node.engine, grace=grace, timeout=self.timeouts.engine_stop)
        stop_processes(
            [(f"driver {d.name} of {node.name}", d.process) for d in node.drivers if d.process is not None],
            grace=self.timeouts.process_stop,
        )
        stopped = replace(
            node,
            running=False,
            engine=None,
            agent=None,
            relay=None,
            drivers=tuple(replace(d, process=None) for d in node.drivers),
        )
        state = state.with_node(stopped)
        save_state(state)
        return state

    # ----- bringing things up --------------------------------------------------------------

    def _bring_up(self, state: BedState, control_plane: bool) -> BedState:
        if control_plane:  # the master starts (imports, migrates) while the engines do
            state = self._spawn_master(state)
        images = build_images(self.dir / "cache")
        recorder = _Recorder(state)
        _parallel(lambda node: self._start_node(node, images, recorder), state.nodes)
        state = recorder.state
        if not control_plane:
            return state
        state = self._setup_master(state)
        for node in state.nodes:
            state = self._start_agent(state, node)
        self._wait_online(state, [n.name for n in state.nodes])
        return state

    def _start_node(
        self, node: NodeRecord, images: Sequence[ImageTarball], recorder: _Recorder
    ) -> NodeRecord:
        """Start a node's drivers, then its engine, then import the images; record each step."""
        node = self._start_drivers(node)
        recorder.record(node)
        node = replace(
            node, engine=start_engine(node.paths, timeout=self.timeouts.engine_start), running=True
        )
        recorder.record(node)
        import_images(node.paths.docker_host, images)
        return node

    def _driver_plan(
        self, names: Sequence[str], drivers: Mapping[str, Sequence[str]], shared: str | None
    ) -> dict[str, tuple[DriverRecord, ...]]:
        plan: dict[str, list[DriverRecord]] = {name: [] for name in names}
        for driver, on in drivers.items():
            if not _NAME.match(driver):
                raise TestbedError(f"Volume driver name {driver!r} is not valid (letters, digits, _ . -).")
            for name in on:
                if name not in plan:
                    raise TestbedError(
                        f"Driver {driver!r} is to run on {name!r}, which is not a node; nodes: {', '.join(names)}."
                    )
                root = self.dir / "nodes" / name
                plan[name].append(
                    DriverRecord(
                        driver,
                        root / "plugins" / f"{driver}.sock",
                        root / "volumes" / driver,
                        "local",
                        root / f"driver-{driver}.log",
                    )
                )
        if shared is not None:
            if not _NAME.match(shared) or shared in drivers:
                raise TestbedError(
                    f"Shared volume driver name {shared!r} is not valid or also a per-node driver."
                )
            for name in names:
                root = self.dir / "nodes" / name
                plan[name].append(
                    DriverRecord(
                        shared,
                        root / "plugins" / f"{shared}.sock",
                        self.dir / "shared" / shared,
                        "global",
                        root / f"driver-{shared}.log",
                    )
                )
        return {name: tuple(records) for name, records in plan.items()}

    def _zone_driver_plan(
        self,
        plan: Mapping[str, tuple[DriverRecord, ...]],
        zone_of: Mapping[str, str | None],
        driver: str,
        taken: set[str | None],
    ) -> dict[str, tuple[DriverRecord, ...]]:
        """``plan`` with ``driver`` on every node: global scope, one root per zone."""
        if not _NAME.match(driver) or driver in taken:
            raise TestbedError(
                f"Zone volume driver name {driver!r} is not valid or also another driver's name."
            )
        if any(zone is None for zone in zone_of.values()):
            raise TestbedError(
                f"--zone-driver {driver} needs zones: give --zones a,b (round robin over the nodes)."
            )
        return {
            name: (
                *records,
                DriverRecord(
                    driver,
                    self.dir / "nodes" / name / "plugins" / f"{driver}.sock",
                    self.dir / "shared" / driver / str(zone_of[name]),
                    "global",
                    self.dir / "nodes" / name / f"driver-{driver}.log",
                ),
            )
            for name, records in plan.items()
        }

    def _start_drivers(self, node: NodeRecord) -> NodeRecord:
        """Start the node's volume driver plugins and wait until each answers Plugin.Activate."""
        started = []
        for driver in node.drivers:
            driver.root.mkdir(parents=True, exist_ok=True)
            driver.socket.parent.mkdir(parents=True, exist_ok=True)
            driver.socket.unlink(missing_ok=True)
            argv = [
                *self.moorage,
                "driver",
                "dirvol",
                "--root",
                str(driver.root),
                "--socket",
                str(driver.socket),
            ]
            if driver.scope == "global":
                argv += ["--scope", "global"]
            ref = spawn(argv, driver.log, env=self._child_env())
            started.append(replace(driver, process=ref))

        def ready(record: DriverRecord) -> bool:
            assert record.process is not None
            if not record.process.alive():
                raise TestbedError(
                    f"Volume driver {record.name} of {node.name} exited. {log_tail(record.log)}"
                )
            return _plugin_answers(record.socket)

        try:
            for record in started:
                wait_for(
                    partial(ready, record),
                    timeout=self.timeouts.driver_start,
                    what=f"volume driver {record.name} of {node.name} to answer on {record.socket}",
                    hint=partial(log_tail, record.log),
                )
        except BaseException:
            for record in started:
                if record.process is not None:
                    stop_process(record.process, what=f"driver {record.name}", grace=2.0)
            raise
        return replace(node, drivers=tuple(started))

    def _child_env(self) -> dict[str, str]:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}

    def _spawn_master(self, state: BedState) -> BedState:
        if self.masters > 1:
            return self._spawn_masters(state)
        data_dir = self.dir / "master"
        data_dir.mkdir(parents=True, exist_ok=True)
        log = data_dir / "master.log"
        url = f"http://127.0.0.1:{_free_port()}"
        master = MasterRecord(
            url=url,
            data_dir=data_dir,
            log=log,
            heartbeat_interval=self.heartbeat_interval,
            db_url=self.db_url,
        )
        master = replace(master, process=spawn(self._master_argv(master), log, env=self._child_env()))
        state = replace(state, master=master)
        save_state(state)
        return state

    def _spawn_masters(self, state: BedState) -> BedState:
        """Several masters on one PostgreSQL (they migrate one at a time), and HAProxy in front:
        the front record (``state.master``) is the balancer's address."""
        root = self.dir / "master"
        root.mkdir(parents=True, exist_ok=True)
        peers = []
        for i in range(1, self.masters + 1):
            data_dir = root / f"master-{i}"
            data_dir.mkdir(parents=True, exist_ok=True)
            peer = MasterRecord(
                url=f"http://127.0.0.1:{_free_port()}",
                data_dir=data_dir,
                log=data_dir / "master.log",
                heartbeat_interval=self.heartbeat_interval,
                name=f"master-{i}",
                db_url=self.db_url,
            )
            peer = replace(peer, process=spawn(self._master_argv(peer), peer.log, env=self._child_env()))
            peers.append(peer)
            state = replace(state, masters=tuple(peers))
            save_state(state)
        port = _free_port()
        config = root / "haproxy.cfg"
        config.write_text(haproxy_config(port, [(str(p.name), int(p.url.rpartition(":")[2])) for p in peers]))
        log = root / "haproxy.log"
        balancer = BalancerRecord(url=f"http://127.0.0.1:{port}", config=config, log=log)
        argv = [haproxy_path(), "-db", "-f", str(config)]
        balancer = replace(balancer, process=spawn(argv, log, env=self._child_env()))
        front = MasterRecord(
            url=balancer.url, data_dir=peers[0].data_dir, log=log, db_url=self.db_url, name="balancer"
        )
        state = replace(state, balancer=balancer, master=front)
        save_state(state)
        return state

    def _master_argv(self, master: MasterRecord) -> list[str]:
        """The master's command line: its address, data dir and heartbeat interval as recorded."""
        listen = master.url.removeprefix("http://")
        argv = [*self.moorage, "master", "--listen", listen, "--data-dir", str(master.data_dir)]
        if master.heartbeat_interval is not None:
            argv += ["--heartbeat-interval", f"{master.heartbeat_interval:g}"]
        if master.db_url is not None:
            argv += ["--db", master.db_url]
        if master.name is not None:
            argv += ["--name", master.name]
        return argv

    def _setup_master(self, state: BedState) -> BedState:
        """Wait for the master, then make the grid and get its join token."""
        master = state.master
        assert master is not None
        url, log = master.url, master.log
        admin = self._wait_masters(state) if state.masters else self._wait_master(master)
        headers = {"Authorization": f"Bearer {admin}"}
        self._call("POST", f"{url}/v1/grids", headers, log, json={"name": GRID}, ok=(200, 201))
        # join tokens are shown only when made: a new one (joined nodes keep their own credentials)
        token = self._call("POST", f"{url}/v1/grids/{GRID}/token", headers, log).get("token")
        if not isinstance(token, str) or not token:
            raise TestbedError(f"POST {url}/v1/grids/{GRID}/token gave no token. {log_tail(log)}")
        master = replace(master, grid=GRID, admin_token=admin, join_token=token)
        state = replace(state, master=master)
        save_state(state)
        return state

    def _wait_master(self, master: MasterRecord) -> str:
        """Wait until the master answers; its admin token."""
        self._wait_answers(master)
        log, data_dir = master.log, master.data_dir
        token_file = data_dir / "admin.token"
        admin = wait_for(
            lambda: token_file.read_text().strip() if token_file.exists() else None,
            timeout=self.timeouts.master_start,
            what=f"the master to write its admin token to {token_file}",
            hint=lambda: log_tail(log),
        )
        return str(admin)

    def _wait_answers(self, master: MasterRecord) -> None:
        assert master.process is not None
        process, url, log = master.process, master.url, master.log

        def answers() -> bool:
            if not process.alive():
                raise TestbedError(f"{master.name or 'The master'} exited while starting. {log_tail(log)}")
            try:
                return httpx.get(f"{url}/v1/ping", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(
            answers,
            timeout=self.timeouts.master_start,
            what=f"{master.name or 'the master'} to answer GET {url}/v1/ping",
            hint=lambda: log_tail(log),
        )

    def _wait_masters(self, state: BedState) -> str:
        """Wait until every master answers, itself and through the balancer; the admin token
        (written by the master that made it, whichever that was)."""
        for peer in state.masters:
            self._wait_answers(peer)
        balancer = state.balancer
        assert balancer is not None and balancer.process is not None
        ref = balancer.process

        def balanced() -> bool:
            if not ref.alive():
                raise TestbedError(f"HAProxy exited. {log_tail(balancer.log)}")
            try:
                return httpx.get(f"{balancer.url}/v1/ping", timeout=2.0).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(
            balanced,
            timeout=self.timeouts.master_start,
            what=f"HAProxy to answer GET {balancer.url}/v1/ping",
            hint=lambda: log_tail(balancer.log),
        )
        files = [peer.data_dir / "admin.token" for peer in state.masters]
        admin = wait_for(
            lambda: next((f.read_text().strip() for f in files if f.exists()), None),
            timeout=self.timeouts.master_start,
            what=f"a master to write its admin token to one of {', '.join(map(str, files))}",
        )
        return str(admin)

    def _call(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        log: Path,
        *,
        json: Any = None,
        ok: Sequence[int] = (200, 201),
    ) -> dict[str, Any]:
        try:
            response = httpx.request(method, url, headers=dict(headers), json=json, timeout=30.0)
        except httpx.HTTPError as exc:
            raise TestbedError(f"{method} {url} failed: {exc}. {log_tail(log)}") from exc
        if response.status_code not in ok:
            raise TestbedError(
                f"{method} {url} answered {response.status_code}: {response.text}. {log_tail(log)}"
            )
        try:
            body = response.json()
        except ValueError:
            return {}
        return body if isinstance(body, dict) else {}

    def _start_relay(self, state: BedState, node: NodeRecord) -> BedState:
        """Start the node's relay to the master unless it runs (cut if the node is); wait until it answers."""
        assert state.master is not None
        if node.relay is not None and node.relay.alive():
            return state
        port = node.relay_port or _free_port()
        argv = [
            sys.executable, "-m", "moorage.testbed.relay",
            "--listen", str(port),
            "--upstream", state.master.url.removeprefix("http://"),
            "--control", str(node.relay_socket),
        ]  # fmt: skip
        if node.cut:
            argv.append("--cut")
        node.relay_socket.unlink(missing_ok=True)
        ref = spawn(argv, node.relay_log, env=self._child_env())
        node = replace(node, relay=ref, relay_port=port)
        state = state.with_node(node)
        save_state(state)

        def answers() -> bool:
            if not ref.alive():
                raise TestbedError(f"The relay of {node.name} exited. {log_tail(node.relay_log)}")
            try:
                return relay.control(node.relay_socket, "state", timeout=2.0) in ("cut", "healed")
            except OSError:
                return False

        wait_for(
            answers,
            timeout=self.timeouts.driver_start,
            what=f"the relay of {node.name} to answer on {node.relay_socket}",
            hint=lambda: log_tail(node.relay_log),
        )
        return state

    def _start_agent(self, state: BedState, node: NodeRecord) -> BedState:
        """Start the node's agent, dialling the master through the node's relay."""
        state = self._start_relay(state, node)
        node = state.node(node.name)
        assert state.master is not None
        node.agent_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            *self.moorage, "agent",
            "--master", f"http://127.0.0.1:{node.relay_port}",
            "--name", node.name,
            "--docker-host", node.paths.docker_host,
            "--plugin-dir", str(node.paths.plugins),
            "--data-dir", str(node.agent_dir),
            "--helper-image", BUSYBOX,
        ]  # fmt: skip
        if node.zone is not None:
            argv += ["--label", f"zone={node.zone}"]
        # the join token by environment, not on the command line (where 'ps' shows it)
        env = {**self._child_env(), "MOORAGE_JOIN_TOKEN": state.master.join_token}
        agent = spawn(argv, node.agent_log, env=env)
        state = state.with_node(replace(node, agent=agent))
        save_state(state)
        return state

    def _wait_online(self, state: BedState, names: Sequence[str]) -> None:
        """Wait until these nodes are online; a cut-off node cannot be, so it is not waited for."""
        master = state.master
        assert master is not None
        names = [name for name in names if not state.node(name).cut]
        if not names:
            return
        url = f"{master.url}/v1/nodes/{master.grid}"
        headers = {"Authorization": f"Bearer {master.admin_token}"}
        seen: dict[str, str] = {}

        def all_online() -> bool:
            for name in names:
                node = state.node(name)
                if node.agent is not None and not node.agent.alive():
                    raise TestbedError(f"The agent of {name} exited. {log_tail(node.agent_log)}")
            if master.process is not None and not master.process.alive():
                raise TestbedError(f"The master exited. {log_tail(master.log)}")
            try:
                listed = httpx.get(url, headers=headers, timeout=5.0).json().get("nodes", [])
            except (httpx.HTTPError, ValueError, AttributeError):
                return False
            seen.clear()
            seen.update({str(n.get("name")): str(n.get("status")) for n in listed if isinstance(n, dict)})
            return all(seen.get(name) == "online" for name in names)

        def hint() -> str:
            missing = [n for n in names if seen.get(n) != "online"]
            logs = "\n".join(log_tail(state.node(n).agent_log, 5) for n in missing)
            states = ", ".join(f"{n} ({seen.get(n, 'not listed')})" for n in missing)
            return f"Not online: {states}.\n{logs}"

        wait_for(
            all_online,
            timeout=self.timeouts.nodes_online,
            what=f"nodes {', '.join(names)} to be online in GET {url}",
            hint=hint,
        )

    # ----- tearing down ----------------------------------------------------------------------

    def _teardown(self, *, remove_files: bool) -> None:
        """Stop everything of this testbed (recorded or found by node name); optionally delete it."""
        try:
            state = load_state(self.dir)
        except TestbedError:
            state = None  # a damaged file: still sweep every node folder below
        records = {n.name: n for n in state.nodes} if state else {}
        stop_processes(self._control_processes(state), grace=self.timeouts.process_stop)

        nodes_dir = self.dir / "nodes"
        names = set(records)
        if nodes_dir.is_dir():
            names.update(entry.name for entry in nodes_dir.iterdir() if entry.is_dir())

        def remove(name: str) -> None:
            record = records.get(name)
            root = record.root if record else nodes_dir / name
            engine = record.engine if record else None
            remove_engine(NodeRecord(name, 0, root).paths, engine, grace=0)

        _parallel(remove, sorted(names))
        # Drivers last: an engine may still call them while it stops.
        drivers = [
            (f"driver {d.name} of {node.name}", d.process)
            for node in records.values()
            for d in node.drivers
            if d.process is not None
        ]
        stop_processes(drivers, grace=self.timeouts.process_stop)
        for name in netns.names():  # namespaces of earlier crashed runs that nothing uses any more
            ns_inode = netns.inode(name)
            if ns_inode is not None and not netns.processes_in(ns_inode):
                netns.remove(name)
        unmount_under(self.dir)
        self._check_clean(sorted(names))
        if remove_files:
            for folder in ("nodes", "master", "shared"):
                shutil.rmtree(self.dir / folder, ignore_errors=True)
            state_file(self.dir).unlink(missing_ok=True)

    @staticmethod
    def _control_processes(state: BedState | None) -> list[tuple[str, ProcessRef]]:
        """The agents, relays, masters and the balancer of the testbed, as recorded."""
        if state is None:
            return []
        refs: list[tuple[str, ProcessRef]] = []
        for node in state.nodes:
            if node.agent is not None:
                refs.append((f"agent of {node.name}", node.agent))
            if node.relay is not None:
                refs.append((f"relay of {node.name}", node.relay))
        if state.master is not None and state.master.process is not None:
            refs.append(("master", state.master.process))
        refs += [(str(m.name), m.process) for m in state.masters if m.process is not None]
        if state.balancer is not None and state.balancer.process is not None:
            refs.append(("HAProxy", state.balancer.process))
        return refs

    def _check_clean(self, names: Sequence[str]) -> None:
        left: list[str] = []
        for name in names:
            paths = NodeRecord(name, 0, self.dir / "nodes" / name).paths
            pids = engine_processes(paths)
            if pids:
                left.append(f"processes of {name}: {', '.join(str(p.pid) for p in pids)}")
            if netns.inode(paths.netns) is not None:
                left.append(f"network namespace {paths.netns}")
        mounts = mounted_under(self.dir)
        if mounts:
            left.append(f"mounts {', '.join(mounts)}")
        if left:
            raise TestbedError(f"Could not clean up the testbed in {self.dir}: {'; '.join(left)} remain.")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold ``<dir>/.lock`` so two testbed commands on one folder never interleave."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with (self.dir / ".lock").open("a") as handle:

            def take() -> bool:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            wait_for(take, timeout=300.0, what=f"another testbed command on {self.dir} to finish")
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


# ----- what ``moorage testbed …`` calls (see moorage.cli.testbed) ---------------------------------


def up(
    nodes: int = 3,
    zones: Sequence[str] = (),
    directory: Path = DEFAULT_DIR,
    *,
    drivers: Mapping[str, Sequence[str]] | None = None,
    shared_driver: str | None = None,
    zone_driver: str | None = None,
    engines_only: bool = False,
    heartbeat_interval: float | None = None,
    masters: int = 1,
    db_url: str | None = None,
) -> str:
    """``moorage testbed up``: a fresh testbed in ``directory`` (replacing any); its export lines."""
    bed = Testbed(directory, heartbeat_interval=heartbeat_interval, masters=masters, db_url=db_url)
    bed.up(
        nodes,
        zones,
        drivers=drivers,
        shared_driver=shared_driver,
        zone_driver=zone_driver,
        control_plane=not engines_only,
    )
    return bed.env()


def env(directory: Path = DEFAULT_DIR) -> str:
    """``moorage testbed env``: export lines of the testbed in ``directory``."""
    return Testbed(directory).env()


def down(directory: Path = DEFAULT_DIR) -> None:
    """``moorage testbed down``: stop and remove the testbed (the image cache stays)."""
    Testbed(directory).down()


def node_stop(directory: Path, name: str, *, grace: float = 15.0) -> None:
    """``moorage testbed node stop NAME``: its agent and engine (``grace`` s for containers; 0 = power cut)."""
    Testbed(directory).node_stop(name, grace=grace)


def node_start(directory: Path, name: str) -> None:
    """``moorage testbed node start NAME``: start it again with the same data; wait until online."""
    Testbed(directory).node_start(name)


def agent_stop(directory: Path, name: str, *, kill: bool = False) -> None:
    Testbed(directory).agent_stop(name, kill=kill)


def agent_start(directory: Path, name: str) -> None:
    Testbed(directory).agent_start(name)


def master_restart(directory: Path, *, kill: bool = False) -> str:
    """``moorage testbed master restart``: what happened (nodes not waited for are named)."""
    return Testbed(directory).master_restart(kill=kill)


def master_stop(directory: Path, name: str, *, kill: bool = False) -> None:
    """``moorage testbed master stop NAME [--kill]``: one of several masters."""
    Testbed(directory).master_stop(name, kill=kill)


def master_start(directory: Path, name: str) -> None:
    """``moorage testbed master start NAME``: one of several masters, again."""
    Testbed(directory).master_start(name)


def node_cut(directory: Path, name: str) -> str:
    """``moorage testbed node cut NAME``: partition the node from the master and its containers' network."""
    return Testbed(directory).node_cut(name)


def node_heal(directory: Path, name: str) -> str:
    """``moorage testbed node heal NAME``: end the cut."""
    return Testbed(directory).node_heal(name)


def parse_drivers(specs: Sequence[str]) -> dict[str, list[str]]:
    """``["dirvol=node-1,node-2"]`` -> ``{"dirvol": ["node-1", "node-2"]}`` (for a --driver option)."""
    drivers: dict[str, list[str]] = {}
    for spec in specs:
        name, sep, on = spec.partition("=")
        if not sep or not name or not on:
            raise TestbedError(f"Driver spec {spec!r} must look like NAME=node-1,node-2.")
        drivers.setdefault(name, []).extend(n.strip() for n in on.split(",") if n.strip())
    return drivers

"""One node's Docker Engine: a ``dockerd`` in its own network, mount and UTS namespaces.

Each engine gets

* the network namespace ``mrg-<node>`` (its own ``docker0`` bridge, iptables rules, published
  ports), entered with ``nsenter --net`` (``ip netns exec`` would remount /sys and hide cgroups);
* a private mount namespace in which ``<node>/plugins`` is bind-mounted over
  ``/run/docker/plugins``, so a legacy volume plugin socket put there is seen by this engine
  only; the engine's overlay mounts live and die in that namespace, never on the host;
* a UTS namespace with the node name as host name (``docker info`` Name);
* its own data root, exec root (with its own managed containerd), socket, pid file, daemon
  config and engine key (so each engine has its own ``docker info`` ID);
* ``--cgroup-parent /mrg-<node>``, so every container process of the node can be found.

Stopping is by identity, never by name: the dockerd pid (with start time) first, then every
process left in the node's network namespace (containerd, shims, docker-proxy) and every
process left in its cgroup (containers).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx

from moorage.testbed import cgroups, netns
from moorage.testbed.errors import TestbedError
from moorage.testbed.mounts import unmount_under
from moorage.testbed.process import ProcessRef, kill_all, log_tail, spawn
from moorage.testbed.waiting import wait_for

__all__ = [
    "EnginePaths",
    "EngineRecord",
    "check_host",
    "engine_client",
    "engine_processes",
    "ping",
    "remove_engine",
    "start_engine",
    "stop_engine",
]

PLUGIN_DIR = Path("/run/docker/plugins")
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; containerd adds ".ttrpc" and the like
REQUIRED_PROGRAMS = ("dockerd", "containerd", "nsenter", "unshare", "ip", "mount", "umount", "hostname")

# Runs in the new namespaces: $1 plugin folder, $2 node name, then the dockerd command line.
_ENTER = (
    "set -e; "
    'mount --bind "$1" /run/docker/plugins; '
    # Drop this mount namespace's copies of the other nodes' netns mounts, so that deleting
    # their names on the host really frees them.
    'for ns in /var/run/netns/*; do umount -l "$ns" 2>/dev/null || true; done; '
    'hostname "$2"; shift 2; exec "$@"'
)


@dataclass(frozen=True)
class EnginePaths:
    """Where one node's engine keeps everything, under ``<testbed>/nodes/<name>``."""

    name: str
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def data_root(self) -> Path:
        return self.root / "docker"

    @property
    def exec_root(self) -> Path:
        return self.root / "run"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def plugins(self) -> Path:
        return self.root / "plugins"

    @property
    def config_file(self) -> Path:
        return self.root / "daemon.json"

    @property
    def identity(self) -> str:
        """``mrg-<hash of the node folder>-<node>``: unique per testbed, so two testbeds never clash."""
        digest = hashlib.sha1(str(self.root.resolve()).encode()).hexdigest()[:6]
        return f"{netns.PREFIX}{digest}-{self.name}"

    @property
    def netns(self) -> str:
        return self.identity

    @property
    def cgroup(self) -> str:
        return self.identity

    def dockerd_argv(self) -> list[str]:
        return [
            "dockerd",
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--host", self.docker_host,
            "--pidfile", str(self.pidfile),
            "--config-file", str(self.config_file),
            "--cgroup-parent", f"/{self.cgroup}",
        ]  # fmt: skip

    def argv(self) -> list[str]:
        """The whole command: enter the netns, make the mount and UTS namespaces, run dockerd."""
        return [
            "nsenter", f"--net={netns.path(self.netns)}",
            "unshare", "--mount", "--uts", "--propagation", "private",
            "sh", "-c", _ENTER, "sh", str(self.plugins), self.name,
            *self.dockerd_argv(),
        ]  # fmt: skip


@dataclass(frozen=True)
class EngineRecord:
    """A started engine: its dockerd, the containerd it manages, its netns identity."""

    name: str
    dockerd: ProcessRef
    containerd: ProcessRef | None
    netns_inode: int
    start_seconds: float  # how long the engine took to answer its first ping

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dockerd": self.dockerd.to_json(),
            "containerd": self.containerd.to_json() if self.containerd else None,
            "netns_inode": self.netns_inode,
            "start_seconds": self.start_seconds,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EngineRecord:
        return cls(
            name=str(data["name"]),
            dockerd=ProcessRef.from_json(data["dockerd"]),
            containerd=ProcessRef.from_json(data["containerd"]) if data.get("containerd") else None,
            netns_inode=int(data["netns_inode"]),
            start_seconds=float(data.get("start_seconds", 0.0)),
        )


def check_host() -> None:
    """Raise a clear error unless this is root on a host with dockerd and the namespace tools."""
    if os.geteuid() != 0:
        raise TestbedError("The testbed needs root: it creates network namespaces and starts dockerd.")
    missing = [p for p in REQUIRED_PROGRAMS if shutil.which(p) is None]
    if missing:
        raise TestbedError(
            f"Missing on this host: {', '.join(missing)}. "
            "Install with `apt-get install -y docker.io busybox-static iproute2 util-linux`."
        )


def ping(paths: EnginePaths, timeout: float = 2.0) -> bool:
    """True when the engine answers ``GET /_ping`` on its socket."""
    if not paths.socket.exists():
        return False
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(paths.socket)), timeout=timeout) as http:
            return http.get("http://docker/_ping").text == "OK"
    except httpx.HTTPError:
        return False


def engine_client(paths: EnginePaths, timeout: int = 60) -> docker.DockerClient:
    """A docker-py client for this engine (close it when done)."""
    return docker.DockerClient(base_url=paths.docker_host, timeout=timeout)


def _check_socket_lengths(paths: EnginePaths) -> None:
    longest = max(
        len(str(paths.exec_root / "containerd" / "containerd.sock.ttrpc")),
        len(str(paths.exec_root / "containerd" / "containerd-debug.sock")),
        len(str(paths.plugins / "a-volume-driver.sock")),
    )
    if longest > MAX_SOCKET_PATH:
        raise TestbedError(
            f"The testbed folder {paths.root.parent.parent} is too deep: unix socket paths under it "
            f"would be {longest} characters, and at most {MAX_SOCKET_PATH} work. Use a shorter --dir."
        )


def engine_processes(paths: EnginePaths, record: EngineRecord | None = None) -> list[ProcessRef]:
    """Every live process of this node's engine: in its netns (dockerd, containerd, shims,
    docker-proxy) or in its cgroup (containers)."""
    found = {ref.pid: ref for ref in cgroups.processes_in(paths.cgroup)}
    ns_inode = netns.inode(paths.netns)
    if ns_inode is None and record is not None:
        # The name is gone; the recorded inode is still ours only while one of our processes
        # pins the namespace (an inode number is reused only after the namespace is freed).
        pinned = record.dockerd.alive() or (record.containerd is not None and record.containerd.alive())
        ns_inode = record.netns_inode if pinned else None
    if ns_inode is not None:
        found.update({ref.pid: ref for ref in netns.processes_in(ns_inode)})
    if record is not None and record.dockerd.alive():
        found[record.dockerd.pid] = record.dockerd
    return list(found.values())


def start_engine(paths: EnginePaths, *, timeout: float = 60.0) -> EngineRecord:
    """Start this node's engine (its netns is created if missing) and wait until it answers ping.

    The data root is kept from an earlier run, so images, volumes and containers come back.
    """
    check_host()
    _check_socket_lengths(paths)
    running = engine_processes(paths)
    if running:
        raise TestbedError(
            f"The engine of {paths.name} is already running (pids {', '.join(str(r.pid) for r in running)}); "
            f"stop it first (`moorage testbed node stop {paths.name}`)."
        )
    for folder in (paths.root, paths.data_root, paths.plugins, PLUGIN_DIR):
        folder.mkdir(parents=True, exist_ok=True)
    # The exec root is this engine's /run: stale pid files there could name a reused pid.
    shutil.rmtree(paths.exec_root, ignore_errors=True)
    paths.pidfile.unlink(missing_ok=True)
    paths.config_file.write_text(json.dumps({"deprecated-key-path": str(paths.root / "key.json")}) + "\n")
    netns.add(paths.netns)
    ns_inode = netns.inode(paths.netns)
    assert ns_inode is not None

    began = time.monotonic()
    dockerd = spawn(paths.argv(), paths.log)

    def answers() -> bool:
        if not dockerd.alive():
            raise TestbedError(f"dockerd of {paths.name} exited while starting. {log_tail(paths.log)}")
        return ping(paths)

    try:
        wait_for(
            answers,
            timeout=timeout,
            what=f"dockerd of {paths.name} to answer on {paths.socket}",
            hint=lambda: log_tail(paths.log),
        )
    except TestbedError:
        stop_engine(paths, EngineRecord(paths.name, dockerd, None, ns_inode, 0.0), grace=0)
        raise
    took = time.monotonic() - began
    containerd = None
    with contextlib.suppress(FileNotFoundError, ValueError):
        containerd = ProcessRef.of(int((paths.exec_root / "containerd" / "containerd.pid").read_text()))
    return EngineRecord(paths.name, dockerd, containerd, ns_inode, round(took, 3))


def stop_engine(
    paths: EnginePaths, record: EngineRecord | None, *, grace: float = 15.0, timeout: float = 30.0
) -> None:
    """Stop the engine and everything it started; keep its data root and netns.

    dockerd gets SIGTERM and ``grace`` seconds to stop its containers (it gives each the
    container's stop timeout, 10 s by default); then whatever is left of the node (dockerd,
    containerd, shims, docker-proxy, container processes) is killed. ``grace=0`` is a power cut.
    """
    if record is not None and record.dockerd.alive() and grace > 0:
        record.dockerd.signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        while record.dockerd.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    # Unix sockets bound in the node's netns outside its folder (containerd shims bind theirs
    # under /run/containerd/s/) outlive killed processes as files: note them to remove them.
    leftover_sockets = {
        path
        for ref in engine_processes(paths, record)
        for path in netns.unix_socket_paths(ref.pid)
        if not path.startswith(str(paths.root) + "/")
    }

    def all_gone() -> bool:
        left = engine_processes(paths, record)
        if left:
            kill_all(left, what=f"processes of {paths.name}'s engine", timeout=timeout)
        return not engine_processes(paths, record)

    wait_for(all_gone, timeout=timeout, what=f"every process of {paths.name}'s engine to exit")
    wait_for(
        lambda: not cgroups.remove(paths.cgroup),
        timeout=timeout,
        what=f"cgroup /{paths.cgroup} of {paths.name} to be removable",
    )
    for path in leftover_sockets:
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
    unmount_under(paths.root)
    paths.pidfile.unlink(missing_ok=True)


def remove_engine(paths: EnginePaths, record: EngineRecord | None, *, grace: float = 0.0) -> None:
    """Stop the engine and delete its netns (its files stay; the caller removes the folder)."""
    stop_engine(paths, record, grace=grace)
    netns.remove(paths.netns)

"""Named network namespaces (``ip netns``), one per testbed node, all named ``mrg-<node>``."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from moorage.testbed.errors import TestbedError
from moorage.testbed.process import ProcessRef

__all__ = [
    "PREFIX",
    "add",
    "bridges",
    "inode",
    "names",
    "path",
    "processes_in",
    "remove",
    "set_bridges",
    "unix_socket_paths",
]

PREFIX = "mrg-"
RUN_DIR = Path("/var/run/netns")


def path(name: str) -> Path:
    return RUN_DIR / name


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TestbedError(f"`ip {' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")


def add(name: str) -> None:
    """Create the namespace (if missing) with its loopback up."""
    if inode(name) is None:
        _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")


def bridges(name: str) -> list[str]:
    """The bridges in the namespace (``docker0`` and one per user-defined network)."""
    done = subprocess.run(
        ["ip", "-n", name, "-o", "link", "show", "type", "bridge"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise TestbedError(f"`ip -n {name} link show type bridge` failed: {done.stderr.strip()}")
    # "4: docker0: <NO-CARRIER,BROADCAST,MULTICAST,UP> mtu 1500 ..."
    return [
        line.split(":", 2)[1].strip().split("@", 1)[0] for line in done.stdout.splitlines() if ":" in line
    ]


def set_bridges(name: str, *, up: bool) -> list[str]:
    """Set every bridge of the namespace up or down (its containers' network); the bridges set."""
    found = bridges(name)
    for bridge in found:
        _ip("-n", name, "link", "set", bridge, "up" if up else "down")
    return found


def remove(name: str) -> None:
    """Delete the namespace's name; it is freed once no process is left in it."""
    if path(name).exists():
        _ip("netns", "delete", name)


def inode(name: str) -> int | None:
    """The namespace's inode (its identity), or None when no namespace of that name is mounted."""
    try:
        return os.stat(path(name)).st_ino
    except FileNotFoundError:
        return None


def names(prefix: str = PREFIX) -> list[str]:
    try:
        return sorted(entry for entry in os.listdir(RUN_DIR) if entry.startswith(prefix))
    except FileNotFoundError:
        return []


def processes_in(ns_inode: int) -> list[ProcessRef]:
    """Every process whose network namespace is the one with this inode."""
    found: list[ProcessRef] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}/ns/net").st_ino != ns_inode:
                continue
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ref = ProcessRef.of(int(entry))
        if ref is not None:
            found.append(ref)
    return found


def unix_socket_paths(pid: int) -> list[str]:
    """Paths of the unix sockets bound in the network namespace of ``pid`` (``/proc/<pid>/net/unix``)."""
    try:
        lines = Path(f"/proc/{pid}/net/unix").read_text().splitlines()[1:]
    except (FileNotFoundError, ProcessLookupError):
        return []
    paths = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 8 and parts[7].startswith("/"):
            paths.append(parts[7])
    return paths

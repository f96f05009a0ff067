"""After a testbed is down: nothing of it may be left (namespaces, mounts, processes)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def assert_nothing_left(directory: Path, nodes: Iterable[str]) -> None:
    """No network namespace of these nodes, no mount and no process that names ``directory``."""
    from moorage.testbed.engine import EnginePaths

    ours = {EnginePaths(node, directory / "nodes" / node).netns for node in nodes}
    netns = Path("/var/run/netns")
    left = sorted(ours & {p.name for p in netns.iterdir()}) if netns.exists() else []
    assert not left, f"network namespaces left behind: {left}"
    mounts = [
        line.split()[1]
        for line in Path("/proc/self/mounts").read_text().splitlines()
        if str(directory) in line
    ]
    assert not mounts, f"mounts left behind: {mounts}"
    procs = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(directory) in cmdline:
                procs.append(f"{proc.name}: {cmdline[:120]}")
    assert not procs, f"processes left behind: {procs}"

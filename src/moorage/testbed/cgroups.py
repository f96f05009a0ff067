"""The control group each node's engine puts its containers under (``--cgroup-parent /mrg-<node>``).

It names every container process of one node, in every cgroup hierarchy (v1 or v2), so a node
can be swept clean even when its engine died without stopping its containers.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from moorage.testbed.process import ProcessRef

__all__ = ["hierarchies", "processes_in", "remove"]


def hierarchies() -> list[Path]:
    """Mount points of every cgroup (v1) and cgroup2 hierarchy."""
    roots = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[2] in ("cgroup", "cgroup2"):
            roots.append(Path(parts[1]))
    return roots


def _dirs(name: str) -> list[Path]:
    """Every folder of the cgroup ``name`` and of its descendants, deepest first."""
    found: list[Path] = []
    for root in hierarchies():
        top = root / name
        if top.is_dir():
            for dirpath, _, _ in os.walk(top):
                found.append(Path(dirpath))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def processes_in(name: str) -> list[ProcessRef]:
    """Every process in the cgroup ``name`` or below it, in any hierarchy."""
    pids: set[int] = set()
    for folder in _dirs(name):
        with contextlib.suppress(FileNotFoundError, OSError):
            pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
    refs = (ProcessRef.of(pid) for pid in sorted(pids))
    return [ref for ref in refs if ref is not None]


def remove(name: str) -> list[Path]:
    """Remove the cgroup ``name`` and its descendants; return the folders that are still busy."""
    busy = []
    for folder in _dirs(name):
        try:
            folder.rmdir()
        except FileNotFoundError:
            pass
        except OSError:
            busy.append(folder)
    return busy

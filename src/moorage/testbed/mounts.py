"""Mounts in this (the host's) mount namespace that lie under a testbed folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

from moorage.testbed.errors import TestbedError

__all__ = ["mounted_under", "unmount_under"]


def _unescape(field: str) -> str:
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    for code, char in (("\\040", " "), ("\\011", "\t"), ("\\012", "\n"), ("\\134", "\\")):
        field = field.replace(code, char)
    return field


def mounted_under(folder: Path, mounts_file: Path = Path("/proc/self/mounts")) -> list[str]:
    """Mount points at or under ``folder``, deepest first."""
    top = str(folder.resolve())
    points = []
    for line in mounts_file.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        point = _unescape(parts[1])
        if point == top or point.startswith(top + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_under(folder: Path) -> None:
    """Lazily unmount everything at or under ``folder``; raise if something stays mounted."""
    for point in mounted_under(folder):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    left = mounted_under(folder)
    if left:
        raise TestbedError(f"Could not unmount {', '.join(left)}; try `umount -l` on each by hand.")

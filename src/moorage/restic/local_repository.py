"""What can be read of a restic repository on a path of this machine without restic (and so
without deriving its key, about half a second per restic run): the full id of a snapshot whose
short id ``restic backup --json`` printed (restic 0.14 prints only that), which is the name of
its file under ``snapshots/`` (restic's local layout: one file per snapshot, named by its id)."""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["full_snapshot_id"]

_ID = re.compile(r"[0-9a-f]{64}")


def full_snapshot_id(repository: Path, short: str) -> str | None:
    """The one snapshot id in ``repository`` that starts with ``short``; None when none or more
    than one does, or the folder cannot be read (the caller asks restic instead)."""
    if not re.fullmatch(r"[0-9a-f]{8,64}", short):
        return None
    try:
        names = os.listdir(repository / "snapshots")
    except OSError:
        return None
    found = [name for name in names if name.startswith(short) and _ID.fullmatch(name)]
    return found[0] if len(found) == 1 else None

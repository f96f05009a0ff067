"""What ``restic backup --json`` prints, one JSON object a line: status lines while it reads, a
summary at the end, errors on the way. Parsed into plain values for progress and results."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from moorage.model.backup import SNAPSHOT_PATH

__all__ = ["Failure", "Progress", "Summary", "Unchanged", "parse_line"]


@dataclass(frozen=True, slots=True)
class Progress:
    bytes_done: int
    bytes_total: int
    files_done: int
    files_total: int


@dataclass(frozen=True, slots=True)
class Summary:
    snapshot: str  # the short id restic 0.14 prints (the full one: restic/local_repository.py, or restic)
    size: int  # bytes of the files in the snapshot
    files: int
    added: int  # bytes added to the repository (after de-duplication and compression)
    files_new: int
    files_changed: int
    duration: float
    unchanged: frozenset[str] = frozenset()  # files (paths in the volume) found as in the parent


@dataclass(frozen=True, slots=True)
class Unchanged:
    """``--verbose``: a file restic found as it was in the parent snapshot (path in the volume)."""

    path: str


@dataclass(frozen=True, slots=True)
class Failure:
    message: str


def _int(doc: dict[str, Any], key: str) -> int:
    value = doc.get(key)
    return int(value) if isinstance(value, int | float) else 0


def parse_line(line: str) -> Progress | Summary | Unchanged | Failure | None:
    """One line of ``restic backup --json``; None for what is neither progress, summary nor error."""
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    kind = doc.get("message_type")
    if kind == "status" and "percent_done" in doc:
        return Progress(
            bytes_done=_int(doc, "bytes_done"),
            bytes_total=_int(doc, "total_bytes"),
            files_done=_int(doc, "files_done"),
            files_total=_int(doc, "total_files"),
        )
    if kind == "verbose_status":
        item = str(doc.get("item") or "")
        if (
            doc.get("action") == "unchanged"
            and item.startswith(SNAPSHOT_PATH + "/")
            and not item.endswith("/")
        ):
            return Unchanged(item[len(SNAPSHOT_PATH) + 1 :])
        return None
    if kind == "summary":
        return Summary(
            snapshot=str(doc.get("snapshot_id") or ""),
            size=_int(doc, "total_bytes_processed"),
            files=_int(doc, "total_files_processed"),
            added=_int(doc, "data_added"),
            files_new=_int(doc, "files_new"),
            files_changed=_int(doc, "files_changed"),
            duration=float(doc.get("total_duration") or 0.0),
        )
    if kind == "error":
        error = doc.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        return Failure(f"{doc.get('item', '')}: {message}")
    return None

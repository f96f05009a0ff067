"""The node's stable id, kept in the agent's data dir so a restart is the same node."""

from __future__ import annotations

import uuid
from pathlib import Path

__all__ = ["node_id"]


def node_id(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / "node_id"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = uuid.uuid4().hex
    tmp = path.with_suffix(".tmp")
    tmp.write_text(value + "\n")
    tmp.replace(path)
    return value

"""Who this node is, kept in the agent's data dir so a restart is the same node.

node_id            the node's stable id, made at first start
node_credential    the node's own secret, issued by the master at first join (mode 0600);
                   it, not the join token, reconnects this node
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["CREDENTIAL_FILE", "load_credential", "node_id", "save_credential"]

CREDENTIAL_FILE = "node_credential"


def _write_private(path: Path, value: str) -> None:
    """Write ``value`` to ``path`` atomically, the file 0600 from its first byte."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(value + "\n")
    tmp.replace(path)


def node_id(data_dir: Path) -> str:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = data_dir / "node_id"
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = uuid.uuid4().hex
    _write_private(path, value)
    return value


def load_credential(data_dir: Path) -> str | None:
    path = data_dir / CREDENTIAL_FILE
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # readable by others (copied by hand?): not any more
    return value or None


def save_credential(data_dir: Path, credential: str) -> None:
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_private(data_dir / CREDENTIAL_FILE, credential)

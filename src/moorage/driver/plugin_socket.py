"""The unix socket a Docker plugin listens on: bound with tight permissions, stale files cleared.

Docker finds legacy plugins by socket file (``/run/docker/plugins/<name>.sock``). Binding the
socket here, rather than letting the HTTP server do it, lets us refuse to steal a socket another
live plugin is serving, replace one left by a plugin that died, create it 0660 with no window where
it is world-writable, and on exit remove it only if it is still ours.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from moorage.errors import Conflict

__all__ = ["SOCKET_MODE", "plugin_socket"]

SOCKET_MODE = 0o660


@contextlib.contextmanager
def plugin_socket(path: Path) -> Iterator[socket.socket]:
    """A listening unix socket at ``path`` (mode 0660), closed and removed on exit.

    A stale socket file (nobody answers on it) is replaced. Raises Conflict when another process
    is listening there, or when ``path`` exists and is not a socket.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    _clear_stale(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        previous_umask = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(previous_umask)
        inode = path.lstat().st_ino
        os.chmod(path, SOCKET_MODE)
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    try:
        yield sock
    finally:
        sock.close()
        _remove_if_ours(path, inode)


def _clear_stale(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Conflict(f"{path} exists and is not a socket; move it away or choose another socket path")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise Conflict(f"another process is already serving {path}; stop it or choose another socket path")


def _remove_if_ours(path: Path, inode: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        if path.lstat().st_ino == inode:
            path.unlink()

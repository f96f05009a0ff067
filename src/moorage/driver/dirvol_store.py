"""The volumes of the ``dirvol`` plugin: plain directories under one root, plus mount reference counts.

On disk, one folder per volume::

    <root>/
      <name>/
        volume.json      metadata: {"name", "created_at", "opts"}; never visible in a container
        data/            the mountpoint handed to Docker
      .trash-<name>-<hex>/   a volume being deleted (renamed first, so the name is free at once)

A volume exists when ``<root>/<name>/data`` is a directory. ``volume.json`` is best effort: when it
is missing or unreadable the volume still lists, with the folder's change time and no options, so
volumes survive a plugin restart and an operator can seed one by hand. Metadata is written to a
temporary file and renamed, so it is never half written.

Reference counts live in memory only: the set of caller ids (Docker passes the container's mount id)
that have a volume mounted. The same id mounting twice counts once.

Errors are :mod:`moorage.errors` kinds, worded for the Docker user who reads them:
``InvalidInput`` (bad name or options), ``NotFound`` (no such volume), ``Conflict`` (removing a
mounted volume).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from moorage.errors import Conflict, InvalidInput, NotFound

__all__ = ["DATA_DIR", "METADATA_FILE", "TRASH_PREFIX", "Volume", "VolumeStore", "volume_name_error"]

DATA_DIR = "data"
METADATA_FILE = "volume.json"
TRASH_PREFIX = ".trash-"

# Docker's own rule for volume names, minus its two-character minimum; it can never be '.' or '..'.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_NAME_MAX = 200  # leaves room for the trash prefix and suffix within a 255-byte file name


@dataclass(frozen=True)
class Volume:
    """One dirvol volume as stored on disk."""

    name: str
    mountpoint: Path
    created_at: datetime
    opts: Mapping[str, str] = field(default_factory=dict)


def volume_name_error(name: object) -> str | None:
    """None when ``name`` is a usable volume name, else a sentence saying what is wrong."""
    if not isinstance(name, str) or not name:
        return "a volume name is required (a non-empty string)"
    if len(name) > _NAME_MAX or not _NAME_RE.match(name):
        return (
            f"volume name {name!r} is not valid: use up to {_NAME_MAX} letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return None


class VolumeStore:
    """Directory volumes under ``root`` and who has them mounted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._mounts: dict[str, set[str]] = {}
        root.mkdir(parents=True, exist_ok=True)

    # -- queries -------------------------------------------------------------------------------

    def get(self, name: str) -> Volume:
        """The volume ``name``; NotFound when it does not exist."""
        folder = self._folder(name)
        data = folder / DATA_DIR
        if not data.is_dir():
            raise NotFound(f"volume {name} not found")
        created_at, opts = _read_metadata(folder)
        return Volume(name=name, mountpoint=data, created_at=created_at, opts=opts)

    def volumes(self) -> list[Volume]:
        """Every volume under the root, by name."""
        volumes = []
        for entry in sorted(self.root.iterdir()):
            if volume_name_error(entry.name) is None and (entry / DATA_DIR).is_dir():
                volumes.append(self.get(entry.name))
        return volumes

    def mount_count(self, name: str) -> int:
        """How many distinct callers have ``name`` mounted."""
        return len(self._mounts.get(name, ()))

    # -- changes -------------------------------------------------------------------------------

    def create(self, name: str, opts: Mapping[str, str]) -> Volume:
        """Create ``name``, or return it unchanged (first options kept) when it already exists."""
        folder = self._folder(name)
        (folder / DATA_DIR).mkdir(parents=True, exist_ok=True)
        if not (folder / METADATA_FILE).is_file():
            _write_metadata(folder, name, datetime.now(UTC).replace(microsecond=0), opts)
        return self.get(name)

    def detach(self, name: str) -> Path:
        """Take ``name`` out of the store and return the renamed folder, for the caller to delete.

        Refused with Conflict while anyone has it mounted. Renaming first makes removal atomic:
        the name is free (and can be created again) before the possibly slow delete begins.
        """
        self.get(name)
        users = self.mount_count(name)
        if users:
            raise Conflict(f"volume {name} is in use by {users} mount(s); stop the containers using it first")
        trash = self.root / f"{TRASH_PREFIX}{name}-{secrets.token_hex(4)}"
        self._folder(name).rename(trash)
        self._mounts.pop(name, None)
        return trash

    def mount(self, name: str, caller: str) -> Path:
        """Record that ``caller`` mounts ``name`` and return its mountpoint."""
        volume = self.get(name)
        self._mounts.setdefault(name, set()).add(caller)
        return volume.mountpoint

    def unmount(self, name: str, caller: str) -> None:
        """Forget ``caller``'s mount of ``name``; a caller that holds no mount is a no-op.

        A caller unknown to this process is normal after a plugin restart (counts are in memory).
        """
        users = self._mounts.get(name)
        if users is not None and caller in users:
            users.discard(caller)
            if not users:
                del self._mounts[name]
            return
        self.get(name)

    def purge_trash(self) -> None:
        """Delete folders left by removals that did not finish (best effort)."""
        for entry in self.root.iterdir():
            if entry.name.startswith(TRASH_PREFIX):
                shutil.rmtree(entry, ignore_errors=True)

    # -- helpers -------------------------------------------------------------------------------

    def _folder(self, name: str) -> Path:
        problem = volume_name_error(name)
        if problem is not None:
            raise InvalidInput.one("Name", problem)
        return self.root / name


def _read_metadata(folder: Path) -> tuple[datetime, dict[str, str]]:
    """Creation time and options from ``volume.json``, falling back to the folder's change time."""
    try:
        raw = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        created_at = datetime.fromisoformat(raw["created_at"])
        if created_at.tzinfo is None:
            created_at = created_at.replace(tzinfo=UTC)
        opts = raw.get("opts") or {}
        if isinstance(opts, dict) and all(isinstance(v, str) for v in opts.values()):
            return created_at, {str(k): v for k, v in opts.items()}
        return created_at, {}
    except (OSError, ValueError, KeyError, TypeError):
        mtime = folder.stat().st_mtime
        return datetime.fromtimestamp(int(mtime), UTC), {}


def _write_metadata(folder: Path, name: str, created_at: datetime, opts: Mapping[str, str]) -> None:
    body = {"name": name, "created_at": created_at.isoformat(), "opts": dict(opts)}
    tmp = folder / f".{METADATA_FILE}.{secrets.token_hex(4)}"
    tmp.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, folder / METADATA_FILE)

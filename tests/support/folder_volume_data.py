"""A fake agent's volume data in folders: one folder per Docker volume, read and written as real
tar streams and described by real manifests (``volume_manifest.of_tree``), so a volume move
through a real master between fake agents copies, verifies and switches for real. What the
helper containers of ``agent/volume_data.VolumeData`` do on an engine, done on the test's disk.

As on an engine, a Docker volume is labelled by what made it: a write that would make one is
refused where one of that name with other labels is there, and a drop removes only one whose
labels it names. ``fail_writes``: every write ends with that error (a full disk on the target);
``hold``: the next manifest waits for an event (a move held where a test wants it); ``stats``
lists with real lstat."""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import shutil
import tarfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from moorage.agent import volume_manifest, volume_stats

__all__ = ["FolderVolumeData"]

CHUNK = 1024 * 1024


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def next_chunk(self) -> bytes | None:
        if self.at >= len(self.data):
            return None
        piece = self.data[self.at : self.at + CHUNK]
        self.at += len(piece)
        return piece


class _Writer:
    def __init__(self, root: Path, fail: str | None) -> None:
        self.root = root
        self.fail = fail
        self.buffer = io.BytesIO()

    def write(self, data: bytes) -> None:
        self.buffer.write(data)

    def finish(self) -> None:
        if self.fail is not None:
            raise ValueError(self.fail)
        self.buffer.seek(0)
        with tarfile.open(fileobj=self.buffer, mode="r|") as tar:
            tar.extractall(self.root, filter="fully_trusted")


class FolderVolumeData:
    def __init__(self, root: Path, fail_writes: str | None = None) -> None:
        self.root = root
        self.fail_writes = fail_writes
        self.made: list[str] = []  # Docker volumes made by writes (ensure_volume)
        self.dropped: list[str] = []
        self.labels: dict[str, dict[str, str]] = {}  # of the volumes ensure_volume made
        # op -> an event: the next such op waits for it (``reached`` is set when one does)
        self.hold: dict[str, threading.Event] = {}
        self.reached = threading.Event()

    def folder(self, volume: str) -> Path:
        path = self.root / volume
        path.mkdir(parents=True, exist_ok=True)
        return path

    def exists(self, volume: str) -> bool:
        return (self.root / volume).is_dir()

    def users(self, volume: str) -> list[str]:
        return []  # a fake node runs no containers

    @contextlib.contextmanager
    def reading(self, volume: str, paths: Sequence[str] | None = None) -> Iterator[_Reader]:
        root, out = self.folder(volume), io.BytesIO()
        with tarfile.open(fileobj=out, mode="w|") as tar:
            if paths is None:
                tar.add(root, arcname=".")
            else:
                for path in paths:
                    tar.add(root / path, arcname=f"./{path}", recursive=False)
        yield _Reader(out.getvalue())

    @contextlib.contextmanager
    def writing(self, volume: str) -> Iterator[_Writer]:
        yield _Writer(self.folder(volume), self.fail_writes)

    def _held(self, op: str) -> None:
        release = self.hold.pop(op, None)
        if release is not None:
            self.reached.set()
            release.wait(60)

    def manifest(self, volume: str, paths: Sequence[str] | None = None) -> volume_manifest.Manifest:
        self._held("manifest")
        whole = volume_manifest.of_tree(self.folder(volume))
        if paths is None:
            return whole
        wanted = {posixpath.normpath("/" + p).lstrip("/") or "." for p in paths}
        return {path: entry for path, entry in whole.items() if path in wanted}

    def stats(self, volume: str) -> volume_stats.Listing | None:
        """As ``find`` and ``stat`` in a helper list it (real lstat, the machine's clock)."""
        root = self.folder(volume)
        clock = int(time.time())
        found = {".": root.lstat()}
        for top, dirs, files in os.walk(root):
            for name in dirs + files:
                full = Path(top, name)
                found[full.relative_to(root).as_posix()] = full.lstat()
        paths = {
            path: volume_stats.PathStat(s.st_ino, s.st_size, int(s.st_mtime), int(s.st_ctime), s.st_mode)
            for path, s in found.items()
        }
        return volume_stats.Listing(clock, paths)

    def usage(self, volume: str) -> dict[str, int]:
        root = self.folder(volume)
        found = [root, *root.rglob("*")]
        total = sum(p.stat().st_size for p in found if p.is_file() and not p.is_symlink())
        return {"bytes": total, "files": len(found)}

    def remove_paths(self, volume: str, paths: Sequence[str]) -> None:
        root = self.folder(volume)
        for path in paths:
            target = root / path
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)

    def ensure_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None:
        if self.exists(name):
            found = self.labels.get(name, {})
            if any(found.get(k) != v for k, v in labels.items()):
                raise ValueError(
                    f"this node already has a Docker volume {name} that this move did not make; "
                    "it is left alone (remove or rename it, or move to another node)"
                )
            return
        self.folder(name)
        self.labels[name] = dict(labels)
        self.made.append(name)

    def drop_volume(self, name: str, labels: dict[str, str]) -> bool:
        if not self.exists(name):
            return True
        found = self.labels.get(name, {})
        if any(found.get(k) != v for k, v in labels.items()):
            return False  # not made by this operation: left alone
        shutil.rmtree(self.root / name)
        self.labels.pop(name, None)
        self.dropped.append(name)
        return True

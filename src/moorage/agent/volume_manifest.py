"""The manifest of a Docker volume's data: what must be equal for two copies to be the same data.

One entry per path (relative to the volume's root, ``.`` for the root itself):

    file     size, sha256, mode, uid, gid, mtime (whole seconds), hardlink group
    dir      mode, uid, gid            (no mtime: extracting into a directory changes it)
    symlink  target                    (no mode: Linux has none; no owner or mtime: tar x does
                                        not restore them, and Linux checks neither for access)
    fifo | char | block   mode, uid, gid (and the device numbers)

A hardlink group is named by the smallest of its paths; each member of a group of two or more
carries that name (``link``), so equal manifests mean the same paths share data the same way.

Pure functions over a tar stream (``of_tar``: what ``tar c`` in a helper container gives, read
by the agent; see ``volume_data.py``) or a file tree (``of_tree``: tests, and a tree restored
on the agent's own disk). Both give equal manifests for the same data. ``first_difference``
says where two manifests part, ``changes`` what to delete and send to make a copy equal to a
source, and ``to_json``/``from_json`` carry one over the agent's connection.

Used by volume moves (source and target must be equal before anything switches) and by backup
verification.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import stat
import tarfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import IO, Any, Literal

__all__ = [
    "Changes",
    "Entry",
    "Kind",
    "Manifest",
    "after_changes",
    "changes",
    "first_difference",
    "from_json",
    "of_tar",
    "of_tree",
    "summary",
    "to_json",
]

Kind = Literal["file", "dir", "symlink", "fifo", "char", "block"]
_READ = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Entry:
    kind: Kind
    uid: int  # 0 for symlinks (see the module)
    gid: int
    mode: int | None = None  # permission bits (07777); None for symlinks
    size: int = 0  # files
    sha256: str | None = None  # files
    mtime: int | None = None  # files, whole seconds
    target: str | None = None  # symlinks
    link: str | None = None  # files in a hardlink group of two or more: the group's smallest path
    device: tuple[int, int] | None = None  # char and block devices

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if v is not None)


Manifest = dict[str, Entry]


def _path(name: str, root: str | None = None) -> str:
    """A member's path as a manifest names it: relative (to ``root``, if the archive has one),
    normalized, ``.`` for the root."""
    normal = posixpath.normpath("/" + name).lstrip("/")
    if root is not None:
        if normal == root:
            return "."
        if not normal.startswith(root + "/"):
            raise ValueError(f"member {name} is not under {root}")
        normal = normal[len(root) + 1 :]
    return normal or "."


def _with_groups(entries: Manifest, groups: Iterable[Iterable[str]]) -> Manifest:
    for members in groups:
        paths = sorted(members)
        if len(paths) < 2:
            continue
        for path in paths:
            entries[path] = replace(entries[path], link=paths[0])
    return entries


# -- from a tar stream ---------------------------------------------------------------------------


def _digest(source: IO[bytes] | None) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    if source is not None:
        while chunk := source.read(_READ):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _tar_entry(member: tarfile.TarInfo, tar: tarfile.TarFile) -> Entry | None:
    perm = member.mode & 0o7777
    if member.isreg():
        size, sha = _digest(tar.extractfile(member))
        return Entry("file", member.uid, member.gid, perm, size, sha, int(member.mtime))
    if member.isdir():
        return Entry("dir", member.uid, member.gid, perm)
    if member.issym():
        return Entry("symlink", 0, 0, target=member.linkname)
    if member.isfifo():
        return Entry("fifo", member.uid, member.gid, perm)
    if member.ischr() or member.isblk():
        kind: Kind = "char" if member.ischr() else "block"
        return Entry(kind, member.uid, member.gid, perm, device=(member.devmajor, member.devminor))
    return None


def of_tar(stream: IO[bytes], root: str | None = None) -> Manifest:
    """The manifest of a tar archive read once, front to back: ``tar c -C ROOT .``, or with
    ``root`` one whose members are all under that name (the engine's archive of a folder)."""
    entries: Manifest = {}
    links: dict[str, set[str]] = {}  # first path of a group -> its members
    group_of: dict[str, str] = {}
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            path = _path(member.name, root)
            if member.islnk():
                first = _path(member.linkname, root)
                head = group_of.get(first, first)
                found = entries.get(head)
                if found is None or found.kind != "file":
                    raise ValueError(f"hard link {path} points at {first}, which is not a file before it")
                entries[path] = replace(
                    found, uid=member.uid, gid=member.gid, mode=member.mode & 0o7777, mtime=int(member.mtime)
                )
                links.setdefault(head, {head}).add(path)
                group_of[path] = head
                continue
            entry = _tar_entry(member, tar)
            if entry is not None:
                entries[path] = entry
    return _with_groups(entries, links.values())


# -- from a file tree ----------------------------------------------------------------------------


def _tree_entry(full: Path, info: os.stat_result) -> Entry | None:
    perm = stat.S_IMODE(info.st_mode)
    if stat.S_ISREG(info.st_mode):
        with full.open("rb") as source:
            size, sha = _digest(source)
        return Entry("file", info.st_uid, info.st_gid, perm, size, sha, int(info.st_mtime))
    if stat.S_ISDIR(info.st_mode):
        return Entry("dir", info.st_uid, info.st_gid, perm)
    if stat.S_ISLNK(info.st_mode):
        return Entry("symlink", 0, 0, target=os.readlink(full))
    if stat.S_ISFIFO(info.st_mode):
        return Entry("fifo", info.st_uid, info.st_gid, perm)
    if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
        kind: Kind = "char" if stat.S_ISCHR(info.st_mode) else "block"
        device = (os.major(info.st_rdev), os.minor(info.st_rdev))
        return Entry(kind, info.st_uid, info.st_gid, perm, device=device)
    return None  # sockets: tar skips them too


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    yield ".", root
    for top, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            full = Path(top, name)
            yield full.relative_to(root).as_posix(), full


def of_tree(root: Path) -> Manifest:
    """The manifest of the tree under ``root`` (not following symlinks)."""
    entries: Manifest = {}
    inodes: dict[tuple[int, int], set[str]] = defaultdict(set)
    for path, full in _walk(root):
        info = full.lstat()
        entry = _tree_entry(full, info)
        if entry is None:
            continue
        entries[path] = entry
        if entry.kind == "file" and info.st_nlink > 1:
            inodes[(info.st_dev, info.st_ino)].add(path)
    return _with_groups(entries, inodes.values())


# -- comparing -----------------------------------------------------------------------------------


def first_difference(source: Mapping[str, Entry], target: Mapping[str, Entry]) -> str | None:
    """The first path (in sorted order) that one lacks or that differs in anything; None if equal."""
    for path in sorted(set(source) | set(target)):
        if source.get(path) != target.get(path):
            return path
    return None


@dataclass(frozen=True, slots=True)
class Changes:
    """What makes a copy equal to its source: delete ``remove`` (whole subtrees) from the copy,
    then send ``send`` from the source (each path alone, parents before children)."""

    remove: list[str]
    send: list[str]

    @property
    def empty(self) -> bool:
        return not self.remove and not self.send


def _inside(path: str, roots: set[str]) -> bool:
    parent = posixpath.dirname(path)
    while parent:
        if parent in roots:
            return True
        parent = posixpath.dirname(parent)
    return False


def changes(source: Mapping[str, Entry], copy: Mapping[str, Entry]) -> Changes:
    """The paths to delete from ``copy`` and to send again from ``source`` (see ``Changes``).

    A path the source lacks, or whose kind changed, or a file whose content or hardlink group
    changed, is deleted first (a directory with what is under it); a directory whose mode or
    owner changed is sent again without being deleted. Members of a changed hardlink group are
    sent together so the copy links them again."""
    remove: set[str] = set()
    send: set[str] = set()
    for path in sorted(set(source) | set(copy)):
        was, now = copy.get(path), source.get(path)
        if was == now:
            continue
        if was is not None and path != "." and (now is None or was.kind != now.kind or was.kind != "dir"):
            remove.add(path)
        if now is not None:
            send.add(path)
    groups: dict[str, set[str]] = defaultdict(set)
    for path, entry in source.items():
        if entry.link is not None:
            groups[entry.link].add(path)
    for path in list(send):
        link = source[path].link
        if link is not None:
            for member in groups[link]:
                send.add(member)
                if member in copy and member != ".":
                    remove.add(member)
    # A removed directory takes what is under it: those of its paths the source has go again.
    send.update(path for path in source if _inside(path, remove))
    kept_remove = sorted(p for p in remove if not _inside(p, remove))
    return Changes(kept_remove, sorted(send, key=lambda p: (p.count("/"), p) if p != "." else (-1, p)))


def after_changes(copy: Mapping[str, Entry], todo: Changes, sent: Mapping[str, Entry]) -> Manifest:
    """The copy's manifest once ``todo`` was applied to it: ``copy`` without what was removed (and
    what was under it), with ``sent`` (the manifest read back of the paths sent) on top. Holds when
    nothing else writes the copy (a move's target: no instance mounts it while it is copied)."""
    removed = set(todo.remove)
    out = {p: e for p, e in copy.items() if p not in removed and not _inside(p, removed)}
    out.update(sent)
    return out


def summary(manifest: Mapping[str, Entry]) -> tuple[int, int]:
    """(bytes of regular file data, counting each hardlink group once; paths)."""
    seen: set[str] = set()
    total = 0
    for path, entry in manifest.items():
        if entry.kind != "file":
            continue
        key = entry.link or path
        if key not in seen:
            seen.add(key)
            total += entry.size
    return total, len(manifest)


# -- on the wire ---------------------------------------------------------------------------------


def to_json(manifest: Mapping[str, Entry]) -> bytes:
    rows = [[path, *_row(entry)] for path, entry in sorted(manifest.items())]
    return json.dumps(rows, separators=(",", ":")).encode()


def _row(entry: Entry) -> list[Any]:
    return [
        entry.kind,
        entry.uid,
        entry.gid,
        entry.mode,
        entry.size,
        entry.sha256,
        entry.mtime,
        entry.target,
        entry.link,
        list(entry.device) if entry.device is not None else None,
    ]


def from_json(data: bytes) -> Manifest:
    """Inverse of ``to_json``; a ``ValueError`` for anything else."""
    try:
        rows = json.loads(data)
        out: Manifest = {}
        for path, kind, uid, gid, mode, size, sha, mtime, target, link, device in rows:
            if kind not in ("file", "dir", "symlink", "fifo", "char", "block") or not isinstance(path, str):
                raise ValueError(f"bad manifest row for {path!r}")
            out[path] = Entry(
                kind,
                int(uid),
                int(gid),
                None if mode is None else int(mode),
                int(size),
                sha,
                None if mtime is None else int(mtime),
                target,
                link,
                (int(device[0]), int(device[1])) if device is not None else None,
            )
    except (TypeError, ValueError, json.JSONDecodeError) as err:
        raise ValueError(f"not a manifest: {err}") from err
    return out

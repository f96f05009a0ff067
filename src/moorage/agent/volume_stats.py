"""What stat(2) says of every path of a volume, and which entries of an earlier manifest it shows
unchanged: the quick check that lets a move's second pass re-read only what changed.

A ``Listing`` is taken by ``find`` and ``stat`` in a helper container (``VolumeData.stats``): per
path the inode, size, mtime, ctime (whole seconds) and raw mode, and ``clock``, the node's time
(whole seconds) just before the walk began. No file data is read, so it costs a walk of the tree.

``unchanged(before, manifest, now)``: the paths whose entry in ``manifest`` still describes the
data. ``before`` is a listing taken just before ``manifest`` was read (the instance still
running); ``now`` one taken once nothing writes the volume (the instance stopped). A path counts
only if all of this holds:

- its stat in ``now`` equals the one in ``before`` (same inode, size, mtime, ctime, mode), and
  ``manifest`` has it with the same kind (and, for a file, the same size and mtime);
- its ctime is at least two seconds before ``before.clock``. The kernel sets ctime on every
  change of a file's data or metadata (write, truncate, chmod, chown, link, unlink, rename) and no
  call lets a program set it. So a path last changed before the walk began was not changed while
  ``manifest`` read it, nor since: what ``manifest`` read is what is there now. The two seconds
  cover whole-second rounding and the coarse clock the kernel stamps ctime with (a tick behind).

Everything else (changed, new, unreadable by these rules) is read again. A listing that cannot be
read exactly (a file name with a newline in it, a line out of shape) is ``None``: the caller
reads the whole volume again, as it would with no listing at all. Trusted only for Docker's
``local`` driver (see ``QUICK_CHECK_DRIVERS``), whose data is a filesystem of the node's kernel;
a plugin's filesystem might not keep ctime so.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from moorage.agent.volume_manifest import Entry, Manifest

__all__ = [
    "QUICK_CHECK_DRIVERS",
    "SLACK_SECONDS",
    "STAT_FORMAT",
    "Listing",
    "PathStat",
    "from_json",
    "parse",
    "to_json",
    "trusted_manifest",
    "unchanged",
]

QUICK_CHECK_DRIVERS = frozenset({"local"})
SLACK_SECONDS = 2
# find's -exec stat, one line per path: inode, size, mtime, ctime, raw mode (hex), name
STAT_FORMAT = "%i %s %Y %Z %f %n"


@dataclass(frozen=True, slots=True)
class PathStat:
    inode: int
    size: int
    mtime: int
    ctime: int
    mode: int  # st_mode: type and permission bits


@dataclass(frozen=True, slots=True)
class Listing:
    clock: int  # the node's time (whole seconds) just before the walk began
    paths: dict[str, PathStat]


def parse(clock_line: str, lines: str, mount: str) -> Listing:
    """The listing from ``date +%s`` and ``find MOUNT -exec stat -c STAT_FORMAT {} +``; a
    ``ValueError`` for anything not exactly that (a name with a newline breaks the line format).
    Paths are named as manifests name them (``.`` for the root); sockets are left out, as tar
    leaves them out."""
    try:
        clock = int(clock_line.strip())
    except ValueError as err:
        raise ValueError(f"not a clock: {clock_line.strip()[:40]!r}") from err
    paths: dict[str, PathStat] = {}
    for line in lines.split("\n"):
        if not line:
            continue
        fields = line.split(" ", 5)
        if len(fields) != 6:
            raise ValueError(f"not a stat line: {line[:80]!r}")
        inode, size, mtime, ctime, mode_hex, name = fields
        try:
            entry = PathStat(int(inode), int(size), int(mtime), int(ctime), int(mode_hex, 16))
        except ValueError as err:
            raise ValueError(f"not a stat line: {line[:80]!r}") from err
        path = _relative(name, mount)
        if path in paths:
            raise ValueError(f"{path} is listed twice")
        if not stat.S_ISSOCK(entry.mode):
            paths[path] = entry
    if "." not in paths:
        raise ValueError(f"the listing has no {mount}")
    return Listing(clock, paths)


def _relative(name: str, mount: str) -> str:
    if name == mount:
        return "."
    if not name.startswith(mount + "/") or name.endswith("/") or "//" in name:
        raise ValueError(f"{name[:80]!r} is not a path under {mount}")
    return name[len(mount) + 1 :]


def _same_kind(entry: Entry, found: PathStat) -> bool:
    mode = found.mode
    if entry.kind == "file":
        return stat.S_ISREG(mode) and entry.size == found.size and entry.mtime == found.mtime
    return {
        "dir": stat.S_ISDIR,
        "symlink": stat.S_ISLNK,
        "fifo": stat.S_ISFIFO,
        "char": stat.S_ISCHR,
        "block": stat.S_ISBLK,
    }[entry.kind](mode)


def unchanged(before: Listing, manifest: Mapping[str, Entry], now: Listing) -> set[str]:
    """The paths of ``now`` whose entry in ``manifest`` still holds (see the module)."""
    settled = before.clock - SLACK_SECONDS
    out: set[str] = set()
    for path, found in now.paths.items():
        entry = manifest.get(path)
        if (
            entry is not None
            and before.paths.get(path) == found
            and found.ctime <= settled
            and _same_kind(entry, found)
        ):
            out.add(path)
    return out


def trusted_manifest(before: Listing, manifest: Manifest, now: Listing) -> tuple[Manifest, list[str]]:
    """What of ``manifest`` still holds, and the paths of ``now`` to read again (sorted)."""
    kept = unchanged(before, manifest, now)
    return {p: manifest[p] for p in kept}, sorted(set(now.paths) - kept)


# -- on the wire ---------------------------------------------------------------------------------


def to_json(listing: Listing | None, why: str | None = None) -> bytes:
    """A listing for the agent's connection; ``None`` with why it could not be taken exactly."""
    if listing is None:
        return json.dumps({"clock": None, "paths": None, "why": why}).encode()
    rows = {p: [s.inode, s.size, s.mtime, s.ctime, s.mode] for p, s in listing.paths.items()}
    return json.dumps({"clock": listing.clock, "paths": rows}, separators=(",", ":")).encode()


def from_json(data: bytes) -> tuple[Listing | None, str | None]:
    """Inverse of ``to_json``: the listing, or None and why; a ``ValueError`` for anything else."""
    try:
        raw = json.loads(data)
        if raw["paths"] is None:
            return None, str(raw.get("why") or "no listing")
        paths = {
            str(p): PathStat(int(i), int(s), int(m), int(c), int(mode))
            for p, (i, s, m, c, mode) in raw["paths"].items()
        }
        return Listing(int(raw["clock"]), paths), None
    except (TypeError, ValueError, KeyError, AttributeError, json.JSONDecodeError) as err:
        raise ValueError(f"not a listing: {err}") from err

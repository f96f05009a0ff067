"""Mount specs: the strings of a stack file's ``volumes:`` list and of ``moorage service create -v``.

Kontena's three forms, and nothing else::

    name:/path[:flags]     named volume: a moorage volume, through the stack's top-level volumes:
    /host:/path[:flags]    bind mount of a host path
    /path                  anonymous volume (no flags)

The rules, pinned:

- ``name`` is a volume name (``VOLUME_NAME_RE``: two or more letters, digits, ``_`` or ``-``,
  starting with a letter or digit), so ``./data:/data`` or ``a.b:/data`` are not named volumes.
- Both paths are absolute: they start with ``/`` and hold no ``:`` and no control characters.
  A container path may not be ``/`` itself (Docker refuses to mount over the root).
- ``flags`` is a comma-separated list of ``ro``, ``rw``, ``z``, ``Z`` and ``nocopy``, each at most
  once, never both ``ro`` and ``rw``, never both ``z`` and ``Z``; ``nocopy`` only on a named volume
  (Docker refuses it on a bind mount). Flags are kept as written.

Any other text raises ``MountSpecError`` whose message is exactly
``volume definition not in right format: <spec>`` (Kontena's wording, which users know).
"""

from __future__ import annotations

import posixpath
import re

from moorage.model.quoting import shown
from moorage.model.stack import Mount, MountKind
from moorage.model.volume import VOLUME_NAME_RE

__all__ = ["MOUNT_FLAGS", "MountSpecError", "clean_path", "parse_mount"]

MOUNT_FLAGS = ("ro", "rw", "z", "Z", "nocopy")
"""The flags a mount spec may carry, comma-separated."""

_ABSOLUTE_PATH_RE = re.compile(r"/[^:\x00-\x1f\x7f]*")
_EXCLUSIVE_FLAGS = ({"ro", "rw"}, {"z", "Z"})


class MountSpecError(ValueError):
    """A mount spec that is none of ``name:/path[:flags]``, ``/host:/path[:flags]``, ``/path``."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.message = f"volume definition not in right format: {shown(spec)}"
        super().__init__(self.message)


def parse_mount(spec: str) -> Mount:
    """The mount ``spec`` describes; raises ``MountSpecError`` for anything else."""
    parts = spec.split(":")
    if len(parts) == 1 and _is_container_path(parts[0]):
        return Mount(MountKind.ANONYMOUS, target=parts[0])
    if len(parts) not in (2, 3) or not _is_container_path(parts[1]):
        raise MountSpecError(spec)
    source, target = parts[0], parts[1]
    if _is_absolute_path(source):
        kind = MountKind.BIND
    elif VOLUME_NAME_RE.fullmatch(source):
        kind = MountKind.NAMED
    else:
        raise MountSpecError(spec)
    flags = parts[2] if len(parts) == 3 else None
    if flags is not None and not _flags_allowed(flags, kind):
        raise MountSpecError(spec)
    return Mount(kind, target=target, source=source, flags=flags)


def clean_path(path: str) -> str:
    """``path`` as Docker will see it: ``/data/``, ``//data`` and ``/x/../data`` are all ``/data``."""
    return posixpath.normpath("/" + path.lstrip("/"))


def _is_absolute_path(path: str) -> bool:
    return _ABSOLUTE_PATH_RE.fullmatch(path) is not None


def _is_container_path(path: str) -> bool:
    return _is_absolute_path(path) and clean_path(path) != "/"


def _flags_allowed(flags: str, kind: MountKind) -> bool:
    given = flags.split(",")
    chosen = set(given)
    if len(chosen) != len(given) or not chosen <= set(MOUNT_FLAGS):
        return False
    if any(len(chosen & pair) > 1 for pair in _EXCLUSIVE_FLAGS):
        return False
    return "nocopy" not in chosen or kind is MountKind.NAMED

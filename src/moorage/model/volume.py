"""Volumes, their scopes, and the Docker volume names the scopes produce (Kontena's rules).

| scope    | Docker volumes made                 | Docker volume name                                |
|----------|-------------------------------------|---------------------------------------------------|
| instance | one per service instance            | <stack>.<service>.<volume>-<n>; null stack:        |
|          |                                     | <service>.<volume>-<n>                             |
| stack    | one per stack per node              | <stack>.<volume>; null stack: null.<volume>        |
| grid     | one per node                        | <volume>                                          |
"""

from __future__ import annotations

import re
from enum import StrEnum

from moorage.model.stack import NULL_STACK

__all__ = ["VOLUME_NAME_RE", "VolumeScope", "docker_volume_name", "volume_name_error"]

VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]+$")


class VolumeScope(StrEnum):
    GRID = "grid"
    STACK = "stack"
    INSTANCE = "instance"


def volume_name_error(name: str) -> str | None:
    """None when ``name`` is a valid volume name, else a sentence saying what is wrong."""
    if VOLUME_NAME_RE.fullmatch(name):
        return None
    return (
        f"Volume name '{name}' is not valid: use at least two characters, letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


def docker_volume_name(scope: VolumeScope, volume: str, stack: str, service: str, instance: int) -> str:
    """The Docker volume name for one use of ``volume`` by instance ``instance`` of ``stack/service``."""
    if scope is VolumeScope.GRID:
        return volume
    if scope is VolumeScope.STACK:
        return f"{stack}.{volume}"
    if stack == NULL_STACK:
        return f"{service}.{volume}-{instance}"
    return f"{stack}.{service}.{volume}-{instance}"

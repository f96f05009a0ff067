"""Grids: isolated clusters inside one master."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from moorage.model.quoting import shown

__all__ = ["GRID_NAME_RE", "Grid", "grid_name_error"]

GRID_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def grid_name_error(name: str) -> str | None:
    if GRID_NAME_RE.fullmatch(name):
        return None
    return (
        f"Grid name '{shown(name)}' is not valid: use 1 to 63 lowercase letters, digits or '-', "
        "starting with a letter or digit"
    )


@dataclass(frozen=True, slots=True)
class Grid:
    id: int
    name: str
    created_at: datetime
    node_count: int = 0
    backup_repo: str | None = None  # where the grid's backups go (its password is never shown)

"""Which node holds which data: every volume instance of a grid, by node, retired ones included.

``moorage.store.volumes`` lists volumes with their live instances; a volume instance whose volume
was removed (``removing``, ``volume_id`` cleared) is no longer any volume's, but its Docker volume
is still on its node until the agent deletes it, so a map of the grid's data shows it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.store.tables import GridRow, NodeRow, VolumeInstanceRow, VolumeRow

__all__ = ["HeldVolume", "held_volumes"]


@dataclass(frozen=True, slots=True)
class HeldVolume:
    """One Docker volume Moorage made on one node."""

    node: str
    name: str  # the Docker volume's name
    volume: str | None  # the grid volume it was made from; None once that volume was removed
    scope: str | None
    driver: str
    zone: str | None
    state: str
    error: str | None
    updated_at: datetime


def held_volumes(session: Session, grid_row: GridRow) -> list[HeldVolume]:
    """The grid's volume instances by node name, then Docker volume name (one query)."""
    query = (
        select(
            NodeRow.name,
            VolumeInstanceRow.name,
            VolumeRow.name,
            VolumeRow.scope,
            VolumeInstanceRow.driver,
            VolumeInstanceRow.zone,
            VolumeInstanceRow.state,
            VolumeInstanceRow.error,
            VolumeInstanceRow.updated_at,
        )
        .select_from(VolumeInstanceRow)
        .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
        .outerjoin(VolumeRow, VolumeRow.id == VolumeInstanceRow.volume_id)
        .where(VolumeInstanceRow.grid_id == grid_row.id)
        .order_by(NodeRow.name, VolumeInstanceRow.name)
    )
    return [HeldVolume(*row) for row in session.execute(query).tuples()]

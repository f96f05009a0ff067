"""Volumes as the store shows them, and volume instances recorded by hand: for store and rendering tests."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.store.grids import get_grid_row
from moorage.store.tables import VolumeInstanceRow, VolumeRow
from moorage.store.volumes import VolumeInstanceView, VolumeView


def sample_volume_view(
    when: datetime, driver_opts: dict[str, str], labels: dict[str, str], error: str
) -> VolumeView:
    """``data`` in grid ``g``: instance i1 present on n1 (zone a, region eu), i2 in error
    (``error``) on n2."""
    return VolumeView(
        grid="g",
        name="data",
        scope="instance",
        driver="local",
        driver_opts=driver_opts,
        labels=labels,
        created_at=when,
        updated_at=when,
        instances=(
            VolumeInstanceView(
                id="i1", name="s.web.data-1", node="n1", zone="a", region="eu", state="present", error=None
            ),
            VolumeInstanceView(
                id="i2", name="s.web.data-2", node="n2", zone=None, region=None, state="error", error=error
            ),
        ),
        services=("g/s/web", "g/null/db"),
        topology="node",
    )


def add_volume_instance(
    session: Session, grid: str, volume: str, node_id: str, name: str, state: str, error: str | None = None
) -> str:
    """Record a volume instance of ``volume`` on a node, as a deployment and its agent would; its id."""
    grid_row = get_grid_row(session, grid)
    volume_id = session.scalar(
        select(VolumeRow.id).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == volume)
    )
    now = datetime.now(UTC)
    row_id = f"vi-{node_id}-{name}"[:32]
    session.add(
        VolumeInstanceRow(
            id=row_id,
            grid_id=grid_row.id,
            volume_id=volume_id,
            node_id=node_id,
            name=name,
            driver="local",
            driver_opts={},
            zone="a",
            state=state,
            error=error,
            created_at=now,
            updated_at=now,
        )
    )
    return row_id

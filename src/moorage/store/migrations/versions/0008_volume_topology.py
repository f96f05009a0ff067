"""Volume topology: where a volume's data can be used from (``volumes.topology``), and the region
of the node that made each volume instance (``volume_instances.region``, beside its ``zone``).

Existing volumes keep the behaviour they had: before 0008 an instance-scope volume instance
followed its instance to any node where the volume's driver was global, and stayed on its node
otherwise. That is topology ``grid`` (which re-attaches only where the driver is global) for a
volume whose driver some node of its grid reports global, and ``node`` for the others (also when
no node has the driver yet: nothing said its storage was shared). Every volume has its topology
stored: ``node`` as the column is added, then ``grid`` where that was its behaviour.

A volume instance's region is taken from its node's ``region=`` label as it is now (the zone was
already recorded when it was made).

Columns are added in place: ``volumes`` is referenced by ``volume_instances``, and on SQLite a
rebuild would drop it and let the foreign key clear every volume instance's volume.

Revision ID: 0008
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

_nodes = sa.table(
    "nodes",
    sa.column("id", sa.String),
    sa.column("grid_id", sa.Integer),
    sa.column("labels", sa.JSON),
    sa.column("info", sa.JSON),
)
_volumes = sa.table(
    "volumes",
    sa.column("id", sa.Integer),
    sa.column("grid_id", sa.Integer),
    sa.column("driver", sa.String),
    sa.column("topology", sa.String),
)
_volume_instances = sa.table(
    "volume_instances",
    sa.column("id", sa.String),
    sa.column("node_id", sa.String),
    sa.column("region", sa.String),
)


def upgrade() -> None:
    op.add_column("volumes", sa.Column("topology", sa.String(16), nullable=False, server_default="node"))
    op.add_column("volume_instances", sa.Column("region", sa.String(128), nullable=True))
    bind = op.get_bind()

    shared: set[tuple[int, str]] = set()  # (grid id, driver) some node of the grid has global
    regions: dict[str, str] = {}  # node id -> its region label
    for node_id, grid_id, labels, info in bind.execute(
        sa.select(_nodes.c.id, _nodes.c.grid_id, _nodes.c.labels, _nodes.c.info)
    ):
        for driver in (info or {}).get("drivers") or []:
            if isinstance(driver, dict) and driver.get("scope") == "global":
                shared.add((grid_id, str(driver.get("name"))))
        region = (labels or {}).get("region")
        if isinstance(region, str):
            regions[node_id] = region

    grid_ids = [
        volume_id
        for volume_id, grid_id, driver in bind.execute(
            sa.select(_volumes.c.id, _volumes.c.grid_id, _volumes.c.driver)
        )
        if (grid_id, driver) in shared
    ]
    if grid_ids:
        bind.execute(sa.update(_volumes).where(_volumes.c.id.in_(grid_ids)).values(topology="grid"))
    for node_id, region in regions.items():
        bind.execute(
            sa.update(_volume_instances).where(_volume_instances.c.node_id == node_id).values(region=region)
        )


def downgrade() -> None:
    # No rebuild (see above): dropped in place (SQLite 3.35+ and PostgreSQL).
    op.execute("ALTER TABLE volume_instances DROP COLUMN region")
    op.execute("ALTER TABLE volumes DROP COLUMN topology")

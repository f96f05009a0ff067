"""Volumes and volume instances.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "volumes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("driver", sa.String(255), nullable=False),
        sa.Column("driver_opts", sa.JSON, nullable=False),
        sa.Column("labels", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("grid_id", "name", name="uq_volumes_grid_name"),
    )
    op.create_table(
        "volume_instances",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column(
            "volume_id",
            sa.Integer,
            sa.ForeignKey("volumes.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column(
            "node_id",
            sa.String(64),
            sa.ForeignKey("nodes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("driver", sa.String(255), nullable=False),
        sa.Column("driver_opts", sa.JSON, nullable=False),
        sa.Column("zone", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("node_id", "name", name="uq_volume_instances_node_name"),
    )


def downgrade() -> None:
    op.drop_table("volume_instances")
    op.drop_table("volumes")

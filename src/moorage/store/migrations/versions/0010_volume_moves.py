"""Volume moves: the move jobs (``volume_moves``), the source copies they retire
(``retired_volumes``), and which move holds a volume instance (``volume_instances.move_id``).

New tables and one nullable column added in place: nothing existing changes meaning.

Revision ID: 0010
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0013"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("volume_instances", sa.Column("move_id", sa.String(32), nullable=True))
    op.create_table(
        "volume_moves",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False),
        sa.Column("volume", sa.String(128), nullable=False),
        sa.Column("volume_instance_id", sa.String(32), nullable=False),
        sa.Column("docker_name", sa.String(255), nullable=False),
        sa.Column("source_node_id", sa.String(64), nullable=False),
        sa.Column("target_node_id", sa.String(64), nullable=False),
        sa.Column("source_node", sa.String(128), nullable=False),
        sa.Column("target_node", sa.String(128), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("phase", sa.String(16), nullable=False),
        sa.Column("bytes_total", sa.BigInteger, nullable=False),
        sa.Column("bytes_done", sa.BigInteger, nullable=False),
        sa.Column("files", sa.BigInteger, nullable=False),
        sa.Column("instances", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("cleanup", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("stopped_at", TS, nullable=True),
        sa.Column("switched_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_volume_moves_grid_id", "volume_moves", ["grid_id"])
    op.create_index("ix_volume_moves_state", "volume_moves", ["state"])
    op.create_index("ix_volume_moves_volume_instance_id", "volume_moves", ["volume_instance_id"])
    op.create_table(
        "retired_volumes",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False),
        sa.Column("volume_id", sa.Integer, sa.ForeignKey("volumes.id", ondelete="SET NULL"), nullable=True),
        sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("volume_instance_id", sa.String(32), nullable=False),
        sa.Column("driver", sa.String(255), nullable=False),
        sa.Column("move_id", sa.String(32), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("since", TS, nullable=False),
        sa.UniqueConstraint("node_id", "name", name="uq_retired_volumes_node_name"),
    )
    op.create_index("ix_retired_volumes_grid_id", "retired_volumes", ["grid_id"])
    op.create_index("ix_retired_volumes_volume_id", "retired_volumes", ["volume_id"])


def downgrade() -> None:
    op.drop_table("retired_volumes")
    op.drop_table("volume_moves")
    op.drop_column("volume_instances", "move_id")

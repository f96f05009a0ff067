"""Events: what happened in each grid (``moorage events``, ``GET /v1/grids/{grid}/events``).

A new table only; nothing existing changes. Its ids are never reused (AUTOINCREMENT on SQLite,
an identity on PostgreSQL), so a follower's cursor stays behind every new event.

Revision ID: 0007
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=True),
        sa.Column("stack", sa.String(64), nullable=True),
        sa.Column("service", sa.String(64), nullable=True),
        sa.Column("instance", sa.Integer, nullable=True),
        sa.Column("volume", sa.String(128), nullable=True),
        sa.Column("volume_instance", sa.String(32), nullable=True),
        sa.Column("node_id", sa.String(64), nullable=True),
        sa.Column("node", sa.String(128), nullable=True),
        sa.Column("deployment", sa.String(32), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_grid_id", "events", ["grid_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_grid_id", table_name="events")
    op.drop_table("events")

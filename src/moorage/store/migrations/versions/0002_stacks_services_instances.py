"""Stacks (with revisions), services, instances, deployments.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "stacks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("grid_id", "name", name="uq_stacks_grid_name"),
    )
    op.create_table(
        "stack_revisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "stack_id", sa.Integer, sa.ForeignKey("stacks.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("stack_id", "revision", name="uq_stack_revisions"),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("stack", sa.String(64), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("grid_id", "stack", "name", name="uq_services_grid_stack_name"),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "service_id",
            sa.Integer,
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column(
            "node_id",
            sa.String(64),
            sa.ForeignKey("nodes.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("container", sa.JSON, nullable=True),
        sa.Column("desired_hash", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("observed_hash", sa.String(64), nullable=True),
        sa.Column("exit_code", sa.Integer, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.UniqueConstraint("service_id", "number", name="uq_instances_service_number"),
    )
    op.create_table(
        "deployments",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column(
            "grid_id", sa.Integer, sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("service_ids", sa.JSON, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )


def downgrade() -> None:
    for table in ("deployments", "instances", "services", "stack_revisions", "stacks"):
        op.drop_table(table)

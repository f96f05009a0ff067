"""Backups of volume data: a grid's restic repository (``grids.backup_repo`` and its password),
volumes' backup schedules, the jobs agents run (``backup_jobs``) and the snapshots they took
(``backups``).

Columns are added in place (``grids`` and ``volumes`` are referenced by other tables; on SQLite a
rebuild would cascade).

Revision ID: 0012
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0007"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("grids", sa.Column("backup_repo", sa.Text(), nullable=True))
    op.add_column("grids", sa.Column("backup_password", sa.Text(), nullable=True))
    op.add_column("volumes", sa.Column("backup_schedule", sa.String(100), nullable=True))
    op.add_column("volumes", sa.Column("backup_keep", sa.JSON(), nullable=True))
    op.add_column("volumes", sa.Column("backup_last_slot", TS, nullable=True))
    op.create_table(
        "backup_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("volume", sa.String(128), nullable=False),
        sa.Column("node_id", sa.String(64), sa.ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("docker_volumes", sa.JSON(), nullable=False),
        sa.Column("backup_id", sa.String(64), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
    )
    op.create_index("ix_backup_jobs_grid_created", "backup_jobs", ["grid_id", "created_at"])
    op.create_index("ix_backup_jobs_node_id", "backup_jobs", ["node_id"])
    op.create_table(
        "backups",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("grid_id", sa.Integer(), sa.ForeignKey("grids.id", ondelete="CASCADE"), nullable=False),
        sa.Column("volume", sa.String(128), nullable=False),
        sa.Column("docker_volume", sa.String(255), nullable=False),
        sa.Column("volume_instance_id", sa.String(32), nullable=True),
        sa.Column("node", sa.String(128), nullable=False),
        sa.Column("group_id", sa.String(32), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("files", sa.BigInteger(), nullable=False),
        sa.Column("added", sa.BigInteger(), nullable=False),
        sa.Column("duration", sa.Float(), nullable=False),
        sa.Column("quiesce", sa.String(16), nullable=False),
        sa.Column("manifest", sa.JSON(), nullable=True),
        sa.Column("verified_at", TS, nullable=True),
        sa.Column("verify_error", sa.Text(), nullable=True),
    )
    op.create_index("ix_backups_grid_volume", "backups", ["grid_id", "volume", "time"])


def downgrade() -> None:
    op.drop_table("backups")
    op.drop_table("backup_jobs")
    for table, column in (
        ("volumes", "backup_last_slot"),
        ("volumes", "backup_keep"),
        ("volumes", "backup_schedule"),
        ("grids", "backup_password"),
        ("grids", "backup_repo"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")

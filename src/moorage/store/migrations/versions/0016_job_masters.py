"""Which master runs a job: ``volume_moves.master_id`` and ``backup_jobs.master_id`` (the id of
the master process that started it; null for the jobs of a store made before).

With several masters on one PostgreSQL, a job's data flows over the connection of the master that
started it; when that master is gone its jobs are over, and the leader fails them (a restarting
master no longer fails the jobs other masters are running). Added in place.

Revision ID: 0016
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volume_moves", sa.Column("master_id", sa.String(32), nullable=True))
    op.add_column("backup_jobs", sa.Column("master_id", sa.String(32), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE backup_jobs DROP COLUMN master_id")
    op.execute("ALTER TABLE volume_moves DROP COLUMN master_id")

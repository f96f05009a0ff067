"""Lost nodes (issue 14): a volume's declared policy when its node is lost (``volumes.on_node_lost``,
``wait`` for every existing volume), when a node was declared lost (``nodes.lost_at``), why a
copy of a volume instance is kept (``retired_volumes.why``: ``moved`` by a volume move, every
existing row, or ``stale`` on a node declared lost), and the restore from backup that holds a
volume instance of a lost node (``volume_instances.restore_job``).

Columns are added in place (these tables are referenced by others; on SQLite a rebuild would
cascade).

Revision ID: 0015
Revises: 0016 (landed first)
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volumes", sa.Column("on_node_lost", sa.String(16), nullable=False, server_default="wait"))
    op.add_column("nodes", sa.Column("lost_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("retired_volumes", sa.Column("why", sa.String(16), nullable=False, server_default="moved"))
    op.add_column("volume_instances", sa.Column("restore_job", sa.String(32), nullable=True))


def downgrade() -> None:
    # No rebuild (see above): dropped in place (SQLite 3.35+ and PostgreSQL).
    op.execute("ALTER TABLE volume_instances DROP COLUMN restore_job")
    op.execute("ALTER TABLE retired_volumes DROP COLUMN why")
    op.execute("ALTER TABLE nodes DROP COLUMN lost_at")
    op.execute("ALTER TABLE volumes DROP COLUMN on_node_lost")

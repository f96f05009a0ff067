"""Drained nodes (``moorage node drain``): ``nodes.drained``, false for every existing node.

Added in place: ``nodes`` is referenced by instances and volume instances, and on SQLite a
rebuild would cascade to them.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nodes", sa.Column("drained", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    # No rebuild (see above): dropped in place (SQLite 3.35+ and PostgreSQL).
    op.execute("ALTER TABLE nodes DROP COLUMN drained")

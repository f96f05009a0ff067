"""Links between masters (``master/agent_links.py``): ``masters.link_key``, the SHA-256 (hex) of
the key a master process presents when it reaches an agent connected to another master. Each
process makes its key at start and keeps it in memory only; a row of a store made before has none
(that process takes no links until it restarts). Added in place.

Revision ID: 0017
Revises: 0015
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("masters", sa.Column("link_key", sa.String(64), nullable=True))


def downgrade() -> None:
    op.execute("ALTER TABLE masters DROP COLUMN link_key")

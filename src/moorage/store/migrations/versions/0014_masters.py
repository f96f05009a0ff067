"""Several masters on one PostgreSQL: the masters that run (``masters``: one row per master
process, its name and URL, when it last said it lives), the leases of once-only work
(``leases``: who holds it, the epoch that fences a holder that lost it, until when), and which
master each node's agent is connected to (``nodes.master_id``).

``nodes.master_id`` is added in place (``nodes`` is referenced by other tables; on SQLite a
rebuild would cascade to them). It names no master row by a foreign key: master rows of
processes long gone are pruned while nodes keep the id of the last one they knew.

Revision ID: 0014
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0010"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "masters",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("url", sa.String(512), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("seen_at", TS, nullable=False),
    )
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(32), nullable=True),
        sa.Column("epoch", sa.BigInteger, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.add_column("nodes", sa.Column("master_id", sa.String(32), nullable=True))
    op.create_index("ix_nodes_master_id", "nodes", ["master_id"])


def downgrade() -> None:
    op.drop_index("ix_nodes_master_id", table_name="nodes")
    op.drop_column("nodes", "master_id")
    op.drop_table("leases")
    op.drop_table("masters")

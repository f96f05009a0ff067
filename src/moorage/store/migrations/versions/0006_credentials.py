"""Principals: each node gets its own credential (hash), join tokens are kept hashed, admin tokens
are named (several, one per person or CI) with when each was last used; node names that break the
node-name rule (stored before it was applied) are renamed so they can be shown and removed.

Upgrading keeps every node: a node without a credential gets one on its next hello, admitted once
by the grid's join token (trust on first use). The join tokens in use keep working: only their
hashes are stored from now on (``grids.join_token`` becomes ``join_token_hash``), so the master
can no longer show them; ``moorage grid token --rotate`` makes a new one.

No table that others reference is rebuilt (on SQLite a rebuild would drop and re-create it, and
the nodes' foreign key would cascade): columns are added and renamed in place.

Revision ID: 0006
Revises: 0005
"""

import hashlib
import re

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
NODE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")  # as model/node.py had it at 0006


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()

    # admin tokens: a name each (the first one is "admin"), and when it was last used
    op.add_column("admin_tokens", sa.Column("name", sa.String(64), nullable=True))
    op.add_column("admin_tokens", sa.Column("last_used_at", TS, nullable=True))
    ids = [row[0] for row in bind.execute(sa.text("SELECT id FROM admin_tokens ORDER BY id"))]
    for i, token_id in enumerate(ids):
        bind.execute(
            sa.text("UPDATE admin_tokens SET name = :name WHERE id = :id"),
            {"name": "admin" if i == 0 else f"admin-{token_id}", "id": token_id},
        )
    with op.batch_alter_table("admin_tokens") as batch:  # nothing references admin_tokens
        batch.alter_column("name", existing_type=sa.String(64), nullable=False)
    op.create_index("ix_admin_tokens_name", "admin_tokens", ["name"], unique=True)

    # join tokens: only their hash
    op.execute("ALTER TABLE grids RENAME COLUMN join_token TO join_token_hash")
    grids = list(bind.execute(sa.text("SELECT id, join_token_hash FROM grids")))
    for grid_id, token in grids:
        bind.execute(
            sa.text("UPDATE grids SET join_token_hash = :hash WHERE id = :id"),
            {"hash": _sha256(token), "id": grid_id},
        )

    # nodes: a credential each (issued at the next hello), and names that can be shown and removed
    op.add_column("nodes", sa.Column("credential_hash", sa.String(64), nullable=True))
    op.create_index("ix_nodes_credential_hash", "nodes", ["credential_hash"], unique=True)
    for node_id, name in list(bind.execute(sa.text("SELECT id, name FROM nodes"))):
        if not NODE_NAME_RE.fullmatch(name):
            bind.execute(
                sa.text("UPDATE nodes SET name = :name WHERE id = :id"),
                {"name": f"node-{_sha256(node_id)[:12]}", "id": node_id},
            )


def downgrade() -> None:
    # The join tokens' hashes cannot be turned back into tokens: rotate each grid's token after.
    op.drop_index("ix_nodes_credential_hash", "nodes")
    op.execute("ALTER TABLE nodes DROP COLUMN credential_hash")  # no rebuild: nodes is referenced
    op.execute("ALTER TABLE grids RENAME COLUMN join_token_hash TO join_token")
    op.drop_index("ix_admin_tokens_name", "admin_tokens")
    with op.batch_alter_table("admin_tokens") as batch:
        batch.drop_column("last_used_at")
        batch.drop_column("name")

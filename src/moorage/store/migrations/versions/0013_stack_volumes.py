"""Stack-owned volumes, unused volume instances, and what agents report of Docker volumes.

- ``volumes.stack``: the stack that declared the volume in its stack file and owns it (its name;
  NULL for volumes made with ``moorage volume create``). It outlives the stack's row: ``stack rm``
  keeps the stack's volumes, still owned, and installing the stack again reuses them.
- ``volume_instances.unused_since``: when no instance would use the volume instance any more
  (state ``unused``), e.g. after a scale-down; ``moorage volume prune`` removes those.
- ``volume_instances.reported_driver`` and ``reported_driver_opts``: the driver and options the
  node's engine has for the Docker volume, as its agent last reported them (NULL: not reported),
  compared with the volume's definition to show drift.

Every column is added in place and nullable: existing rows stay as they were (existing volumes
belong to no stack; no volume instance is marked unused until something releases it, or
``volume prune`` looks at its volume).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("volumes", sa.Column("stack", sa.String(64), nullable=True))
    op.add_column("volume_instances", sa.Column("unused_since", sa.DateTime(timezone=True), nullable=True))
    op.add_column("volume_instances", sa.Column("reported_driver", sa.String(255), nullable=True))
    op.add_column("volume_instances", sa.Column("reported_driver_opts", sa.JSON(), nullable=True))


def downgrade() -> None:
    # No rebuild (see 0008): dropped in place (SQLite 3.35+ and PostgreSQL).
    op.execute("ALTER TABLE volume_instances DROP COLUMN reported_driver_opts")
    op.execute("ALTER TABLE volume_instances DROP COLUMN reported_driver")
    op.execute("ALTER TABLE volume_instances DROP COLUMN unused_since")
    op.execute("ALTER TABLE volumes DROP COLUMN stack")

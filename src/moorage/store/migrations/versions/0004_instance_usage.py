"""What an instance's container holds on its node (ports, memory, CPUs), for the scheduler;
an index to find volume instances by Docker volume name.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(sa.Column("host_ports", sa.JSON, nullable=True))
        batch.add_column(sa.Column("memory", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("cpus", sa.Float, nullable=True))
    op.create_index("ix_volume_instances_name", "volume_instances", ["name"])


def downgrade() -> None:
    op.drop_index("ix_volume_instances_name", "volume_instances")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("cpus")
        batch.drop_column("memory")
        batch.drop_column("host_ports")

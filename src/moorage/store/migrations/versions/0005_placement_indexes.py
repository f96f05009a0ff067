"""Indexes for placing at scale: a partial index over the instances that hold ports, memory or
CPUs on their node (a deployment reads only those, not every instance of the grid); two indexes
dropped that the unique constraints already cover by their first column (instances by service,
volume instances by node), which every bulk insert paid for; volume instances found by (grid,
Docker name) in one index: with one index per column SQLite walked the whole grid's volume
instances to find a few names; a grid's nodes by last change, for the snapshot check.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

HOLDING = "host_ports IS NOT NULL OR memory IS NOT NULL OR cpus IS NOT NULL"


def upgrade() -> None:
    op.create_index(
        "ix_instances_holding",
        "instances",
        ["node_id"],
        sqlite_where=sa.text(HOLDING),
        postgresql_where=sa.text(HOLDING),
    )
    op.drop_index("ix_instances_service_id", "instances")
    op.drop_index("ix_volume_instances_node_id", "volume_instances")
    op.drop_index("ix_volume_instances_name", "volume_instances")
    op.drop_index("ix_volume_instances_grid_id", "volume_instances")
    op.create_index("ix_volume_instances_grid_name", "volume_instances", ["grid_id", "name"])
    # count and latest change of a grid's nodes, read before every deployment, from the index alone
    op.create_index("ix_nodes_grid_updated", "nodes", ["grid_id", "updated_at"])


def downgrade() -> None:
    op.drop_index("ix_nodes_grid_updated", "nodes")
    op.drop_index("ix_volume_instances_grid_name", "volume_instances")
    op.create_index("ix_volume_instances_grid_id", "volume_instances", ["grid_id"])
    op.create_index("ix_volume_instances_name", "volume_instances", ["name"])
    op.create_index("ix_volume_instances_node_id", "volume_instances", ["node_id"])
    op.create_index("ix_instances_service_id", "instances", ["service_id"])
    op.drop_index("ix_instances_holding", "instances")

"""A volume instance's zone and region hold any label value: ``volume_instances.zone`` and
``.region`` widen from 128 to 1,024 characters (``model.names.LABEL_VALUE_MAX``), the most a node's
``zone=`` or ``region=`` label may hold. Before, on PostgreSQL, a deploy onto a node whose zone
label was longer than 128 characters failed when it recorded the volume instance.

SQLite does not hold a ``VARCHAR`` to its length, so only PostgreSQL changes (in place; the rows
stay as they are).

Revision ID: 0009
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0014"
branch_labels = None
depends_on = None

_WIDE = 1024  # model.names.LABEL_VALUE_MAX when this was written
_NARROW = 128


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for column in ("zone", "region"):
        op.alter_column("volume_instances", column, type_=sa.String(_WIDE), existing_type=sa.String(_NARROW))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for column in ("zone", "region"):
        op.alter_column("volume_instances", column, type_=sa.String(_NARROW), existing_type=sa.String(_WIDE))

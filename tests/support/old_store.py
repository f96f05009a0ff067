"""A store as an older master left it: migrated up to just before a revision, for the tests of
what today's master makes of it (``tests/api/test_upgrade_to_*.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text

from moorage.store.database import MIGRATIONS, normalize_url
from moorage.store.tokens import hash_token

__all__ = ["store_before"]


def _down_revision(config: Config, revision: str) -> str:
    found = ScriptDirectory.from_config(config).get_revision(revision)
    assert found is not None and isinstance(found.down_revision, str), f"migration {revision} has one parent"
    return found.down_revision


@contextmanager
def store_before(
    url: str, revision: str, admin_token: str, join_token: str | None = None
) -> Iterator[tuple[Connection, datetime]]:
    """The store at ``url`` migrated to the revision before ``revision``, holding the admin token
    and grid ``old`` (id 1); yields the open transaction and its time, for the test's own rows."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, _down_revision(config, revision))
            conn.execute(
                text("INSERT INTO admin_tokens (token_hash, name, created_at) VALUES (:h, 'admin', :t)"),
                {"h": hash_token(admin_token), "t": now},
            )
            conn.execute(
                text(
                    "INSERT INTO grids (id, name, join_token_hash, created_at, updated_at)"
                    " VALUES (1, 'old', :j, :t, :t)"
                ),
                {"j": hash_token(join_token or uuid.uuid4().hex), "t": now},
            )
            yield conn, now
    finally:
        engine.dispose()

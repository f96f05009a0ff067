"""A store made before backups (the revision before 0012), opened by today's master: its grids
have no backup repository (and say so), its volumes no schedule, and there are no backups yet."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from moorage.store.database import MIGRATIONS, normalize_url
from moorage.store.tokens import hash_token
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    before = ScriptDirectory.from_config(config).get_revision("0012")
    assert before is not None and isinstance(before.down_revision, str)
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, before.down_revision)
        conn.execute(
            text("INSERT INTO admin_tokens (token_hash, name, created_at) VALUES (:h, 'admin', :t)"),
            {"h": hash_token(admin_token), "t": now},
        )
        conn.execute(
            text(
                "INSERT INTO grids (id, name, join_token_hash, created_at, updated_at)"
                " VALUES (1, 'old', :j, :t, :t)"
            ),
            {"j": hash_token(uuid.uuid4().hex), "t": now},
        )
        conn.execute(
            text(
                "INSERT INTO volumes (id, grid_id, name, scope, driver, driver_opts, labels, created_at,"
                " updated_at, topology) VALUES (1, 1, 'data', 'instance', 'local', '{}', '{}', :t, :t, 'node')"
            ),
            {"t": now},
        )
    engine.dispose()


def test_an_old_grid_has_no_backups_and_says_where_to_set_them(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            assert admin.get("/v1/grids/old").json()["backup_repo"] is None
            assert admin.get("/v1/backups/old").json() == {"backups": []}
            assert admin.get("/v1/volumes/old/data").json()["name"] == "data"
            refused = admin.post("/v1/backups/old", json={"volume": "data"})
            assert refused.status_code == 409
            assert "moorage grid backup-repo set" in refused.json()["error"]
    finally:
        master.stop()

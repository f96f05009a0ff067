"""A store made before events (the revision before 0007), opened by today's master: it has no
events yet, records them from then on, and a removed grid takes its events with it."""

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
    revision = ScriptDirectory.from_config(config).get_revision("0007")
    assert revision is not None and isinstance(revision.down_revision, str)
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision.down_revision)
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
    engine.dispose()


def test_an_old_store_records_events_from_its_upgrade_on(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            empty = admin.get("/v1/grids/old/events").json()
            assert (empty["events"], empty["older"], empty["newer"]) == ([], None, "0")
            made = admin.post(
                "/v1/volumes/old", json={"name": "data", "scope": "instance", "driver": "local"}
            )
            assert made.status_code == 201, made.text
            after = admin.get("/v1/grids/old/events", params={"after": "0"}).json()
            assert [(e["kind"], e["actor"], e["grid"]) for e in after["events"]] == [
                ("volume.created", "admin", "old")
            ]
            assert admin.delete("/v1/grids/old").status_code == 200
            assert admin.post("/v1/grids", json={"name": "old"}).status_code == 201
            assert admin.get("/v1/grids/old/events").json()["events"] == []  # the old grid's went with it
    finally:
        master.stop()

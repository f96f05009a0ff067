"""A store made before backups (the revision before 0012), opened by today's master: its grids
have no backup repository (and say so), its volumes no schedule, and there are no backups yet."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0012", admin_token) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO volumes (id, grid_id, name, scope, driver, driver_opts, labels, created_at,"
                " updated_at, topology) VALUES (1, 1, 'data', 'instance', 'local', '{}', '{}', :t, :t, 'node')"
            ),
            {"t": now},
        )


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

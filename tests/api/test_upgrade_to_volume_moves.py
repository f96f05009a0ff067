"""A store made before volume moves (the revision before 0010), opened by today's master: its volume instances
are held by no move, it has no moves and no retired copies, and a move can be asked of it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import text

from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0010", admin_token) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                " created_at, updated_at) VALUES ('n-1', 1, 'n-1', 'offline', :t, :t, '{}', :info, :t, :t)"
            ),
            {"t": now, "info": json.dumps({"drivers": [{"name": "local", "scope": "local"}]})},
        )
        conn.execute(
            text(
                "INSERT INTO volumes (id, grid_id, name, scope, driver, driver_opts, labels, created_at,"
                " updated_at, topology) VALUES (1, 1, 'data', 'instance', 'local', '{}', '{}', :t, :t, 'node')"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO volume_instances (id, grid_id, volume_id, node_id, name, driver, driver_opts, zone,"
                " state, error, created_at, updated_at) VALUES ('vi-1', 1, 1, 'n-1', 'web.data-1',"
                " 'local', '{}', NULL, 'present', NULL, :t, :t)"
            ),
            {"t": now},
        )


def test_an_old_store_has_no_moves_and_nothing_held(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            shown = admin.get("/v1/volumes/old/data").json()
            assert shown["retired"] == []
            assert [(i["name"], i["node"]) for i in shown["instances"]] == [("web.data-1", "n-1")]
            assert admin.get("/v1/volumes/old/data/moves").json() == {"moves": []}
            refused = admin.post(
                "/v1/volumes/old/data/moves", json={"docker_volume": "web.data-1", "to": "n-1"}
            )
            assert refused.status_code == 409, refused.text
            assert "it is there already" in refused.json()["error"]  # not "being moved already"
    finally:
        master.stop()

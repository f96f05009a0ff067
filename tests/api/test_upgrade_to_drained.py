"""A store made before drained nodes (the revision before 0011), opened by today's master: every
node is not drained (``drained: false`` in its JSON), takes instances, and can be drained."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import text

from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0011", admin_token) as (conn, now):
        for node_id in ("n-old-1", "n-old-2"):
            conn.execute(
                text(
                    "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                    " created_at, updated_at) VALUES (:id, 1, :id, 'offline', :t, :t, '{}', :info, :t, :t)"
                ),
                {"id": node_id, "t": now, "info": json.dumps({"cpus": 1, "memory": 1, "drivers": []})},
            )


def test_old_nodes_are_not_drained_and_can_be(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            nodes = admin.get("/v1/nodes/old").json()["nodes"]
            assert [(n["name"], n["drained"]) for n in nodes] == [("n-old-1", False), ("n-old-2", False)]
            drained = admin.post("/v1/nodes/old/n-old-1/drain")
            assert drained.status_code == 200, drained.text
            assert drained.json()["node"]["drained"] is True
            assert admin.get("/v1/nodes/old/n-old-2").json()["drained"] is False
    finally:
        master.stop()

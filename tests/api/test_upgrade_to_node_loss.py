"""A store made before lost nodes (the revision before 0015), opened by today's master: every
volume's ``on_node_lost`` is ``wait`` (what Moorage did before: an instance waits for its node),
its nodes are not lost, and the policy can be changed (``PATCH``, 422 for a wrong one)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy import text

from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0015", admin_token) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                " created_at, updated_at) VALUES ('n-old-1', 1, 'n-old-1', 'offline', :t, :t, '{}', :info, :t, :t)"
            ),
            {"t": now, "info": json.dumps({"cpus": 1, "memory": 1, "drivers": []})},
        )
        for name, scope in (("old-data", "instance"), ("old-shared", "grid")):
            conn.execute(
                text(
                    "INSERT INTO volumes (grid_id, name, scope, driver, driver_opts, labels, created_at,"
                    " updated_at, topology) VALUES (1, :name, :scope, 'local', '{}', '{}', :t, :t, 'node')"
                ),
                {"name": name, "scope": scope, "t": now},
            )


def test_old_volumes_wait_for_a_lost_node_and_can_be_told_otherwise(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            volumes = admin.get("/v1/volumes/old").json()["volumes"]
            assert [(v["name"], v["on_node_lost"]) for v in volumes] == [
                ("old-data", "wait"),
                ("old-shared", "wait"),
            ]
            assert admin.get("/v1/nodes/old/n-old-1").json()["lost_at"] is None
            changed = admin.patch("/v1/volumes/old/old-data", json={"on_node_lost": "restore"})
            assert changed.status_code == 200, changed.text
            assert changed.json()["on_node_lost"] == "restore"
            assert admin.get("/v1/volumes/old/old-data").json()["on_node_lost"] == "restore"
            refused = admin.patch("/v1/volumes/old/old-shared", json={"on_node_lost": "recreate"})
            assert refused.status_code == 422, refused.text
            assert "applies to instance-scope volumes only" in refused.json()["error"]["on_node_lost"]
            unknown = admin.patch("/v1/volumes/old/old-data", json={"on_node_lost": "keep"})
            assert unknown.status_code == 422, unknown.text
            lost = admin.post("/v1/nodes/old/n-old-1/lost")
            assert lost.status_code == 200, lost.text
            assert lost.json()["node"]["lost_at"] is not None and lost.json()["outcomes"] == []
            again = admin.post("/v1/nodes/old/n-old-1/lost")
            assert again.status_code == 200, again.text
            events = admin.get("/v1/grids/old/events", params={"kind": "node"}).json()["events"]
            assert [e["kind"] for e in events].count("node.lost") == 2
    finally:
        master.stop()

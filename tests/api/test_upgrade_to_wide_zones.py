"""A store made before 0009 (zone and region of 128 characters at most), opened by today's master:
the volume instances it has keep their zone and region, and a deploy onto a node whose zone and
region labels are as long as a label value may be (1,024 characters) records them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text

from moorage.model.names import LABEL_VALUE_MAX
from tests.support.fake_agent import FakeNode
from tests.support.old_store import store_before
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _old_store(url: str, admin_token: str, join_token: str) -> None:
    """Grid ``old`` with an offline node in zone a, region eu, and a volume instance made there."""
    with store_before(url, "0009", admin_token, join_token) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                " created_at, updated_at) VALUES ('n-old-1', 1, 'near', 'offline', :t, :t, :labels, :info, :t, :t)"
            ),
            {
                "t": now,
                "labels": json.dumps({"zone": "a", "region": "eu"}),
                "info": json.dumps(
                    {"cpus": 1, "memory": 1, "drivers": [{"name": "local", "scope": "local"}]}
                ),
            },
        )
        conn.execute(
            text(
                "INSERT INTO volumes (grid_id, name, scope, driver, driver_opts, labels, created_at,"
                " updated_at, topology) VALUES (1, 'logs', 'instance', 'local', '{}', '{}', :t, :t, 'node')"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO volume_instances (id, grid_id, volume_id, node_id, name, driver, driver_opts, zone,"
                " region, state, error, created_at, updated_at) VALUES ('vi-1', 1, (SELECT id FROM volumes), 'n-old-1',"
                " 'old.logs-1',"
                " 'local', '{}', 'a', 'eu', 'present', NULL, :t, :t)"
            ),
            {"t": now},
        )


def test_an_old_store_takes_zones_and_regions_as_long_as_a_label_value(tmp_path: Path, db_url: str) -> None:
    admin_token, join_token = "old-admin-" + uuid.uuid4().hex, "old-join-" + uuid.uuid4().hex
    _old_store(db_url, admin_token, join_token)
    zone, region = "z" * LABEL_VALUE_MAX, "r" * LABEL_VALUE_MAX
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            (kept,) = admin.get("/v1/volumes/old/logs").json()["instances"]
            assert (kept["node"], kept["zone"], kept["region"]) == ("near", "a", "eu")
            labels = [f"zone={zone}", f"region={region}"]
            with FakeNode(master.url, join_token, "far", report_volumes=True, labels=labels):
                wait_until(
                    lambda: admin.get("/v1/nodes/old/far").json().get("status") == "online", 10, "far online"
                )
                made = admin.post(
                    "/v1/volumes/old", json={"name": "db", "scope": "instance", "driver": "local"}
                )
                assert made.status_code == 201, made.text
                body: dict[str, Any] = {"name": "pg", "image": "busybox:local", "volumes": ["db:/data"]}
                created = admin.post("/v1/services/old", json={**body, "deploy": True})
                assert created.status_code == 201, created.text
                (instance,) = wait_until(
                    lambda: admin.get("/v1/volumes/old/db").json()["instances"], 20, "db's volume instance"
                )
                assert (instance["node"], instance["zone"], instance["region"]) == ("far", zone, region)
    finally:
        master.stop()

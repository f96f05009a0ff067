"""A store made before 0009 (zone and region of 128 characters at most), opened by today's master:
the volume instances it has keep their zone and region, and a deploy onto a node whose zone and
region labels are as long as a label value may be (1,024 characters) records them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from moorage.model.names import LABEL_VALUE_MAX
from moorage.store.database import MIGRATIONS, normalize_url
from moorage.store.tokens import hash_token
from tests.support.fake_agent import FakeNode
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _before_wide_zones(config: Config) -> str:
    revision = ScriptDirectory.from_config(config).get_revision("0009")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _old_store(url: str, admin_token: str, join_token: str) -> None:
    """Grid ``old`` with an offline node in zone a, region eu, and a volume instance made there."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, _before_wide_zones(config))
        conn.execute(
            text("INSERT INTO admin_tokens (token_hash, name, created_at) VALUES (:h, 'admin', :t)"),
            {"h": hash_token(admin_token), "t": now},
        )
        conn.execute(
            text(
                "INSERT INTO grids (id, name, join_token_hash, created_at, updated_at)"
                " VALUES (1, 'old', :j, :t, :t)"
            ),
            {"j": hash_token(join_token), "t": now},
        )
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
    engine.dispose()


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

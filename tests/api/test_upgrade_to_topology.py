"""A store made before volume topology (the revision before 0008), opened by today's master: each
volume gets the topology it behaved like (``grid`` when a node of its grid has its driver global,
``node`` otherwise), each volume instance its node's region, and placing keeps today's behaviour."""

from __future__ import annotations

import json
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


def _before_topology(config: Config) -> str:
    revision = ScriptDirectory.from_config(config).get_revision("0008")
    assert revision is not None and isinstance(revision.down_revision, str)
    return revision.down_revision


def _old_store(url: str, admin_token: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    engine = create_engine(normalize_url(url))
    now = datetime.now(UTC)
    drivers = [{"name": "local", "scope": "local"}, {"name": "shared", "scope": "global"}]
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, _before_topology(config))
        conn.execute(
            text("INSERT INTO admin_tokens (token_hash, name, created_at) VALUES (:h, 'admin', :t)"),
            {"h": hash_token(admin_token), "t": now},
        )
        for grid_id, name in ((1, "old"), (2, "plain")):
            conn.execute(
                text(
                    "INSERT INTO grids (id, name, join_token_hash, created_at, updated_at)"
                    " VALUES (:id, :name, :j, :t, :t)"
                ),
                {"id": grid_id, "name": name, "j": hash_token(uuid.uuid4().hex), "t": now},
            )
        # grid old: one node with "shared" global, in region eu; grid plain: a node with local only
        for node_id, grid_id, labels, info_drivers in (
            ("n-old-1", 1, {"zone": "a", "region": "eu"}, drivers),
            ("n-plain-1", 2, {}, drivers[:1]),
        ):
            conn.execute(
                text(
                    "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                    " created_at, updated_at) VALUES (:id, :g, :id, 'offline', :t, :t, :labels, :info, :t, :t)"
                ),
                {
                    "id": node_id,
                    "g": grid_id,
                    "t": now,
                    "labels": json.dumps(labels),
                    "info": json.dumps({"cpus": 1, "memory": 1, "drivers": info_drivers}),
                },
            )
        volumes = [
            (1, 1, "data", "local"),
            (2, 1, "files", "shared"),
            (3, 1, "ebs", "rexray"),
            (4, 2, "files", "shared"),  # "shared" is global in grid old, not in grid plain
        ]
        for volume_id, grid_id, name, driver in volumes:
            conn.execute(
                text(
                    "INSERT INTO volumes (id, grid_id, name, scope, driver, driver_opts, labels, created_at,"
                    " updated_at) VALUES (:id, :g, :name, 'instance', :driver, '{}', '{}', :t, :t)"
                ),
                {"id": volume_id, "g": grid_id, "name": name, "driver": driver, "t": now},
            )
        conn.execute(
            text(
                "INSERT INTO volume_instances (id, grid_id, volume_id, node_id, name, driver, driver_opts, zone,"
                " state, error, created_at, updated_at) VALUES ('vi-1', 1, 2, 'n-old-1', 'web.files-1',"
                " 'shared', '{}', 'a', 'present', NULL, :t, :t)"
            ),
            {"t": now},
        )
    engine.dispose()


def test_old_volumes_get_the_topology_they_behaved_like(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            old = {v["name"]: v for v in admin.get("/v1/volumes/old").json()["volumes"]}
            assert {name: v["topology"] for name, v in old.items()} == {
                "data": "node",  # local: stayed on its node
                "files": "grid",  # global on a node of its grid: followed its instance
                "ebs": "node",  # no node has it: nothing said it was shared
            }
            (instance,) = old["files"]["instances"]
            assert (instance["node"], instance["zone"], instance["region"]) == ("n-old-1", "a", "eu")
            plain = admin.get("/v1/volumes/plain").json()["volumes"]
            assert [(v["name"], v["topology"]) for v in plain] == [("files", "node")]
    finally:
        master.stop()

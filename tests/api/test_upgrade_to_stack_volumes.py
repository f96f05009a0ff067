"""A store made before stack-owned volumes (the revision before 0013), opened by today's master:
existing volumes belong to no stack, their volume instances keep their state (none is unused
until something releases it), drift is not known until agents report, and a stack file with a
volume of its own installs beside them."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import text

from moorage.stackfile import load_stack, stack_to_dict
from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0013", admin_token) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                " created_at, updated_at) VALUES ('n1', 1, 'n1', 'offline', :t, :t, '{}', '{}', :t, :t)"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO volumes (grid_id, name, scope, driver, driver_opts, labels, created_at,"
                " updated_at, topology) VALUES (1, 'data', 'instance', 'local', '{}', '{}', :t, :t, 'node')"
            ),
            {"t": now},
        )
        conn.execute(
            text(
                "INSERT INTO volume_instances (id, grid_id, volume_id, node_id, name, driver, driver_opts, zone,"
                " region, state, error, created_at, updated_at) VALUES ('vi-1', 1,"
                " (SELECT id FROM volumes WHERE name = 'data'), 'n1', 'web.data-2',"
                " 'local', '{}', NULL, NULL, 'present', NULL, :t, :t)"
            ),
            {"t": now},
        )


def test_old_volumes_belong_to_no_stack_and_keep_their_state(tmp_path: Path, db_url: str) -> None:
    admin_token = "old-admin-" + uuid.uuid4().hex
    _old_store(db_url, admin_token)
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin_token) as admin:
            (volume,) = admin.get("/v1/volumes/old").json()["volumes"]
            assert volume["stack"] is None
            (instance,) = volume["instances"]
            assert (instance["state"], instance["unused_since"], instance["drift"]) == ("present", None, None)
            stack = load_stack(
                "stack: web\nservices: {web: {image: busybox, volumes: [data:/data, own:/own]}}\n"
                "volumes: {data: {external: true}, own: {scope: stack}}",
                env={},
                grid="old",
            )
            response = admin.post("/v1/stacks/old", json={"stack": stack_to_dict(stack), "deploy": False})
            assert response.status_code == 201, response.text
            found = {v["name"]: v["stack"] for v in admin.get("/v1/volumes/old").json()["volumes"]}
            assert found == {"data": None, "web_own": "old/web"}
    finally:
        master.stop()

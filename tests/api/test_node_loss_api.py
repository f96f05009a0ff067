"""``POST /v1/nodes/{grid}/{node}/lost`` against a real master (SQLite and PostgreSQL) with fake
agents over real WebSockets: the instance of a node that goes dark is pending at once with the
reason; declared lost, a ``restore`` volume's latest backup goes to the node the scheduler picks
for its instance (a restore job; the instance held, stopped), and one whose service's affinity
allows no other node waits with the scheduler's words. The restore itself (restic on real
engines) is tests/e2e/test_e2e_node_loss.py."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import create_engine, text

from moorage.store.database import normalize_url
from tests.support.fake_agent import FakeNode
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _instance(client: httpx.Client, grid: str, service: str) -> dict[str, Any]:
    (one,) = client.get(f"/v1/services/{grid}/null/{service}").json()["containers"]
    return one


def _backup_of(db_url: str, docker_volume: str, volume: str) -> None:
    """A backup as a backup job records one (restic's snapshot is the e2e test's business)."""
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.begin() as conn:
            vi_id, grid_id = conn.execute(
                text("SELECT id, grid_id FROM volume_instances WHERE name = :n"), {"n": docker_volume}
            ).one()
            conn.execute(
                text(
                    "INSERT INTO backups (id, grid_id, volume, docker_volume, volume_instance_id, node,"
                    " group_id, time, size, files, added, duration, quiesce)"
                    " VALUES (:id, :g, :v, :d, :vi, 'node-1', :grp, :t, 1, 1, 1, 0.1, 'pause')"
                ),
                {
                    "id": uuid.uuid4().hex * 2,
                    "g": grid_id,
                    "v": volume,
                    "d": docker_volume,
                    "vi": vi_id,
                    "grp": uuid.uuid4().hex,
                    "t": datetime.now(UTC) - timedelta(hours=7, minutes=12),
                },
            )
    finally:
        engine.dispose()


def _repository(db_url: str) -> None:
    """The grid's backup repository as ``grid backup-repo set`` records it (no agent opens it here)."""
    engine = create_engine(normalize_url(db_url))
    try:
        with engine.begin() as conn:
            conn.execute(text("UPDATE grids SET backup_repo = '/srv/backups', backup_password = 'pw'"))
    finally:
        engine.dispose()


def test_a_lost_node_s_restore_goes_where_the_scheduler_puts_its_instance(
    fresh_master: MasterProcess, db_url: str
) -> None:
    with fresh_master.client() as client:
        grid = "lost"
        token = client.post("/v1/grids", json={"name": grid}).json()["join_token"]
        with FakeNode(fresh_master.url, token, "node-1", report_volumes=True) as first:
            for volume in ("db", "pinned"):
                body = {"name": volume, "scope": "instance", "driver": "local", "on_node_lost": "restore"}
                assert client.post(f"/v1/volumes/{grid}", json=body).status_code == 201
            for service, affinity in (("db", []), ("pinned", ["node==node-1"])):
                created = client.post(
                    f"/v1/services/{grid}",
                    json={
                        "name": service,
                        "image": "busybox:local",
                        "cmd": "sleep 3600",
                        "volumes": [f"{service}:/data"],
                        "affinity": affinity,
                        "deploy": True,
                    },
                )
                assert created.status_code == 201, created.text
                wait_until(
                    lambda s=service: _instance(client, grid, s)["state"] == "running",
                    15,
                    f"{service} running",
                )  # type: ignore[misc]
            with (
                FakeNode(fresh_master.url, token, "node-2", report_volumes=True),
                FakeNode(fresh_master.url, token, "node-3", report_volumes=True),
            ):
                wait_until(
                    lambda: (
                        [n["status"] for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]].count("online")
                        == 3
                    ),
                    15,
                    "three nodes online",
                )
                refused = client.post(f"/v1/nodes/{grid}/node-1/lost")
                assert refused.status_code == 409 and "--force" in refused.json()["error"]
                first.__exit__(None, None, None)  # node-1 goes dark
                waiting = wait_until(
                    lambda: (i := _instance(client, grid, "db"))["state"] == "pending" and i, 20, "db pending"
                )
                assert "lives on node node-1, which is offline (last seen " in waiting["reason"]
                assert (
                    "run 'moorage node declare-lost node-1' to restore its latest backup" in waiting["reason"]
                )
                for service in ("db", "pinned"):
                    _backup_of(db_url, f"{service}.{service}-1", service)
                without = client.post(f"/v1/nodes/{grid}/node-1/lost")
                assert without.status_code == 200, without.text
                assert {o["action"] for o in without.json()["outcomes"]} == {"waiting"}
                assert "has no backup repository" in without.json()["outcomes"][0]["message"]
                _repository(db_url)

                declared = client.post(f"/v1/nodes/{grid}/node-1/lost")
                assert declared.status_code == 200, declared.text
                outcomes = {o["volume"]: o for o in declared.json()["outcomes"]}
                assert outcomes["db"]["action"] == "restoring" and outcomes["db"]["to"] in (
                    "node-2",
                    "node-3",
                )
                assert outcomes["db"]["instances"] == ["db-1"] and outcomes["db"]["job"]
                assert outcomes["pinned"]["action"] == "waiting"
                assert (
                    "no node can run its instance with its data: 0/3 nodes available"
                    in outcomes["pinned"]["message"]
                )
                assert "didn't match affinity node==node-1" in outcomes["pinned"]["message"]
                held = _instance(client, grid, "db")
                assert held["state"] == "pending" and "is being restored from" in held["reason"]
                job = client.get(f"/v1/backup-jobs/{grid}/{outcomes['db']['job']}").json()
                assert job["kind"] == "restore" and job["node"] == outcomes["db"]["to"]
                assert client.get(f"/v1/nodes/{grid}/node-1").json()["lost_at"] is not None

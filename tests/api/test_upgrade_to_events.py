"""A store made before events (the revision before 0007), opened by today's master: it has no
events yet, records them from then on, and a removed grid takes its events with it."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.old_store import store_before
from tests.support.processes import MasterProcess


def _old_store(url: str, admin_token: str) -> None:
    with store_before(url, "0007", admin_token):
        pass  # the admin token and grid old: no rows of its own


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

"""Several masters on one store, as their API shows it: on PostgreSQL two masters list each other
and one of them leads, and when the leader is killed the other leads within seconds; on SQLite a
second master on the same file is refused with words that say what to do. A store from before
0014 (a node left online by a master that crashed) opens with that node offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from tests.conftest import _db_url
from tests.support.old_store import store_before
from tests.support.processes import MasterProcess, free_port
from tests.support.waiting import wait_until


def _leaders(master: MasterProcess, token: str) -> dict[str, object]:
    with master.client(token) as http:
        answer = http.get("/v1/masters")
    assert answer.status_code == 200, answer.text
    body: dict[str, object] = answer.json()
    return body


def _token(*masters: MasterProcess) -> str:
    return next(m.admin_token for m in masters if (m.data_dir / "admin.token").exists())


@pytest.fixture
def pg_url(tmp_path: Path) -> Iterator[str]:
    yield from _db_url("postgresql", tmp_path)  # skipped without PostgreSQL (failed on CI)


def test_two_masters_on_postgresql_see_each_other_and_one_takes_over(tmp_path: Path, pg_url: str) -> None:
    db_url = pg_url
    a = MasterProcess(data_dir=tmp_path / "a", db_url=db_url).start()
    b = MasterProcess(data_dir=tmp_path / "b", db_url=db_url).start()
    try:
        token = _token(a, b)

        def both_listed() -> dict[str, object] | None:
            seen = _leaders(a, token)
            masters = seen["masters"]
            assert isinstance(masters, list)
            return seen if len(masters) == 2 and seen["leader"] is not None else None

        seen = wait_until(both_listed, 15, "both masters listed, one leading")
        masters = seen["masters"]
        assert isinstance(masters, list)
        assert sum(m["leader"] for m in masters) == 1
        assert [m["this"] for m in masters].count(True) == 1
        leader = next(m for m in masters if m["leader"])
        survivor, victim = (a, b) if leader["url"] == b.url else (b, a)
        with survivor.client(token) as http:  # a drain is the leader's: the other refuses it first
            http.post("/v1/grids", json={"name": "several"}).raise_for_status()
            refused = http.post("/v1/nodes/several/node-1/drain")
        assert refused.status_code == 409 and "this master does not lead" in refused.text, refused.text
        assert victim.proc is not None
        os.kill(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()
        killed = time.monotonic()

        def survivor_leads() -> bool:
            now = _leaders(survivor, token)
            listed = now["masters"]
            assert isinstance(listed, list)
            return any(m["leader"] and m["this"] for m in listed)

        wait_until(survivor_leads, 10, "the surviving master to lead")
        assert time.monotonic() - killed < 10
    finally:
        a.stop()
        b.stop()


def test_a_second_master_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    first = MasterProcess(data_dir=tmp_path / "first", db_url=store).start()
    try:
        argv = [sys.executable, "-m", "moorage", "master", "--listen", f"127.0.0.1:{free_port()}"]
        argv += ["--data-dir", str(tmp_path / "second"), "--db", store]
        second = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second
        said = second.stdout + second.stderr
        assert "Traceback" not in said
        assert f"already serves the SQLite store {tmp_path / 'store.db'}" in said
        assert "postgresql://" in said
        with first.client() as http:  # the first one is untouched
            assert http.get("/v1/masters").json()["masters"][0]["leader"] is True
    finally:
        first.stop()


def test_a_node_left_online_before_0014_opens_offline(tmp_path: Path, db_url: str) -> None:
    admin = uuid.uuid4().hex
    with store_before(db_url, "0014", admin) as (conn, now):
        conn.execute(
            text(
                "INSERT INTO nodes (id, grid_id, name, status, status_since, last_seen_at, labels, info,"
                " created_at, updated_at) VALUES ('n-old-1', 1, 'n1', 'online', :t, :t, '{}', '{}', :t, :t)"
            ),
            {"t": now},
        )
    master = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        with master.client(admin) as http:
            wait_until(
                lambda: http.get("/v1/nodes/old").json()["nodes"][0]["status"] == "offline",
                10,
                "the node left online by a crashed master to be offline",
            )
            (node,) = http.get("/v1/nodes/old").json()["nodes"]
            assert node["master"] is None
            (me,) = http.get("/v1/masters").json()["masters"]
            assert me["leader"] and me["this"] and me["nodes"] == 0
    finally:
        master.stop()


def _job(db_url: str, grid_id: int, master_id: str | None) -> str:
    """A running backup job of an agent, as master ``master_id`` started it."""
    from sqlalchemy import create_engine

    from moorage.store.database import normalize_url

    job_id = uuid.uuid4().hex
    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO backup_jobs (id, grid_id, kind, state, volume, node, docker_volumes, details,"
                " progress, created_at, master_id) VALUES (:id, :g, 'backup', 'running', 'data', 'n1',"
                " '[]', '{}', '{}', now(), :m)"
            ),
            {"id": job_id, "g": grid_id, "m": master_id},
        )
    engine.dispose()
    return job_id


def test_a_job_ends_with_its_master_not_when_another_master_restarts(tmp_path: Path, pg_url: str) -> None:
    """A job's agent answers the master that started it: a restart of another master leaves it
    running; when its own master is gone, the leader fails it and says why."""
    a = MasterProcess(data_dir=tmp_path / "a", db_url=pg_url).start()
    b = MasterProcess(data_dir=tmp_path / "b", db_url=pg_url).start()
    try:
        token = _token(a, b)
        with a.client(token) as http:
            made = http.post("/v1/grids", json={"name": "jobs"})
            assert made.status_code in (200, 201), made.text
            mine = next(m for m in http.get("/v1/masters").json()["masters"] if m["this"])

        def state(job_id: str) -> tuple[str, str | None]:
            with a.client(token) as http:
                shown = http.get(f"/v1/backup-jobs/jobs/{job_id}").json()
            return shown["state"], shown["error"]

        from sqlalchemy import create_engine

        from moorage.store.database import normalize_url

        engine = create_engine(normalize_url(pg_url))
        with engine.connect() as conn:
            grid_id = conn.execute(text("SELECT id FROM grids WHERE name = 'jobs'")).scalar_one()
        engine.dispose()
        of_a = _job(pg_url, grid_id, mine["id"])
        of_the_gone = _job(pg_url, grid_id, uuid.uuid4().hex)
        wait_until(lambda: state(of_the_gone)[0] == "failed", 15, "the job of a master that is gone to fail")
        assert "the master that ran the job stopped during it; run it again" in str(state(of_the_gone)[1])
        b.stop()
        b = MasterProcess(data_dir=tmp_path / "b2", db_url=pg_url).start()
        with b.client(token) as http:
            wait_until(lambda: len(http.get("/v1/masters").json()["masters"]) >= 2, 15, "b back")
        assert state(of_a) == ("running", None), "another master's restart leaves a's job alone"
        assert a.proc is not None
        os.kill(a.proc.pid, signal.SIGKILL)
        a.proc.wait()

        def failed() -> bool:
            with b.client(token) as http:
                return bool(http.get(f"/v1/backup-jobs/jobs/{of_a}").json()["state"] == "failed")

        wait_until(failed, 30, "a's job to fail once a is gone")
    finally:
        a.stop()
        b.stop()

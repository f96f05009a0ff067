"""Shared fixtures: real masters on loopback, on SQLite and (when configured) on PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from moorage.store.database import normalize_url
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until

PG_URL = os.environ.get("MOORAGE_TEST_PG_URL")


def _fresh_pg_database() -> str:
    """A new empty database on the test PostgreSQL server, dropped by the caller."""
    assert PG_URL
    name = f"moorage_t_{uuid.uuid4().hex[:10]}"
    engine = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    base, _, _ = PG_URL.rpartition("/")
    return f"{base}/{name}"


def _drop_pg_database(url: str) -> None:
    """Drop it, ending its connections. An autovacuum worker in it cannot be ended by a role that
    is not a superuser (``InsufficientPrivilege``): it finishes in a moment, so try again."""
    assert PG_URL
    name = url.rpartition("/")[2]
    engine = create_engine(normalize_url(PG_URL), isolation_level="AUTOCOMMIT")

    def dropped() -> bool:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return True

    try:
        wait_until(dropped, 30, f"the test database {name} to be dropped")
    finally:
        engine.dispose()


def _db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if not PG_URL:
        if os.environ.get("CI"):
            pytest.fail("MOORAGE_TEST_PG_URL is not set; scripts/test starts PostgreSQL and sets it")
        pytest.skip("MOORAGE_TEST_PG_URL not set (scripts/test sets it)")
    url = _fresh_pg_database()
    try:
        yield url
    finally:
        _drop_pg_database(url)


BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty store: a SQLite file, or a new PostgreSQL database."""
    yield from _db_url(request.param, tmp_path)


@pytest.fixture
def fresh_master(tmp_path: Path, db_url: str) -> Iterator[MasterProcess]:
    """A master of its own, for tests that restart it or need an empty store."""
    proc = MasterProcess(data_dir=tmp_path / "master", db_url=db_url).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def master(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MasterProcess]:
    """One master per backend shared by the API tests; each test works in grids of its own."""
    tmp = tmp_path_factory.mktemp(f"master-{request.param}")
    for url in _db_url(request.param, tmp):
        proc = MasterProcess(data_dir=tmp / "master", db_url=url).start()
        try:
            yield proc
        finally:
            proc.stop()


@pytest.fixture
def grid(master: MasterProcess) -> Iterator[str]:
    """A new grid on the shared master: (name)."""
    name = f"g-{uuid.uuid4().hex[:8]}"
    with master.client() as client:
        client.post("/v1/grids", json={"name": name}).raise_for_status()
    yield name

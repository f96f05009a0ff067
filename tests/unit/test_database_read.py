"""Database.read: reads of a SQLite file run on the event loop, on a connection that cannot write."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from moorage.store.database import Database
from moorage.store.grids import create_grid, list_grids


def test_reads_run_on_the_loop_and_see_committed_writes(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.migrate()

    async def scenario() -> None:
        loop_thread = threading.get_ident()

        def names(session: Session) -> tuple[list[str], int]:
            return [g.name for g in list_grids(session)], threading.get_ident()

        assert await db.read(names) == ([], loop_thread)
        await db.run(lambda session: create_grid(session, "alpha"))
        assert await db.read(names) == (["alpha"], loop_thread)
        with pytest.raises(OperationalError, match="readonly"):
            await db.read(lambda session: create_grid(session, "beta"))
        assert (await db.read(names))[0] == ["alpha"]

    try:
        asyncio.run(scenario())
    finally:
        db.dispose()


def test_reads_of_other_stores_use_a_worker_thread() -> None:
    db = Database("sqlite://")  # in memory: another connection would be another database

    async def where() -> int:
        return await db.read(lambda _session: threading.get_ident())

    try:
        assert asyncio.run(where()) != threading.get_ident()
    finally:
        db.dispose()

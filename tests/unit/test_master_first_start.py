"""A master's first start on a store (``master/server.prepare``): it makes the first admin token,
unless another master starting on the same PostgreSQL at the same moment made it first; then it
starts all the same, without a token of its own (that master's data dir has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from moorage.master import server
from moorage.master.server import MasterConfig, prepare
from moorage.store.tokens import list_admin_tokens


def _release() -> None:
    """Let go of the SQLite store's master lock, as the master's process end does."""
    while server._sqlite_locks:
        os.close(server._sqlite_locks.pop())


def test_the_first_start_makes_the_admin_token_and_the_next_does_not(tmp_path: Path) -> None:
    config = MasterConfig(host="127.0.0.1", port=1, data_dir=tmp_path / "m")
    db, token = prepare(config)
    try:
        assert token is not None and (tmp_path / "m" / "admin.token").read_text().strip() == token
    finally:
        db.dispose()
        _release()
    again, none = prepare(config)
    again.dispose()
    _release()
    assert none is None


def test_a_master_that_loses_the_race_for_the_first_token_starts_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both masters saw no token; the other one's insert committed first: ours is refused
    (``Conflict``, as two API requests for one name are), and this master starts anyway."""
    first = MasterConfig(
        host="127.0.0.1", port=1, data_dir=tmp_path / "a", db_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    db, made = prepare(first)
    db.dispose()
    _release()
    assert made is not None
    monkeypatch.setattr(server, "has_admin_token", lambda session: False)  # it looked before the commit
    second = MasterConfig(
        host="127.0.0.1", port=2, data_dir=tmp_path / "b", db_url=f"sqlite:///{tmp_path / 's.db'}"
    )
    db, token = prepare(second)
    try:
        assert token is None and not (tmp_path / "b" / "admin.token").exists()
        with db.session() as session:
            assert [t.name for t in list_admin_tokens(session)] == ["admin"]
    finally:
        db.dispose()
        _release()

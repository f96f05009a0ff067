"""Backups' own rules: retention policies as written, restic's JSON lines, schedules in the store
(a slot missed while no master ran runs once, not once per slot)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moorage.errors import InvalidInput
from moorage.model.backup import RetentionPolicy, repository_error, schedule_error
from moorage.restic.output import Failure, Progress, Summary, Unchanged, parse_line
from moorage.store.backups import due_backups, mark_slot, set_schedule
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.volumes import create_volume


@pytest.mark.parametrize(
    ("text", "policy"),
    [
        ("daily=7,weekly=4", RetentionPolicy(daily=7, weekly=4)),
        ("last=3", RetentionPolicy(last=3)),
        (" monthly=12 , yearly=2 ", RetentionPolicy(monthly=12, yearly=2)),
    ],
    ids=["daily-weekly", "last", "spaces"],
)
def test_retention_policies_read_as_written(text: str, policy: RetentionPolicy) -> None:
    assert RetentionPolicy.parse(text) == policy
    assert RetentionPolicy.parse(policy.text()) == policy


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("daily", "is not KEY=N"),
        ("often=3", "is not KEY=N"),
        ("daily=0", "whole number"),
        ("", "at least one"),
    ],
    ids=["no-number", "unknown-key", "zero", "empty"],
)
def test_bad_retention_policies_say_what_to_write(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        RetentionPolicy.parse(text)


def test_restic_args_follow_the_policy() -> None:
    assert RetentionPolicy(last=2, weekly=4).restic_args() == ["--keep-last", "2", "--keep-weekly", "4"]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("/srv/backups", True),
        ("local:/srv/b", True),
        ("s3:host/bucket", True),
        ("srv/b", False),
        ("/", False),
    ],
    ids=["path", "local", "s3", "relative", "root"],
)
def test_repository_urls(url: str, ok: bool) -> None:
    assert (repository_error(url) is None) is ok


def test_restic_backup_json_lines() -> None:
    assert parse_line(
        '{"message_type":"status","percent_done":0.5,"total_files":2,"files_done":1,'
        '"total_bytes":100,"bytes_done":50}'
    ) == Progress(bytes_done=50, bytes_total=100, files_done=1, files_total=2)
    summary = parse_line(
        '{"message_type":"summary","files_new":2,"files_changed":0,"data_added":70,'
        '"total_files_processed":2,"total_bytes_processed":100,"total_duration":0.7,"snapshot_id":"3055549d"}'
    )
    assert summary == Summary("3055549d", 100, 2, 70, 2, 0, 0.7)
    assert parse_line('{"message_type":"error","error":{"message":"denied"},"item":"/volume/x"}') == Failure(
        "/volume/x: denied"
    )
    assert parse_line(
        '{"message_type":"verbose_status","action":"unchanged","item":"/volume/a/b"}'
    ) == Unchanged("a/b")
    assert parse_line('{"message_type":"verbose_status","action":"new","item":"/volume/c"}') is None
    assert parse_line('{"message_type":"verbose_status","action":"unchanged","item":"/volume/d/"}') is None
    assert parse_line("not json") is None


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    with database.session() as session:
        create_grid(session, "g")
        create_volume(session, "g", name="data", scope="instance", driver="local")
    yield database
    database.dispose()


def test_a_schedule_runs_each_slot_once_and_a_missed_stretch_once(db: Database) -> None:
    set_at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with db.session() as session:
        set_schedule(session, "g", "data", "0 3 * * *", RetentionPolicy(daily=7), set_at)
    with db.session() as session:
        assert due_backups(session, set_at + timedelta(hours=1)) == [], (
            "the slot before it was set is not run"
        )
        (due,) = due_backups(session, set_at + timedelta(days=3))  # three slots passed: one run
        assert (due.grid, due.volume, due.slot) == ("g", "data", datetime(2026, 12, 4, 3, 0, tzinfo=UTC))
        assert due.keep == RetentionPolicy(daily=7)
        assert mark_slot(session, due.volume_id, due.slot, due.previous) is True
    with db.session() as session:
        assert due_backups(session, set_at + timedelta(days=3, minutes=5)) == []
        assert len(due_backups(session, set_at + timedelta(days=4))) == 1
        # two masters that both saw it due (a leader change): only the first claim runs it
        assert mark_slot(session, due.volume_id, due.slot, due.previous) is False


def test_a_bad_schedule_is_refused_with_an_example(db: Database) -> None:
    assert schedule_error("0 3 * * *") is None
    with db.session() as session, pytest.raises(InvalidInput, match=re.escape("e.g. '0 3 * * *'")):
        set_schedule(session, "g", "data", "every night", None, datetime.now(UTC))
    with db.session() as session:
        assert get_grid_row(session, "g").backup_repo is None

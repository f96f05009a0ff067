"""The events' bound (store/events.py) on a real SQLite file: a grid keeps its newest ``kept``
events (plus at most a tenth of the bound between prunes), pruning one grid leaves the others,
a master prunes every grid at start, and a rolled-back change leaves no
event and wakes no follower."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from moorage.model.events import EventKind
from moorage.store.database import Database
from moorage.store.events import EventFilter, NewEvent, event_page, prune_all_events, record_events
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.tables import EventRow

KEPT = 50


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'store.db'}", events_kept=KEPT)
    database.migrate()
    with database.session() as session:
        create_grid(session, "a")
        create_grid(session, "b")
    yield database
    database.dispose()


def _grid_id(db: Database, name: str) -> int:
    with db.session() as session:
        return get_grid_row(session, name).id


def _count(db: Database, grid_id: int | None) -> int:
    own = EventRow.grid_id.is_(None) if grid_id is None else EventRow.grid_id == grid_id
    with db.session() as session:
        return int(session.scalar(select(func.count()).select_from(EventRow).where(own)) or 0)


def _write(db: Database, grid_id: int | None, first: int, count: int) -> None:
    with db.session() as session:
        record_events(
            session, *(NewEvent(grid_id, EventKind.VOLUME_CREATED, f"e{first + i}") for i in range(count))
        )


def test_a_grid_keeps_its_newest_events_within_the_bound(db: Database) -> None:
    a, b = _grid_id(db, "a"), _grid_id(db, "b")
    _write(db, b, 0, 7)
    written = 0
    for size in [1, 3, 1, 7, 2, 1, 9, 4] * 6:  # 168 events in transactions of several sizes
        _write(db, a, written, size)
        written += size
        assert _count(db, a) <= KEPT + db.events.prune_every - 1 + size
    assert KEPT <= _count(db, a) < KEPT + db.events.prune_every + 9
    with db.session() as session:
        page = event_page(session, a, "a", EventFilter(), limit=1000)
    messages = [e.message for e in page.events]
    assert messages == [f"e{i}" for i in range(written - len(messages), written)]  # the newest, in order
    assert _count(db, b) == 7  # grid b untouched by grid a's prunes


def test_the_masters_own_events_are_bounded_too(db: Database) -> None:
    for start in range(0, 120, 10):
        _write(db, None, start, 10)
    assert KEPT <= _count(db, None) < KEPT + db.events.prune_every + 10


def test_a_master_prunes_every_grid_at_start(db: Database) -> None:
    a, b = _grid_id(db, "a"), _grid_id(db, "b")
    roomy = Database(db.url, events_kept=1000)  # a master that kept more, before a restart
    try:
        _write(roomy, None, 0, KEPT + 1)
        _write(roomy, b, 0, 3)
        _write(roomy, a, 0, KEPT + 3)
    finally:
        roomy.dispose()
    with db.session() as session:  # as moorage master does at start
        prune_all_events(session, db.events.kept)
    assert (_count(db, a), _count(db, None), _count(db, b)) == (KEPT, KEPT, 3)
    with db.session() as session:
        newest = event_page(session, a, "a", EventFilter(), limit=1)
    assert [e.message for e in newest.events] == [f"e{KEPT + 2}"]


def test_a_rolled_back_change_leaves_no_event_and_wakes_no_one(db: Database) -> None:
    a = _grid_id(db, "a")
    woken: list[int] = []
    stop = db.events.listen(lambda: woken.append(1))
    with pytest.raises(RuntimeError), db.session() as session:
        record_events(session, NewEvent(a, EventKind.VOLUME_CREATED, "lost"))
        raise RuntimeError("the change failed")
    assert _count(db, a) == 0 and woken == []
    _write(db, a, 0, 2)
    assert woken == [1]  # one commit, one wake-up
    stop()
    _write(db, a, 2, 1)
    assert woken == [1]

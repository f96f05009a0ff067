"""The leader's lease and its fence, on a real PostgreSQL (a fresh database per test): one
leader at a time; a leader paused past its lease is replaced and then writes nothing; a killed
leader (its connection gone) is replaced at the next look, not after the lease."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from moorage.master.leadership import Leadership, MasterIdentity
from moorage.store.database import Database
from moorage.store.masters import LeaseLost
from moorage.store.tables import GridRow
from tests.conftest import _db_url


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[Database]:
    if not os.environ.get("MOORAGE_TEST_PG_URL"):
        if os.environ.get("CI"):
            pytest.fail("MOORAGE_TEST_PG_URL is not set; scripts/test starts PostgreSQL and sets it")
        pytest.skip("leases need PostgreSQL: MOORAGE_TEST_PG_URL not set (scripts/test sets it)")
    for url in _db_url("postgresql", tmp_path):
        db = Database(url)
        db.migrate()
        try:
            yield db
        finally:
            db.dispose()


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def gain(self) -> None:
        self.events.append("gain")

    async def loss(self) -> None:
        self.events.append("loss")


def _leadership(db: Database, name: str, ttl: float = 5.0) -> tuple[Leadership, Recorder]:
    seen = Recorder()
    return Leadership(db, MasterIdentity(name=name, url=""), seen.gain, seen.loss, ttl=ttl), seen


def _write_grid(db: Database, lead: Leadership, name: str) -> None:
    """A unit of once-only work: a row written under the fence."""
    with db.fenced(lead.fence).session() as session:
        now = datetime.now(UTC)
        session.add(GridRow(name=name, join_token_hash=f"hash-{name}", created_at=now, updated_at=now))


def _grids(db: Database) -> set[str]:
    with db.session() as session:
        return set(session.scalars(select(GridRow.name)))


def test_one_leader_and_only_its_writes_pass_the_fence(pg: Database) -> None:
    async def scenario() -> None:
        a, a_seen = _leadership(pg, "a")
        b, b_seen = _leadership(pg, "b")
        await a._look()
        await b._look()
        assert (a.is_leader, b.is_leader) == (True, False)
        assert (a_seen.events, b_seen.events) == (["gain"], [])
        await a._look()  # a renews, and sees b now
        assert a.is_leader and a_seen.events == ["gain"]
        assert a.live == b.live == {a.me.id, b.me.id}
        _write_grid(pg, a, "by-a")
        with pytest.raises(LeaseLost):
            _write_grid(pg, b, "by-b")
        assert _grids(pg) == {"by-a"}
        await a.stop()  # releases the lease: b takes it at its next look, no wait for the ttl
        await b._look()
        assert b.is_leader and a_seen.events == ["gain", "loss"] and b_seen.events == ["gain"]
        await b.stop()

    asyncio.run(scenario())


def test_a_paused_leader_is_replaced_after_its_lease_and_then_writes_nothing(pg: Database) -> None:
    async def scenario() -> None:
        a, a_seen = _leadership(pg, "a", ttl=1.0)
        b, _ = _leadership(pg, "b", ttl=1.0)
        await a._look()
        first = a.epoch
        await b._look()
        assert not b.is_leader  # a lives (its connection holds its life lock) and its lease runs
        # a is paused: it does not look again; its connection (and life lock) stays
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while not b.is_leader and loop.time() < deadline:
            await asyncio.sleep(0.2)
            await b._look()
        assert b.is_leader and b.epoch is not None and first is not None and b.epoch > first
        # a wakes up still believing it leads: its write rolls back
        assert a.epoch == first
        with pytest.raises(LeaseLost):
            _write_grid(pg, a, "late-by-a")
        assert "late-by-a" not in _grids(pg)
        await a._look()  # and its next look tells it
        assert not a.is_leader and a_seen.events == ["gain", "loss"]
        _write_grid(pg, b, "by-b")
        assert _grids(pg) == {"by-b"}
        await a.stop()
        await b.stop()

    asyncio.run(scenario())


def test_a_killed_leader_is_replaced_at_the_next_look(pg: Database) -> None:
    async def scenario() -> None:
        a, _ = _leadership(pg, "a", ttl=60.0)  # a lease that would outlive the test
        b, _ = _leadership(pg, "b", ttl=60.0)
        await a._look()
        await b._look()
        assert a.is_leader and not b.is_leader
        a._close()  # the process died: PostgreSQL drops its connection and its life lock
        await b._look()
        assert b.is_leader
        assert b.live == {b.me.id}
        with pytest.raises(LeaseLost):
            _write_grid(pg, a, "by-dead-a")
        a.epoch = None  # (a is dead: nothing of it runs any more)
        await b.stop()
        await a.stop()

    asyncio.run(scenario())


def test_a_leader_whose_lease_ran_out_loses_it_and_gains_it_again_so_its_work_resumes(pg: Database) -> None:
    """Its looks were held up past the lease (a loaded machine) and nobody took it: the fence
    refused its writes meanwhile, so what met the fence stopped for "the next leader". Its next
    look does not quietly renew the lease it lost: it loses, and gains a new epoch at the look
    after, so the gain takes that work up again (the deployer resumes what was left running)."""

    async def scenario() -> None:
        a, seen = _leadership(pg, "a", ttl=1.0)
        await a._look()
        first = a.epoch
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while loop.time() < deadline:  # until the fence says the lease ran out
            try:
                _write_grid(pg, a, f"g{int(loop.time() * 1000)}")
            except LeaseLost:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the lease never ran out")
        await a._look()
        assert not a.is_leader and seen.events == ["gain", "loss"]
        await a._look()
        assert a.is_leader and seen.events == ["gain", "loss", "gain"]
        assert a.epoch is not None and first is not None and a.epoch > first
        _write_grid(pg, a, "after")
        assert "after" in _grids(pg)
        await a.stop()

    asyncio.run(scenario())


def test_the_leaders_sweep_spares_the_nodes_of_a_master_that_started_since_its_look(pg: Database) -> None:
    """The leader marks offline the nodes of masters its last look found gone. A master that
    started after that look is not gone: the nodes that said hello to it stay online (nothing
    would mark them online again while their agents stay connected). One whose row is old is."""
    from sqlalchemy import insert, update

    from moorage.master.peers import Peers
    from moorage.master.wakeups import Wakeups
    from moorage.store.grids import create_grid, get_grid_row
    from moorage.store.masters import register_master
    from moorage.store.tables import MasterRow, NodeRow

    def node_status() -> str:
        with pg.session() as session:
            row = session.get(NodeRow, "n-1")
            assert row is not None
            return row.status

    async def scenario() -> None:
        a, _ = _leadership(pg, "a")
        await a._look()
        assert a.is_leader
        newcomer = "b" * 32
        now = datetime.now(UTC)
        with pg.session() as session:
            create_grid(session, "g")
            register_master(session, newcomer, "b", "http://127.0.0.1:1", "x")  # after a's look
            session.execute(
                insert(NodeRow).values(
                    id="n-1", grid_id=get_grid_row(session, "g").id, name="n-1", status="online",
                    status_since=now, last_seen_at=now, labels={}, info={}, created_at=now,
                    updated_at=now, master_id=newcomer,
                )
            )  # fmt: skip
        peers = Peers(pg, a, Wakeups())
        await peers._refresh()
        assert node_status() == "online", "the newcomer's node is left online"
        with pg.session() as session:  # the newcomer stops beating: its row ages past the window
            session.execute(
                update(MasterRow)
                .where(MasterRow.id == newcomer)
                .values(seen_at=datetime(2020, 1, 1, tzinfo=UTC))
            )
        await peers._refresh()
        assert node_status() == "offline", "a master long silent is gone: its node goes offline"
        await a.stop()

    asyncio.run(scenario())

"""The volume move job's failure paths (``master/volume_moves.py``), on a real SQLite store with
the agents played by the test: each node's Docker volumes are folders (``FolderVolumeData``: real
tar streams, real manifests, labels checked as an engine's are), and the streams the job opens
are answered in memory, so a fault can be put exactly where a test wants it. Whatever fails, the
source's data is unchanged, the instance is on the source as it was (its container back once it
was stopped), the partial copy is removed, the job says what failed; and running the move again
(after a master restart too) starts over cleanly. The same job between real engines:
tests/e2e/test_e2e_volume_move.py."""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import select

from moorage.agent import volume_manifest, volume_stats
from moorage.agent.streams import AgentStreams
from moorage.agent.volume_data import arg_batches
from moorage.master import volume_moves
from moorage.master.deployer import Deployer
from moorage.master.volume_moves import MoveFailed, VolumeMoves
from moorage.master.wakeups import Wakeups
from moorage.model.stack import Mount, MountKind, ServiceSpec, StackSpec, VolumeDecl
from moorage.protocol import StreamEnd, StreamOutput, VolumeOpen
from moorage.stackfile import stack_to_dict
from moorage.store.database import Database
from moorage.store.grids import create_grid, get_grid_row
from moorage.store.nodes import register_node
from moorage.store.stacks import install_stack
from moorage.store.tables import InstanceRow, VolumeMoveRow
from moorage.store.volume_moves import MoveView, move_by_id
from moorage.store.volumes import create_volume
from tests.support.fake_agents import FakeAgents
from tests.support.folder_volume_data import FolderVolumeData
from tests.support.waiting import wait_until

GRID = "g"
NAMES = {"n1": "node-1", "n2": "node-2"}
INFO = {"cpus": 2, "memory": 2**30, "drivers": [{"name": "local", "scope": "local"}]}
DOCKER_NAME = "s.web.data-1"
Hook = Callable[[VolumeOpen], Awaitable[None]]


class _Stream:
    """One volume stream as the job sees a ``RelayStream``: its items, and for a write, the
    writer the input goes to (its end is the writer's outcome)."""

    def __init__(self, peer: str, items: list[StreamOutput | StreamEnd], writer: Any = None) -> None:
        self.peer = SimpleNamespace(name=peer)
        self.items = items
        self.writer = writer

    async def started(self, timeout: float) -> StreamEnd | None:
        return None

    async def next(self) -> StreamOutput | StreamEnd:
        await asyncio.sleep(0)  # a stream's items arrive over time: others may run in between
        return self.items.pop(0)

    def consumed(self, size: int) -> None:
        pass

    async def write_stdin(self, data: bytes) -> bool:
        self.writer.write(data)
        return True

    async def end_stdin(self) -> None:
        try:
            self.writer.finish()
        except ValueError as err:
            self.items.append(StreamEnd(stream="x", error=str(err)))
            return
        self.items.append(StreamEnd(stream="x"))

    def close(self) -> None:
        pass


class _Hub:
    """The agents as a move reaches them (``AgentLinks``: the hub's, and through other masters)."""

    def __init__(self) -> None:
        self.connected = set(NAMES)
        self.connections = {node_id: SimpleNamespace(name=name) for node_id, name in NAMES.items()}
        self.pushes: list[set[str]] = []

    @property
    def hub(self) -> _Hub:
        return self

    def connected_ids(self) -> set[str]:
        return set(self.connected)

    def holds(self, node_id: str) -> bool:
        return node_id in self.connected

    async def push_desired(self, node_ids: Any) -> None:
        self.pushes.append(set(node_ids))


class _Moves(VolumeMoves):
    """The job, with its streams answered by the nodes' folders; ``before[(node id, op)]``: run
    once when the job next opens that stream (a fault, a change, a wait)."""

    def __init__(self, db: Database, hub: _Hub, data: dict[str, FolderVolumeData]) -> None:
        leadership = SimpleNamespace(
            me=SimpleNamespace(id="m1"), solo=True, is_leader=True, fence=lambda s: None
        )
        super().__init__(db, cast(Any, hub), cast(Any, leadership))
        self.data = data
        self.before: dict[tuple[str, str], Hook] = {}
        self.opened: list[tuple[str, str]] = []
        self.requests: list[tuple[str, VolumeOpen]] = []

    async def open(self, node_id: str, request: VolumeOpen) -> Any:
        self.opened.append((NAMES[node_id], request.op))
        self.requests.append((NAMES[node_id], request))
        hook = self.before.pop((NAMES[node_id], request.op), None)
        if hook is not None:
            await hook(request)
        if node_id not in self.hub.connected_ids():
            raise MoveFailed(f"node {NAMES[node_id]} is offline")
        data, name = self.data[node_id], NAMES[node_id]
        try:
            if request.op == "read":
                with data.reading(request.volume, request.paths) as reader:
                    chunks = []
                    while (chunk := reader.next_chunk()) is not None:
                        chunks.append(StreamOutput(stream="x", data=chunk))
                return _Stream(name, [*chunks, StreamEnd(stream="x")])
            if request.op == "write":
                if request.driver is not None:
                    data.ensure_volume(request.volume, request.driver, {}, dict(request.labels))
                return _Stream(name, [], data.writing(request.volume).__enter__())
            result = AgentStreams._volume_result(request, cast(Any, data))
        except ValueError as err:  # the agent ends such a stream before it starts: the job is told so
            raise MoveFailed(f"node {name}: {err}") from err
        return _Stream(name, [StreamOutput(stream="x", data=result), StreamEnd(stream="x")])


@pytest.fixture
def db(tmp_path: Path) -> Database:
    """Service s/web, one instance on node-1 mounting its own volume instance of ``data``
    (instance scope, driver local); node-2 joins after it was placed."""
    database = Database(f"sqlite:///{tmp_path / 'store.db'}")
    database.migrate()
    with database.session() as session:
        create_grid(session, GRID)
        register_node(session, get_grid_row(session, GRID), "n1", "node-1", [], INFO)
        create_volume(session, GRID, name="data", scope="instance", driver="local")
    web = ServiceSpec(
        name="web",
        image="busybox:local",
        command="sleep 3600",
        mounts=(Mount(MountKind.NAMED, target="/data", source="data"),),
    )
    stack = stack_to_dict(StackSpec(name="s", services=(web,), volumes=(VolumeDecl("data", "data"),)))

    async def deploy() -> None:
        wakeups = Wakeups()
        agents = FakeAgents(database, wakeups, GRID, {"n1": "node-1"})
        deployer = Deployer(database, agents, wakeups)
        try:
            with database.session() as session:
                change = install_stack(session, GRID, stack, "", None)
            deployment = await deployer.deploy(GRID, change.service_ids, "g/s")
            while True:  # until the push that gives web-1 its container
                push = await agents.next_push()
                placed = push.instances.get(("web", 1))
                if placed is not None and placed.desired_hash is not None:
                    break
            await agents.report("web", [1])
            await deployer.wait_finished(deployment)
        finally:
            await deployer.stop()

    asyncio.run(deploy())
    with database.session() as session:
        register_node(session, get_grid_row(session, GRID), "n2", "node-2", [], INFO)
    return database


def _folders(tmp_path: Path, **fail_writes: str) -> dict[str, FolderVolumeData]:
    data = {n: FolderVolumeData(tmp_path / n, fail_writes=fail_writes.get(n)) for n in NAMES}
    source = data["n1"].folder(DOCKER_NAME)
    (source / "appendonly.aof").write_bytes(b"SET k v\n" * 500)
    (source / "sub").mkdir()
    (source / "sub" / "a").write_text("a")
    return data


def _instance(db: Database) -> tuple[str | None, bool]:
    """Where web-1 is meant to run, and whether it has its container there."""
    with db.session() as session:
        row = session.scalars(select(InstanceRow)).one()
        return row.node_id, row.container is not None


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 30))


async def _move(moves: _Moves) -> MoveView:
    """Start the move of web-1's volume instance to node-2 and wait for its end."""
    _, view = await moves.start_move(GRID, "data", DOCKER_NAME, "node-2")
    assert view is not None
    await moves.wait(view.id)
    return await moves.db.read(lambda s: move_by_id(s, view.id))


def _source_unchanged(data: dict[str, FolderVolumeData]) -> None:
    source = data["n1"].folder(DOCKER_NAME)
    assert (source / "appendonly.aof").read_bytes() == b"SET k v\n" * 500
    assert (source / "sub" / "a").read_text() == "a"


def test_a_move_that_succeeds_leaves_equal_data_and_the_source_retired(db: Database, tmp_path: Path) -> None:
    """The baseline the failures are told apart from."""
    data = _folders(tmp_path)

    async def scenario() -> None:
        moves = _Moves(db, _Hub(), data)
        done = await _move(moves)
        assert (done.state, done.phase, done.message) == ("succeeded", "done", None)
        source, target = data["n1"].folder(DOCKER_NAME), data["n2"].folder(DOCKER_NAME)
        assert volume_manifest.of_tree(target) == volume_manifest.of_tree(source)
        assert _instance(db) == ("n2", True)

    _run(scenario)


@pytest.mark.parametrize(
    ("fault", "message", "stopped"),
    [
        pytest.param(("node-2", "write", "full"), "writing on node node-2: No space left on device", False,
                     id="target-disk-full-in-the-first-pass"),
        pytest.param(("node-1", "read", "gone"), "node node-1 is offline", False,
                     id="source-agent-gone-before-it-reads"),
        pytest.param(("node-2", "manifest", "gone"), "node node-2 is offline", False,
                     id="target-agent-gone-before-its-manifest"),
        pytest.param(("node-1", "users", "gone"), "node node-1 is offline", True,
                     id="source-agent-gone-while-the-instance-stops"),
        pytest.param(("node-2", "remove_paths", "full"), "node node-2: cannot remove", True,
                     id="target-refuses-the-second-pass"),
    ],
)  # fmt: skip
def test_a_failure_puts_the_instance_back_on_the_source_and_removes_the_partial_copy(
    db: Database, tmp_path: Path, fault: tuple[str, str, str], message: str, stopped: bool
) -> None:
    node, op, kind = fault
    data = _folders(tmp_path)
    hub = _Hub()
    moves = _Moves(db, hub, data)
    node_id = next(i for i, n in NAMES.items() if n == node)

    async def break_it(request: VolumeOpen) -> None:
        if kind == "gone":
            hub.connected.discard(node_id)
        elif op == "write":
            data[node_id].fail_writes = "No space left on device"
        else:
            data[node_id].remove_paths = _refuse  # type: ignore[method-assign]

    async def scenario() -> None:
        moves.before[(node, op)] = break_it
        if op == "remove_paths":  # a second pass has something to remove: a file gone meanwhile
            moves.before[("node-1", "users")] = _delete_on_source(data)
        done = await _move(moves)
        assert (done.state, done.message) == ("failed", message)
        assert (done.stopped_at is not None) is stopped
        assert _instance(db) == ("n1", True), "on the source, with its container"
        hub.connected |= set(NAMES)  # whatever went away comes back: the janitor finishes
        await moves._janitor_once()
        assert not data["n2"].exists(DOCKER_NAME), "no partial copy left on the target"
        with db.session() as session:
            assert session.get(VolumeMoveRow, done.id).cleanup in ("done", "none")
        if op != "remove_paths":
            _source_unchanged(data)

    _run(scenario)


def _refuse(volume: str, paths: Any) -> None:
    raise ValueError("cannot remove")


def _delete_on_source(data: dict[str, FolderVolumeData]) -> Hook:
    async def delete(request: VolumeOpen) -> None:
        (data["n1"].folder(DOCKER_NAME) / "sub" / "a").unlink()

    return delete


def test_a_mismatch_after_the_second_pass_fails_naming_the_path(db: Database, tmp_path: Path) -> None:
    data = _folders(tmp_path)
    moves = _Moves(db, _Hub(), data)

    async def changed_while_running(request: VolumeOpen) -> None:  # the instance wrote while it ran
        (data["n1"].folder(DOCKER_NAME) / "appendonly.aof").write_bytes(b"SET k w\n" * 500)

    async def corrupt(request: VolumeOpen) -> None:  # the target's disk returns other bytes
        if request.paths:
            (data["n2"].folder(DOCKER_NAME) / "appendonly.aof").write_bytes(b"rot")

    async def scenario() -> None:
        moves.before[("node-1", "users")] = changed_while_running
        moves.before[("node-2", "manifest")] = _after_first(moves, ("node-2", "manifest"), corrupt)
        done = await _move(moves)
        assert (done.state, done.message) == ("failed", "manifest mismatch: appendonly.aof")
        assert done.stopped_at is not None
        assert _instance(db) == ("n1", True)
        assert not data["n2"].exists(DOCKER_NAME)
        assert (data["n1"].folder(DOCKER_NAME) / "appendonly.aof").read_bytes() == b"SET k w\n" * 500

    _run(scenario)


def _after_first(moves: _Moves, key: tuple[str, str], hook: Hook) -> Hook:
    """Let the first such open pass; run ``hook`` at the next one."""

    async def first(request: VolumeOpen) -> None:
        moves.before[key] = hook

    return first


def test_a_master_stopping_mid_copy_fails_the_move_and_the_instance_keeps_running(
    db: Database, tmp_path: Path
) -> None:
    data = _folders(tmp_path)
    moves = _Moves(db, _Hub(), data)

    async def scenario() -> None:
        held = asyncio.Event()
        moves.before[("node-1", "read")] = lambda request: _wait_forever(held)
        _, view = await moves.start_move(GRID, "data", DOCKER_NAME, "node-2")
        assert view is not None
        await held.wait()
        await moves.stop()
        done = await db.read(lambda s: move_by_id(s, view.id))
        assert (done.state, done.message) == ("failed", "the master stopped during the move; run it again")
        assert _instance(db) == ("n1", True) and done.stopped_at is None
        _source_unchanged(data)

    _run(scenario)


async def _wait_forever(held: asyncio.Event) -> None:
    held.set()
    await asyncio.Event().wait()


def test_running_a_move_again_after_a_master_restart_starts_over_cleanly(
    db: Database, tmp_path: Path
) -> None:
    """A master killed during the first pass left the move running and a partial copy on the
    target. The next master fails that move at its start; run again at once (before its janitor
    came round), the move first removes the partial copy the failed one made, then succeeds."""
    data = _folders(tmp_path)

    async def scenario() -> None:
        killed = _Moves(db, _Hub(), data)
        held = asyncio.Event()
        killed.before[("node-2", "manifest")] = lambda request: _wait_forever(held)  # after the first pass
        _, first = await killed.start_move(GRID, "data", DOCKER_NAME, "node-2")
        assert first is not None
        await held.wait()
        assert data["n2"].exists(DOCKER_NAME), "a partial copy on the target"
        # killed: its job is left where it was (ended only after the test, by when nothing is left to undo)

        restarted = _Moves(db, _Hub(), data)
        await restarted.start()
        try:
            failed = await db.read(lambda s: move_by_id(s, first.id))
            assert (failed.state, failed.message, failed.cleanup) == (
                "failed",
                "the master that ran the move stopped during it; run it again",
                "pending",
            )
            assert _instance(db) == ("n1", True)
            again = await _move(restarted)
            assert (again.state, again.message) == ("succeeded", None)
            assert restarted.opened.index(("node-2", "drop")) < restarted.opened.index(("node-2", "write"))
            source, target = data["n1"].folder(DOCKER_NAME), data["n2"].folder(DOCKER_NAME)
            assert volume_manifest.of_tree(target) == volume_manifest.of_tree(source)
            assert _instance(db) == ("n2", True)
            with db.session() as session:
                assert session.get(VolumeMoveRow, first.id).cleanup == "done"
        finally:
            await restarted.stop()
            await killed.stop()

    _run(scenario)


def _settled(root: Path) -> None:
    """Wait until every path under ``root`` was last changed more than the quick check's slack
    before now (``volume_stats``: only such paths are trusted unread)."""
    newest = max(p.lstat().st_ctime for p in [root, *root.rglob("*")])
    wait_until(lambda: time.time() >= int(newest) + volume_stats.SLACK_SECONDS + 1, 10, "the files to settle")


def _sync_reads(moves: _Moves) -> list[list[str] | None]:
    """The paths of each source manifest read after the instance stopped (None: the whole volume)."""
    stopped = max(i for i, (node, r) in enumerate(moves.requests) if (node, r.op) == ("node-1", "users"))
    return [r.paths for node, r in moves.requests[stopped:] if (node, r.op) == ("node-1", "manifest")]


def test_the_second_pass_reads_again_only_what_changed_since_the_baseline(
    db: Database, tmp_path: Path
) -> None:
    """Files that settled before the move are not read again once the instance stopped; one the
    instance rewrote while the move ran (same size, its mtime put back: only ctime tells) is
    read again and sent, and the copy ends equal to the source."""
    data = _folders(tmp_path)
    source = data["n1"].folder(DOCKER_NAME)
    for i in range(20):
        (source / "sub" / f"f{i}").write_text(f"file {i}")
    _settled(source)
    moves = _Moves(db, _Hub(), data)

    async def rewrite_keeping_mtime(request: VolumeOpen) -> None:  # the instance wrote as it stopped
        aof = source / "appendonly.aof"
        was = aof.stat()
        aof.write_bytes(b"SET k w\n" * 500)
        os.utime(aof, ns=(was.st_atime_ns, was.st_mtime_ns))

    async def scenario() -> None:
        moves.before[("node-1", "users")] = rewrite_keeping_mtime
        done = await _move(moves)
        assert (done.state, done.message) == ("succeeded", None)
        assert _sync_reads(moves) == [["appendonly.aof"]]
        target = data["n2"].folder(DOCKER_NAME)
        assert (target / "appendonly.aof").read_bytes() == b"SET k w\n" * 500
        assert volume_manifest.of_tree(target) == volume_manifest.of_tree(source)

    _run(scenario)


def test_a_file_changed_between_the_listing_and_the_baseline_read_is_read_again(
    db: Database, tmp_path: Path
) -> None:
    """The baseline's listing came first, its manifest read after: a file rewritten in between
    (its stat in the listing is the old one) is not trusted from that manifest."""
    data = _folders(tmp_path)
    source = data["n1"].folder(DOCKER_NAME)
    _settled(source)
    moves = _Moves(db, _Hub(), data)
    listed = data["n1"].stats

    def listing_then_a_write(volume: str) -> Any:
        found = listed(volume)
        if not (source / "sub" / "b").exists():  # the first listing: the baseline's
            (source / "sub" / "a").write_text("b")
            (source / "sub" / "b").write_text("new")
        return found

    data["n1"].stats = listing_then_a_write  # type: ignore[method-assign]

    async def scenario() -> None:
        done = await _move(moves)
        assert (done.state, done.message) == ("succeeded", None)
        (reads,) = _sync_reads(moves)
        assert reads is not None and {"sub", "sub/a", "sub/b"} <= set(reads) and "appendonly.aof" not in reads
        target = data["n2"].folder(DOCKER_NAME)
        assert (target / "sub" / "a").read_text() == "b"
        assert volume_manifest.of_tree(target) == volume_manifest.of_tree(source)

    _run(scenario)


def test_a_volume_of_a_driver_not_trusted_is_read_whole_in_the_second_pass(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the drivers of ``QUICK_CHECK_DRIVERS`` (``local``) have their ctime trusted: with
    ``local`` not among them, the volume is read whole again once the instance stopped."""
    data = _folders(tmp_path)
    _settled(data["n1"].folder(DOCKER_NAME))
    moves = _Moves(db, _Hub(), data)
    monkeypatch.setattr(volume_stats, "QUICK_CHECK_DRIVERS", frozenset({"rexray/ebs"}))

    async def scenario() -> None:
        done = await _move(moves)
        assert (done.state, done.message) == ("succeeded", None)
        assert _sync_reads(moves) == [None]
        assert ("node-1", "stats") not in moves.opened

    _run(scenario)


def test_changes_that_need_more_than_one_read_make_the_second_pass_read_the_source_whole(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths read again in several batches are each read by a tar of their own on an agent: a
    hardlink group split between two would look like separate files on the source too, and the
    verify could not see the copy lose the link. So with more than one batch the source is read
    whole; a group the sends split is then caught by the verify, and the move fails as it did
    before the quick check: the instance back on the source, nothing switched."""
    data = _folders(tmp_path)
    source = data["n1"].folder(DOCKER_NAME)
    _settled(source)
    monkeypatch.setattr(volume_moves, "arg_batches", functools.partial(arg_batches, most=24))
    moves = _Moves(db, _Hub(), data)

    async def link_while_stopping(request: VolumeOpen) -> None:
        (source / "sub" / "first").write_text("linked")
        os.link(source / "sub" / "first", source / "sub" / "second")

    async def scenario() -> None:
        moves.before[("node-1", "users")] = link_while_stopping
        done = await _move(moves)
        assert _sync_reads(moves) == [None], "read whole"
        assert (done.state, done.message) == ("failed", "manifest mismatch: sub/first")
        assert _instance(db) == ("n1", True)

    _run(scenario)

"""Volume moves: one volume instance's data to another node, its instance with it (a job).

    plan     volume instance, source, target, method (copy | reattach), bytes, files, the
             instances that stop; refused (409) with the nodes that would be allowed
    copy     source agent ── read (tar c) ──▶ master relay ──▶ target agent ── write (tar x)
             while the instance runs on the source (first pass)
    check    the target's manifest (read back from the target); at once, on the source (still
             running), a stat listing and then its manifest: the baseline of the quick check
    stop     the instance's container out of the source's desired state; its agent says no
             container mounts the volume any more
    sync     the source's manifest: a stat listing, and only the paths it does not show unchanged
             since before the baseline read again (``volume_stats``; the whole volume read again
             for drivers other than ``local``, or when a listing is not exact);
             ``volume_manifest.changes`` against the target's: delete and send only those paths
             (second pass: downtime follows what changed, not the volume's size)
    verify   the target's manifest again (what the second pass wrote read back, on top of the
             first read-back), equal to the source's or ``manifest mismatch: <path>``
    switch   one transaction (``store/volume_moves.switch``): the volume instance on the target,
             its instance planned there, the source retired (kept, never deleted by an agent)

A ``zone``/``region``/``grid`` volume moving inside its domain re-attaches: stop, switch, no copy.
Data flows over the agents' own connections through the master (``master/streams.py``, volume
streams: 1 MiB pieces, 8 MiB window), read and written by helper containers
(``agent/volume_data.py``). Any failure (an agent or engine gone, a stream cut, tar failing, a
mismatch, the master stopping) puts the instance back on the source as it was, removes the
partial target (now, or when its node is back), and fails the job with what went wrong; the
source is only ever read. A master that starts fails the moves a previous one left running.
Running a failed move again starts it over cleanly: before it writes, what the failed one left on
the target is removed (``_clear_leftovers``), whether or not the janitor came round yet.

``start_move`` is the service the API (and ``node drain``) calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from moorage.agent import volume_manifest, volume_stats
from moorage.agent.volume_data import arg_batches
from moorage.errors import Conflict, MoorageError
from moorage.master.agent_links import AgentLinks
from moorage.master.leadership import Leadership
from moorage.master.streams import RelayStream
from moorage.model import docker_labels
from moorage.model.volume import VolumeDomain, VolumeScope, VolumeTopology, nodes_in_domain
from moorage.protocol import StreamEnd, VolumeOpen
from moorage.store.database import Database
from moorage.store.volume_moves import (
    Cleanup,
    MoveNode,
    MoveSubject,
    MoveView,
    begin_move,
    cleanup_done,
    fail_move,
    move_by_id,
    move_subject,
    pending_cleanups,
    purge_expired,
    set_progress,
    stop_instances,
    switch,
    unfinished_moves,
)

__all__ = ["DEFAULT_RETENTION", "MoveFailed", "MovePlan", "VolumeMoves"]

log = logging.getLogger("moorage.master.volume_moves")

DEFAULT_RETENTION = timedelta(days=7)
STARTED_TIMEOUT = 60.0  # seconds an agent may take to start a helper (it may pull the image)
STOP_TIMEOUT = 60.0
PROGRESS_EVERY = 0.5
JANITOR_EVERY = 5.0


class MoveFailed(Exception):
    """What went wrong, in the job's words."""


@dataclass(frozen=True, slots=True)
class MovePlan:
    volume: str
    docker_name: str
    source: str
    target: str
    method: str  # copy | reattach
    bytes: int
    files: int
    instances: tuple[str, ...]
    source_zone: str | None
    target_zone: str | None


def _zone(node: MoveNode | None) -> str:
    return f"zone {node.zone}" if node is not None and node.zone else "no zone"


def refusal(subject: MoveSubject, target: MoveNode, why: str, allowed: Iterable[MoveNode]) -> Conflict:
    source = subject.node(subject.node_id)
    names = [n.name for n in allowed]
    return Conflict(
        f"Cannot move volume instance {subject.docker_name} of volume {subject.volume} from node "
        f"{source.name if source else subject.node_id} ({_zone(source)}) to node {target.name} "
        f"({_zone(target)}): {why}. Nodes it may move to: {', '.join(names) if names else 'none'}"
    )


def _plan_method(subject: MoveSubject, target: MoveNode) -> str:
    """copy | reattach, or a ``Conflict`` saying why not and where it could go."""
    if subject.scope != VolumeScope.INSTANCE:
        raise Conflict(
            f"Volume {subject.volume} has scope {subject.scope}: every node has its own volume instance; "
            "only instance-scope volume instances move"
        )
    if subject.companions:
        labels = ", ".join(i.label for i in subject.instances)
        raise Conflict(
            f"Cannot move volume instance {subject.docker_name} of volume {subject.volume}: its instance "
            f"{labels} also mounts volume instance(s) {', '.join(subject.companions)}, which would not move "
            "with it (and would start empty on the new node); a move takes an instance with one "
            "instance-scope volume instance only"
        )
    domain = VolumeDomain(
        VolumeTopology(subject.topology), subject.driver, subject.node_id, subject.zone, subject.region
    )
    usable = [
        n
        for n in subject.nodes
        if n.id != subject.node_id and n.online and not n.drained and subject.driver in n.drivers
    ]
    if subject.topology == VolumeTopology.NODE:
        allowed = [n for n in usable if n.id not in subject.holding]
        method = "copy"
    else:
        allowed = [n for n in nodes_in_domain(domain, usable)]
        method = "reattach"
    if target.id == subject.node_id:
        raise refusal(subject, target, "it is there already", allowed)
    if target.drained:
        raise refusal(subject, target, f"node {target.name} is drained", allowed)
    if not target.online:
        raise refusal(subject, target, _away(target), allowed)
    if subject.driver not in target.drivers:
        raise refusal(subject, target, f"node {target.name} has no volume driver {subject.driver}", allowed)
    if subject.topology != VolumeTopology.NODE and target not in allowed:
        raise refusal(
            subject,
            target,
            f"its volume has topology {subject.topology}: its data can be used only inside its domain",
            allowed,
        )
    if method == "copy" and target.id in subject.holding:
        raise refusal(
            subject,
            target,
            f"node {target.name} holds a Docker volume {subject.docker_name} already (a retired copy? "
            f"'moorage volume purge {subject.volume} {subject.docker_name}' removes it)",
            allowed,
        )
    if subject.move_id is not None:
        raise Conflict(
            f"Volume instance {subject.docker_name} is being moved already (move {subject.move_id})"
        )
    return method


class VolumeMoves:
    """The master's volume moves (see the module)."""

    def __init__(
        self,
        db: Database,
        links: AgentLinks,
        leadership: Leadership,
        retention: timedelta = DEFAULT_RETENTION,
    ) -> None:
        self.db = db
        self.links = links  # the agents, connected here or through their master
        self.hub = links.hub
        self.leadership = leadership  # the leader purges expired copies, fails the moves of gone masters
        self.retention = retention
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._janitor: asyncio.Task[None] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        if self.leadership.solo:  # one master on its SQLite file: every running move was its own
            await self._fail(await self.db.run(unfinished_moves), self.db)
        self._janitor = asyncio.create_task(self._janitor_loop(), name="volume-move-janitor")

    async def stop(self) -> None:
        tasks = [*self._tasks.values(), *([self._janitor] if self._janitor else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def fail_orphans(self, live: set[str]) -> None:
        """(The leader, after each look at the masters) fail the moves of masters that are gone:
        their data flowed over those masters' connections."""
        fenced = self.db.fenced(self.leadership.fence)
        await self._fail(await self.db.read(lambda s: unfinished_moves(s, live=live)), fenced)

    async def _fail(self, move_ids: list[str], db: Database) -> None:
        for move_id in move_ids:
            nodes = await db.run(
                lambda s, m=move_id: fail_move(  # type: ignore[misc]
                    s, m, "the master that ran the move stopped during it; run it again", cleanup=True
                )
            )
            log.info("move %s failed: the master that ran it stopped during it", move_id)
            await self.hub.push_desired(nodes)

    async def wait(self, move_id: str) -> None:
        task = self._tasks.get(move_id)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.shield(task)

    # -- the service -------------------------------------------------------------------------

    async def start_move(
        self,
        grid: str,
        volume: str,
        docker_name: str,
        to: str,
        *,
        dry_run: bool = False,
        turns: asyncio.Semaphore | None = None,
    ) -> tuple[MovePlan, MoveView | None]:
        """Plan the move (``Conflict`` with the allowed nodes if it may not go there); unless
        ``dry_run``, start it: the job's view, running. ``turns``: the job waits for one (phase
        ``queued``) before it copies anything (a drain's moves, a few at a time); it holds the
        volume instance meanwhile, so nothing else moves it."""
        subject = await self.db.read(lambda s: move_subject(s, grid, volume, docker_name))
        target = subject.named(to)
        if target is None:
            from moorage.errors import NotFound

            raise NotFound(f"Node {to} not found in grid {grid}")
        online = {n.id for n in subject.nodes if self.links.holds(n.id)}
        subject = _with_online(subject, online)
        target = subject.named(to)
        assert target is not None
        method = _plan_method(subject, target)
        source = subject.node(subject.node_id)
        bytes_total = files = 0
        if method == "copy":
            if source is None or not source.online:
                why = _away(source) if source is not None else "its node is gone"
                raise refusal(subject, target, f"{why}, so its data cannot be read", [])
            try:
                usage = json.loads(
                    await self._result(
                        subject.node_id, VolumeOpen(stream="x", op="usage", volume=docker_name)
                    )
                )
            except MoveFailed as err:  # its agent went away, or cannot read it: nothing was started
                raise Conflict(
                    f"Cannot move volume instance {docker_name} of volume {volume} from node "
                    f"{source.name}: its data could not be sized there ({err}); nothing was started"
                ) from err
            bytes_total, files = int(usage["bytes"]), int(usage["files"])
        plan = MovePlan(
            volume=volume,
            docker_name=docker_name,
            source=source.name if source else subject.node_id,
            target=target.name,
            method=method,
            bytes=bytes_total,
            files=files,
            instances=tuple(i.label for i in subject.instances),
            source_zone=source.zone if source else None,
            target_zone=target.zone,
        )
        if dry_run:
            return plan, None
        if method == "copy":
            await self._clear_leftovers(subject, target)
        me = self.leadership.me.id
        phase = "plan" if turns is None else "queued"
        move_id = await self.db.run(
            lambda s: begin_move(s, subject, target, method, bytes_total, files, me, phase)
        )
        task = asyncio.create_task(self._run(move_id, subject, target, turns), name=f"move-{move_id}")
        self._tasks[move_id] = task

        def forget(_: asyncio.Task[None]) -> None:
            self._tasks.pop(move_id, None)

        task.add_done_callback(forget)
        view = await self.db.read(lambda s: move_by_id(s, move_id))
        return plan, view

    # -- the job -----------------------------------------------------------------------------

    async def _run(
        self, move_id: str, subject: MoveSubject, target: MoveNode, turns: asyncio.Semaphore | None
    ) -> None:
        job = _Job(self, move_id, subject, target)
        try:
            if turns is None:
                await job.run()
            else:
                async with turns:
                    await job.run()
        except asyncio.CancelledError:
            await asyncio.shield(job.fail("the master stopped during the move; run it again"))
            raise
        except MoveFailed as err:
            await job.fail(str(err))
        except MoorageError as err:
            await job.fail(err.message)
        except Exception as err:  # a bug must still leave the instance running on the source
            log.exception("move %s failed", move_id)
            await job.fail(f"{type(err).__name__}: {err}")

    async def open(self, node_id: str, request: VolumeOpen) -> RelayStream:
        try:
            conn = await self.links.reach(node_id)
        except Conflict as err:  # its master would not or could not link to it
            raise MoveFailed(err.message) from err
        if conn is None:
            raise MoveFailed(f"node {self._name(node_id)} is offline")
        stream = await self.hub.relay.open(conn, request)
        try:
            refused = await stream.started(STARTED_TIMEOUT)
        except BaseException:  # cancelled: the agent is told to let go of it
            stream.close()
            raise
        if refused is not None:
            raise MoveFailed(f"node {conn.name}: {refused.error or 'the agent refused'}")
        return stream

    def _name(self, node_id: str) -> str:
        conn = self.hub.connections.get(node_id)
        return conn.name if conn is not None else node_id

    async def _result(self, node_id: str, request: VolumeOpen) -> bytes:
        """Run a volume op that answers with one result (manifest, usage, users, ...)."""
        stream = await self.open(node_id, request)
        out = bytearray()
        try:
            while True:
                item = await stream.next()
                if isinstance(item, StreamEnd):
                    if item.error:
                        raise MoveFailed(f"node {stream.peer.name}: {item.error}")
                    return bytes(out)
                out += item.data
                stream.consumed(len(item.data))
        finally:
            stream.close()

    async def _janitor_loop(self) -> None:
        """Remove the partial copies failed moves left on nodes that were away; purge retired
        copies past the retention period."""
        while True:
            await asyncio.sleep(JANITOR_EVERY)
            try:
                await self._janitor_once()
            except Exception as err:  # the next round tries again
                log.warning("volume move janitor: %s: %s", type(err).__name__, err)

    async def _janitor_once(self) -> None:
        for cleanup in await self.db.read(pending_cleanups):
            if self.links.holds(cleanup.node_id):
                await self._remove_partial(cleanup)
        if not self.leadership.is_leader:
            return  # the leader purges what is past the retention period
        before = datetime.now(UTC) - self.retention
        nodes = await self.db.fenced(self.leadership.fence).run(lambda s: purge_expired(s, before))
        if nodes:
            await self.hub.push_desired(nodes)

    async def _remove_partial(self, cleanup: Cleanup) -> str | None:
        """Remove the partial copy a failed move left (only the Docker volume labelled with that
        move: the agent leaves any other alone); None once removed, else why not."""
        request = VolumeOpen(
            stream="x",
            op="drop",
            volume=cleanup.docker_name,
            labels={docker_labels.MOVE: cleanup.move_id},
        )
        try:
            await self._result(cleanup.node_id, request)
        except MoveFailed as err:
            log.info("partial copy of move %s not removed yet: %s", cleanup.move_id, err)
            return str(err)
        await self.db.run(lambda s: cleanup_done(s, cleanup.move_id))
        log.info("removed the partial copy %s of move %s", cleanup.docker_name, cleanup.move_id)
        return None

    async def _clear_leftovers(self, subject: MoveSubject, target: MoveNode) -> None:
        """Before a move writes to ``target``: remove what an earlier, failed move of this volume
        instance left there (a master restart fails a move; the janitor may not have come round
        yet), so running the move again starts cleanly instead of meeting a Docker volume it
        did not make. A 409 when it cannot be removed now; nothing was started."""
        for cleanup in await self.db.read(pending_cleanups):
            if cleanup.node_id != target.id or cleanup.docker_name != subject.docker_name:
                continue
            why = await self._remove_partial(cleanup)
            if why is not None:
                raise Conflict(
                    f"Node {target.name} still holds the partial copy {subject.docker_name} of failed move "
                    f"{cleanup.move_id}, and it could not be removed now ({why}); try again"
                )


def _with_online(subject: MoveSubject, online: set[str]) -> MoveSubject:
    """Nodes are online when their agent can be reached: connected to this master, or through a
    link to the live master that holds it (the data flows over it)."""
    from dataclasses import replace

    nodes = (
        replace(n, online=n.id in online, elsewhere=n.online and n.id not in online) for n in subject.nodes
    )
    return replace(subject, nodes=tuple(nodes))


def _away(node: MoveNode) -> str:
    if node.elsewhere:
        return (
            f"node {node.name} is online under a master this one does not know as live yet (it "
            "started or stopped just now), so its agent cannot be reached: try again in a few seconds"
        )
    return f"node {node.name} is offline"


@dataclass(frozen=True)
class _Baseline:
    """The source's stat listing and the manifest read just after it, while the instance ran."""

    listing: volume_stats.Listing
    manifest: volume_manifest.Manifest


def _utf8(paths: Iterable[str]) -> bool:
    try:
        for path in paths:
            path.encode()
    except UnicodeEncodeError:
        return False
    return True


class _Job:
    """One running move (see the module); ``fail`` undoes what it did."""

    def __init__(self, moves: VolumeMoves, move_id: str, subject: MoveSubject, target: MoveNode) -> None:
        self.moves = moves
        self.db = moves.db
        self.id = move_id
        self.subject = subject
        self.source_id = subject.node_id
        self.target = target
        self.name = subject.docker_name
        self.done = 0
        self.phase = "plan"
        self.made_target = False
        self._saved = 0.0

    @property
    def labels(self) -> dict[str, str]:
        return {
            docker_labels.GRID: self.subject.grid,
            docker_labels.VOLUME: f"{self.subject.grid}/{self.subject.volume}",
            docker_labels.VOLUME_INSTANCE: self.subject.volume_instance_id,
            docker_labels.MOVE: self.id,
        }

    async def progress(self, phase: str, *, force: bool = True, total: int | None = None) -> None:
        self.phase = phase
        now = time.monotonic()
        if not force and now - self._saved < PROGRESS_EVERY:
            return
        self._saved = now
        done = self.done
        await self.db.run(lambda s: set_progress(s, self.id, phase, done, total))

    async def run(self) -> None:
        if self.subject.topology != VolumeTopology.NODE:  # re-attach inside its domain
            await self.stop()
            await self.switch()
            return
        await self.progress("copy")
        self.made_target = True
        await self.copy(None)
        await self.progress("check")
        copy, baseline = await asyncio.gather(self.manifest(self.target.id), self.baseline())
        await self.stop()
        await self.progress("sync")
        source = await self.source_manifest(baseline)
        todo = volume_manifest.changes(source, copy)
        total, _ = volume_manifest.summary(source)
        if todo.remove:
            for batch in arg_batches(todo.remove):
                await self.moves._result(
                    self.target.id,
                    VolumeOpen(
                        stream="x",
                        op="remove_paths",
                        volume=self.name,
                        paths=[a.removeprefix("./") for a in batch],
                    ),
                )
        for batch in arg_batches(todo.send):
            await self.copy([a.removeprefix("./") for a in batch])
        await self.progress("verify", total=max(total, self.done))
        # the target was read back whole after the first pass; only what changed is read again
        sent: volume_manifest.Manifest = {}
        for batch in arg_batches(todo.send):
            sent.update(await self.manifest(self.target.id, [a.removeprefix("./") for a in batch]))
        final = volume_manifest.after_changes(copy, todo, sent)
        wrong = volume_manifest.first_difference(source, final)
        if wrong is not None:
            raise MoveFailed(f"manifest mismatch: {wrong}")
        await self.switch()

    async def manifest(self, node_id: str, paths: list[str] | None = None) -> volume_manifest.Manifest:
        data = await self.moves._result(
            node_id, VolumeOpen(stream="x", op="manifest", volume=self.name, paths=paths)
        )
        try:
            return volume_manifest.from_json(data)
        except ValueError as err:
            raise MoveFailed(f"node {self.moves._name(node_id)} sent a bad manifest: {err}") from err

    async def baseline(self) -> _Baseline | None:
        """While the instance runs: the source's stat listing, then its manifest (see ``sync``)."""
        if self.subject.driver not in volume_stats.QUICK_CHECK_DRIVERS:
            return None
        listing = await self.stats(self.source_id)
        if listing is None:
            return None
        return _Baseline(listing, await self.manifest(self.source_id))

    async def source_manifest(self, baseline: _Baseline | None) -> volume_manifest.Manifest:
        """The stopped source's manifest: what the baseline shows unchanged, and the rest read."""
        now = await self.stats(self.source_id) if baseline is not None else None
        if baseline is None or now is None:
            return await self.manifest(self.source_id)
        kept, again = volume_stats.trusted_manifest(baseline.listing, baseline.manifest, now)
        batches = list(arg_batches(again))
        # read whole: names a helper's command line cannot carry exactly, or more than one batch
        # (a hardlink group split between two reads would look like separate files in both)
        if not _utf8(again) or len(batches) > 1:
            return await self.manifest(self.source_id)
        for batch in batches:
            kept.update(await self.manifest(self.source_id, [a.removeprefix("./") for a in batch]))
        log.info("move %s: %d of %d paths read again", self.id, len(again), len(now.paths))
        return kept

    async def stats(self, node_id: str) -> volume_stats.Listing | None:
        data = await self.moves._result(node_id, VolumeOpen(stream="x", op="stats", volume=self.name))
        try:
            listing, why = volume_stats.from_json(data)
        except ValueError as err:
            raise MoveFailed(f"node {self.moves._name(node_id)} sent a bad listing: {err}") from err
        if listing is None:
            log.info("move %s: %s is read whole: %s", self.id, self.name, why)
        return listing

    async def copy(self, paths: list[str] | None) -> None:
        """Source's data (all, or ``paths``) into the target's Docker volume, through the master."""
        # both helpers start at once (each agent starts its own): the copy waits for one, not two
        opening = [
            asyncio.ensure_future(
                self.moves.open(
                    self.source_id, VolumeOpen(stream="x", op="read", volume=self.name, paths=paths)
                )
            ),
            asyncio.ensure_future(
                self.moves.open(
                    self.target.id,
                    VolumeOpen(
                        stream="x",
                        op="write",
                        volume=self.name,
                        driver=self.subject.driver,
                        driver_opts={str(k): str(v) for k, v in self.subject.driver_opts.items()},
                        labels=self.labels,
                    ),
                )
            ),
        ]
        try:
            reader, writer = await asyncio.gather(*opening)
        except BaseException:
            for task in opening:  # the other one, if it opened (or still opens), is let go
                task.cancel()
            for task in opening:
                with contextlib.suppress(BaseException):
                    (await task).close()
            raise
        try:
            await self._pipe(reader, writer)
        finally:
            reader.close()
            writer.close()

    async def _pipe(self, reader: RelayStream, writer: RelayStream) -> None:
        source, target = reader.peer.name, writer.peer.name
        while True:
            item = await reader.next()
            if isinstance(item, StreamEnd):
                if item.error:
                    raise MoveFailed(f"reading on node {source}: {item.error}")
                break
            if not await writer.write_stdin(item.data):
                end = await _end_of(writer)
                raise MoveFailed(f"writing on node {target}: {end or 'the stream ended'}")
            reader.consumed(len(item.data))
            self.done += len(item.data)
            await self.progress(self.phase, force=False)
        await writer.end_stdin()
        end = await _end_of(writer)
        if end is not None:
            raise MoveFailed(f"writing on node {target}: {end}")

    async def stop(self) -> None:
        """The instance's container out of the source's desired state, and gone from its engine."""
        nodes = await self.db.run(lambda s: stop_instances(s, self.id))
        self.phase = "stop"
        await self.moves.hub.push_desired(nodes)
        deadline = time.monotonic() + STOP_TIMEOUT
        while True:
            users = json.loads(
                await self.moves._result(self.source_id, VolumeOpen(stream="x", op="users", volume=self.name))
            )
            if not users:
                return
            if time.monotonic() > deadline:
                raise MoveFailed(f"container {users[0]} still mounts {self.name} after {STOP_TIMEOUT:.0f} s")
            await asyncio.sleep(0.2)

    async def switch(self) -> None:
        await self.progress("switch")
        target = self.subject.node(self.target.id) or self.target
        nodes = await self.db.run(
            lambda s: switch(s, self.id, target.labels.get("zone"), target.labels.get("region"))
        )
        self.made_target = False
        await self.moves.hub.push_desired(nodes)
        log.info("move %s: %s is on node %s", self.id, self.name, self.target.name)

    async def fail(self, message: str) -> None:
        log.info("move %s failed: %s", self.id, message)
        cleanup = self.made_target
        nodes = await self.db.run(lambda s: fail_move(s, self.id, message, cleanup=cleanup))
        await self.moves.hub.push_desired(nodes)
        if cleanup:
            with contextlib.suppress(Exception):  # else the janitor removes it once the node is back
                await self.moves._janitor_once()


async def _end_of(stream: RelayStream) -> str | None:
    """Read a write stream to its end: its error, if any."""
    while True:
        item = await stream.next()
        if isinstance(item, StreamEnd):
            return item.error
        stream.consumed(len(item.data))

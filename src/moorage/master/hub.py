"""The agent hub: every agent's WebSocket, its heartbeats, and node status transitions.

An agent dials in to ``/v1/agent`` with its grid's join token and says ``hello``; the hub registers
the node (online) and answers ``welcome``. Heartbeats only touch memory. A node goes ``offline``
when its connection closes or when ``missed_heartbeats`` intervals pass without a word; only
the master's own listening counts (``silent``): a message still being handled, or a stretch in
which the master's loop did not run, is never a node's silence. Only transitions are written to
the store. The logs and exec streams over these connections are the ``relay``'s
(``moorage.master.streams``); a connection that ends ends its streams. Other masters reach these
agents over links (``links``, ``master/agent_links.py``): what an agent says on a link's streams
and jobs goes there, not to this master's relay and jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from anyio import to_thread
from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from moorage.errors import MoorageError
from moorage.master.admission import AgentAdmission, admit_agent
from moorage.master.agent_links import AWAY, REFUSED, LinkedAgents, key_matches
from moorage.master.desired import desired_for_node
from moorage.master.settings import MasterSettings
from moorage.master.socket_close import close_socket
from moorage.master.streams import AGENT_STREAM_MESSAGES, StreamRelay
from moorage.model.node import NodeStatus
from moorage.protocol import (
    BACKUP_AGENT_MESSAGES,
    Desired,
    ErrorMsg,
    Heartbeat,
    Hello,
    InfoMsg,
    JobDone,
    JobProgress,
    StatusMsg,
    Welcome,
    agent_data_frame,
    agent_message,
    validation_problem,
)
from moorage.store.database import Database
from moorage.store.grids import grid_by_id
from moorage.store.instances import apply_docker_volumes, apply_instance_status, apply_volume_status
from moorage.store.masters import link_key_of
from moorage.store.nodes import register_node, set_info, set_status
from moorage.store.volume_moves import retired_removed

__all__ = ["AgentConnection", "AgentHub", "PeerError"]

log = logging.getLogger("moorage.master.hub")

HELLO_TIMEOUT = 15.0
HEARTBEAT = Heartbeat().model_dump_json()  # what agents send every interval, byte for byte


class PeerError(Exception):
    """The agent broke the protocol or may not do what it asked: close with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def _peer(websocket: WebSocket) -> str:
    client = websocket.client
    return f"{client.host}:{client.port}" if client is not None else "an unknown address"


async def _refuse(websocket: WebSocket, code: int, reason: str) -> None:
    """Tell the agent why in an ``error`` message (the agent prints it), then close with it."""
    with contextlib.suppress(Exception):
        await websocket.send_text(ErrorMsg(message=reason).model_dump_json())
    await close_socket(websocket, code, reason)


async def _receive(websocket: WebSocket, *, binary: bool = False) -> str | bytes:
    """The next frame: JSON text, or (``binary``: the agent asked for data frames) bytes."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is not None:
        return str(text)
    data = message.get("bytes")
    if binary and data is not None:
        return bytes(data)
    raise PeerError(
        1003,
        "Binary frames are not part of the agent protocol unless the hello asks for them: send JSON text",
    )


@dataclass(eq=False)
class AgentConnection:
    node_id: str
    name: str
    grid: str
    websocket: WebSocket
    by_join_token: bool = False  # admitted by the grid's join token, not the node's own credential
    binary_data: bool = False  # stream data goes both ways as binary frames (``protocol``, "data frames")
    last_seen: float = field(default_factory=time.monotonic)
    last_seen_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    handling: bool = False  # a message of it is being handled: what follows waits to be read

    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> None:
        async with self.send_lock:
            await self.websocket.send_text(text)

    async def send_data(self, frame: bytes) -> None:
        """A binary data frame (only to an agent with ``binary_data``)."""
        async with self.send_lock:
            await self.websocket.send_bytes(frame)

    def touch(self) -> None:
        self.last_seen = time.monotonic()
        self.last_seen_at = datetime.now(UTC)


def silent(connections: Iterable[AgentConnection], deadline: float) -> list[AgentConnection]:
    """The connections not heard from since ``deadline`` (monotonic seconds). One whose message is
    still being handled is not silent: its later messages (heartbeats among them) wait unread behind
    that message, however long the store takes."""
    return [c for c in connections if not c.handling and c.last_seen < deadline]


def credit_stall(connections: Iterable[AgentConnection], stalled: float) -> None:
    """The master's loop did not run for ``stalled`` seconds (a loaded machine, a long pause): it
    was not listening, so that time is no node's silence."""
    for conn in connections:
        conn.last_seen += stalled


class AgentHub:
    """``on_status``: agents reported a change (or a node went away), rollouts look again.
    ``on_nodes_changed``: a node came online or changed, or a Docker volume was removed, so
    instances waiting for a node may place. ``app.py`` passes the deployer's ``Wakeups`` (through
    ``master/peers.py``, which tells the other masters too). ``master_id``: this master, recorded
    as each node's; ``push_elsewhere``: the node ids a push named that are not connected here
    (another master may hold their agents)."""

    def __init__(
        self,
        db: Database,
        settings: MasterSettings,
        on_status: Callable[[], Awaitable[None]],
        on_nodes_changed: Callable[[], None],
        master_id: str | None = None,
        push_elsewhere: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.db = db
        self.master_id = master_id
        self._push_elsewhere = push_elsewhere
        self.settings = settings
        self.connections: dict[str, AgentConnection] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._on_status = on_status
        self._on_nodes_changed = on_nodes_changed
        self._seq = 0  # numbers every desired state sent (Desired.seq)
        self._pushed: dict[str, int] = {}  # node id -> seq of the last desired state sent to it
        self._answered: dict[str, int] = {}  # node id -> seq its last status report answered
        self.relay = StreamRelay()  # logs and exec streams over these connections
        self.links = LinkedAgents()  # other masters' links to these agents
        # backup jobs' messages and lost connections (master/backups.py; set by app.py)
        self.job_messages: Callable[[str, JobProgress | JobDone], Awaitable[None]] | None = None
        self.jobs_lost: Callable[[str, str], Awaitable[None]] | None = None

    def is_connected(self, node_id: str) -> bool:
        return node_id in self.connections

    def reported_since_push(self, node_id: str) -> bool:
        """Whether the node's last status report was made after the last desired state sent to it
        (its agent converged on that state, retrying what had failed, and then reported)."""
        return self._answered.get(node_id, 0) >= self._pushed.get(node_id, 0)

    def connected_ids(self) -> set[str]:
        return set(self.connections)

    def last_pushed(self, node_id: str) -> int:
        """The seq of the last desired state sent to the node (0: none)."""
        return self._pushed.get(node_id, 0)

    def answered(self, node_id: str, seq: int) -> bool:
        """Whether the node reported on the desired state ``seq`` (or a later one)."""
        return self._answered.get(node_id, 0) >= seq

    async def _wake(self) -> None:
        await self._on_status()

    def _nodes_changed(self) -> None:
        self._on_nodes_changed()

    async def push_desired(self, node_ids: Iterable[str]) -> None:
        """Send each connected node among ``node_ids`` its whole desired state (the others go to
        ``push_elsewhere``)."""
        wanted = sorted(set(node_ids))
        away = [node_id for node_id in wanted if node_id not in self.connections]
        if away and self._push_elsewhere is not None:
            self._push_elsewhere(away)
        for node_id in wanted:
            conn = self.connections.get(node_id)
            if conn is None:
                continue
            desired = await to_thread.run_sync(self._desired, conn.node_id, conn.grid)
            self._seq += 1
            self._pushed[node_id] = self._seq
            payload = desired.model_copy(
                update={"seq": self._seq}
            ).model_dump_json()  # outside the try: a bug here must not pass for a lost link
            try:
                await conn.send(payload)
            except Exception as err:  # the connection is going away; it gets the state on reconnect
                log.info("could not send desired state to %s: %s", conn.name, err)

    async def start(self) -> None:
        self._monitor = asyncio.create_task(self._watch_heartbeats(), name="heartbeat-monitor")

    async def stop(self) -> None:
        await self.relay.stop()
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await conn.websocket.close(code=1001)

    async def serve(self, websocket: WebSocket, token: str | None) -> None:
        """Run one agent's connection from handshake to close.

        Whatever the peer does (no hello, binary frames, garbage, a close at any point, a hello
        for a node it may not speak for) ends in a close with a reason and one log line."""
        peer = _peer(websocket)
        try:
            admission = await to_thread.run_sync(self._admit, token)
        except SQLAlchemyError as err:
            log.warning("agent connection from %s refused: the store failed: %s", peer, err)
            admission = None
        if admission is None:
            # Refuse the handshake: the agent sees HTTP 403 and says the token is wrong.
            await websocket.close(code=1008, reason="join token not accepted")
            return
        await websocket.accept()
        conn: AgentConnection | None = None
        try:
            hello = await asyncio.wait_for(self._receive_hello(websocket), HELLO_TIMEOUT)
            conn = await self._welcome(websocket, admission, hello)
            await self._receive_loop(conn)
        except WebSocketDisconnect:
            pass
        except TimeoutError:
            await close_socket(websocket, 1008, f"no hello within {HELLO_TIMEOUT:.0f}s")
            log.info("agent connection from %s closed: no hello within %.0fs", peer, HELLO_TIMEOUT)
        except PeerError as err:
            await _refuse(websocket, err.code, err.reason)
            who = f"node {conn.name} ({conn.node_id})" if conn is not None else f"agent at {peer}"
            log.info("%s refused: %s", who, err.reason)
        except Exception as err:  # never an ASGI traceback for what a peer does; one line instead
            who = f"node {conn.name} ({conn.node_id})" if conn is not None else f"agent at {peer}"
            log.warning("connection of %s ended: %s: %s", who, type(err).__name__, err)
            await close_socket(websocket, 1011, "the master ended this connection; the agent reconnects")
        finally:
            if conn is not None:
                self.relay.connection_lost(conn)
                self.links.connection_lost(conn, f"the connection of node {conn.name} to this master ended")
            if conn is not None and self.connections.get(conn.node_id) is conn:
                del self.connections[conn.node_id]
                await to_thread.run_sync(
                    self._set_status,
                    conn.node_id,
                    NodeStatus.OFFLINE,
                    conn.last_seen_at,
                    "its connection closed",
                )
                log.info("node %s (%s) offline: connection closed", conn.name, conn.node_id)
                await self._lost_jobs(conn)
                await self._wake()

    async def serve_link(
        self, websocket: WebSocket, node_id: str, master_id: str | None, key: str | None
    ) -> None:
        """Another master's link to the agent of ``node_id`` (``master/agent_links.py``): only a
        live master of this store with its own key; a node whose agent is not connected here is
        refused with the reason, after the handshake (so the other master can say it)."""
        try:
            found = await to_thread.run_sync(self._link_key, master_id or "")
        except SQLAlchemyError as err:
            log.warning("link from master %s refused: the store failed: %s", master_id, err)
            found = None
        if found is None or master_id == self.master_id or not key_matches(key, found[1]):
            await websocket.close(code=REFUSED, reason="not a live master of this store, or not its key")
            return
        await websocket.accept()
        conn = self.connections.get(node_id)
        if conn is None:
            await close_socket(websocket, AWAY, f"node {node_id}'s agent is not connected to this master")
            return
        await self.links.serve(websocket, conn, found[0])

    async def _welcome(
        self, websocket: WebSocket, admission: AgentAdmission, hello: Hello
    ) -> AgentConnection:
        """Register the node the hello names (if this connection may speak for it), then welcome it.
        A refused hello leaves the node's existing connection alone."""
        try:
            credential = await to_thread.run_sync(self._register, admission, hello)
        except MoorageError as err:
            raise PeerError(1008, err.message) from err
        except SQLAlchemyError as err:
            log.warning("could not register node %s (%s): %s", hello.name, hello.node_id, err)
            raise PeerError(
                1013, "The master could not register this node just now; the agent retries"
            ) from err
        conn = AgentConnection(
            node_id=hello.node_id,
            name=hello.name,
            grid=admission.grid,
            websocket=websocket,
            by_join_token=admission.by_join_token,
            binary_data=hello.binary_data,
        )
        previous = self.connections.get(hello.node_id)
        self.connections[hello.node_id] = conn
        if previous is not None:
            await close_socket(previous.websocket, 1000, "replaced by a new connection")
        log.info("node %s (%s) online in grid %s", hello.name, hello.node_id, admission.grid)
        welcome = Welcome(
            node_id=hello.node_id,
            name=hello.name,
            grid=admission.grid,
            heartbeat_interval=self.settings.heartbeat_interval,
            credential=credential,
            binary_data=hello.binary_data,
        )
        await conn.send(welcome.model_dump_json())
        await self.push_desired([conn.node_id])
        self._nodes_changed()
        return conn

    async def drop_join_admitted(self, grid: str) -> int:
        """The grid's join token was rotated: close the connections it admitted (a node that got its
        credential reconnects with that at once). Returns how many were closed."""
        dropped = [c for c in self.connections.values() if c.grid == grid and c.by_join_token]
        for conn in dropped:
            log.info("node %s (%s): join token rotated, closing its connection", conn.name, conn.node_id)
            await close_socket(
                conn.websocket, 1008, "the grid's join token was rotated; reconnect with the node credential"
            )
        return len(dropped)

    async def _receive_hello(self, websocket: WebSocket) -> Hello:
        raw = await _receive(websocket)
        try:
            msg = agent_message(raw)
        except ValidationError as err:
            raise PeerError(1008, f"Bad hello: {validation_problem(err)}") from err
        if not isinstance(msg, Hello):
            raise PeerError(1008, "First message must be hello")
        return msg

    async def _receive_loop(self, conn: AgentConnection) -> None:
        while True:
            raw = await _receive(conn.websocket, binary=conn.binary_data)
            conn.touch()
            if raw == HEARTBEAT:  # most messages: nothing to parse, nothing to store
                continue
            if isinstance(raw, bytes):  # a stream's data: relayed at once, nothing awaited
                try:
                    output = agent_data_frame(raw)
                except ValueError as err:
                    raise PeerError(1003, f"Bad data frame: {err}") from err
                if not self.links.take(conn, output, raw):
                    self.relay.from_agent(conn, output)
                continue
            conn.handling = True
            try:
                await self._handle(conn, raw)
            finally:
                conn.handling = False
                conn.touch()

    async def _handle(self, conn: AgentConnection, raw: str) -> None:
        """One JSON message of an agent (it may wait on the store)."""
        try:
            msg = agent_message(raw)
        except ValidationError as err:
            log.warning(
                "node %s sent a message the master does not understand: %s",
                conn.name,
                validation_problem(err),
            )
            return
        if isinstance(msg, Heartbeat):
            return
        if isinstance(msg, AGENT_STREAM_MESSAGES):
            if not self.links.take(conn, msg, raw):
                self.relay.from_agent(conn, msg)
        elif isinstance(msg, BACKUP_AGENT_MESSAGES):
            if not self.links.take(conn, msg, raw):
                await self._job_message(conn, msg)
        elif isinstance(msg, Hello):
            log.warning("node %s said hello twice; ignored", conn.name)
        elif isinstance(msg, InfoMsg):
            await to_thread.run_sync(self._set_info, conn.node_id, msg)
            self._nodes_changed()  # drivers or resources may have changed
        elif isinstance(msg, StatusMsg):
            await self._status_report(conn, msg)

    async def _status_report(self, conn: AgentConnection, msg: StatusMsg) -> None:
        changed, purged = await to_thread.run_sync(self._set_status_report, conn.node_id, msg)
        answers = self._answer(conn.node_id, msg.desired_seq)
        if purged:  # retired copies it deleted: its next convergences must not look for them
            await self.push_desired([conn.node_id])
        if changed or answers:
            await self._wake()
        if any(v.state == "removed" for v in msg.volumes):
            self._nodes_changed()  # the Docker volume name is free on this node again

    async def _job_message(self, conn: AgentConnection, msg: JobProgress | JobDone) -> None:
        if self.job_messages is not None:
            await self.job_messages(conn.node_id, msg)

    async def _lost_jobs(self, conn: AgentConnection) -> None:
        if self.jobs_lost is not None:
            try:
                await self.jobs_lost(conn.node_id, conn.name)
            except Exception as err:  # the store may be failing: the jobs are failed on the next start
                log.warning("could not fail the backup jobs of %s: %s", conn.name, err)

    def _answer(self, node_id: str, seq: int | None) -> bool:
        """Note which desired state a report answers (a report naming none answers the latest);
        whether it answers one that had no report yet."""
        pushed = self._pushed.get(node_id, 0)
        answered = pushed if seq is None else min(seq, pushed)
        before = self._answered.get(node_id, 0)
        self._answered[node_id] = max(before, answered)
        return answered > before

    async def _watch_heartbeats(self) -> None:
        period = max(0.2, self.settings.heartbeat_interval / 2)
        due = time.monotonic() + period
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            if now - due > period:  # this loop did not run for a while: nor did the receiving
                credit_stall(self.connections.values(), now - due)
            due = now + period
            for conn in silent(self.connections.values(), now - self.settings.node_timeout):
                log.info("node %s (%s) offline: missed heartbeats", conn.name, conn.node_id)
                del self.connections[conn.node_id]
                self.relay.connection_lost(conn, f"node {conn.name} went offline (missed heartbeats)")
                self.links.connection_lost(conn, f"node {conn.name} went offline (missed heartbeats)")
                await to_thread.run_sync(
                    self._set_status,
                    conn.node_id,
                    NodeStatus.OFFLINE,
                    conn.last_seen_at,
                    f"no heartbeat for {self.settings.node_timeout:g}s",
                )
                with contextlib.suppress(Exception):
                    await conn.websocket.close(code=1001, reason="missed heartbeats")
                await self._lost_jobs(conn)
                await self._wake()

    # -- store calls, run in a worker thread -------------------------------------------------

    def _admit(self, token: str | None) -> AgentAdmission | None:
        with self.db.session() as session:
            return admit_agent(session, token)

    def _register(self, admission: AgentAdmission, hello: Hello) -> str | None:
        """Register the hello's node; its new credential if one was issued now."""
        with self.db.session() as session:
            grid_row = grid_by_id(session, admission.grid_id)
            if grid_row is None:
                raise MoorageError("This grid was removed; join the agent to an existing grid")
            _node, credential = register_node(
                session,
                grid_row,
                hello.node_id,
                hello.name,
                hello.labels,
                hello.info.model_dump(mode="json"),
                credential_of=admission.node_id,
                master_id=self.master_id,
            )
            return credential

    def _link_key(self, master_id: str) -> tuple[str, str | None] | None:
        with self.db.session() as session:
            return link_key_of(session, master_id, within=self.settings.lease_ttl * 3)

    def _set_info(self, node_id: str, msg: InfoMsg) -> None:
        with self.db.session() as session:
            set_info(session, node_id, msg.info.model_dump(mode="json"))

    def _desired(self, node_id: str, grid: str) -> Desired:
        with self.db.session() as session:
            return desired_for_node(session, node_id, grid)

    def _set_status_report(self, node_id: str, msg: StatusMsg) -> tuple[int, int]:
        """(rows the report changed, retired copies it says are gone)."""
        with self.db.session() as session:
            changed = (
                apply_instance_status(session, node_id, msg.instances)
                + apply_volume_status(session, node_id, msg.volumes)
                + apply_docker_volumes(session, node_id, msg.docker_volumes)
            )
            purged = retired_removed(session, node_id, msg.volumes)
            return changed + purged, purged

    def _set_status(self, node_id: str, status: NodeStatus, last_seen_at: datetime, why: str) -> None:
        with self.db.session() as session:
            set_status(session, node_id, status, last_seen_at, why, self.master_id)

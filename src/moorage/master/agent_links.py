"""Links: this master reaching a node's agent that another master of the store holds.

With several masters on one PostgreSQL, each agent is connected to one of them, while a volume
move, a backup or a restore is run by whichever master took the request (or by the leader, for
schedules and drains). Their streams and jobs go to the agent's own master, which passes them on:

    A (runs the job) ── WebSocket LINK_PATH ──▶ B (holds the agent's connection) ──▶ agent
        headers: x-moorage-master (A's id), Authorization: Bearer (A's link key; B checks it
        against the hash in A's row of the ``masters`` table: only a live master of the store)
    B ──▶ A  {"type": "link", ...}     the agent is connected to B: the link is open
    A ──▶ B  stream opens (logs, exec, volume), stdin, resize, credit, cancel, backup_run,
             restore_run: as the agent takes them, data as binary frames; nothing else (desired
             states go by the peers' notices, ``master/peers.py``)
    B ──▶ A  what the agent says on those streams and jobs (data as binary frames), nothing else

On A a link is a ``StreamPeer`` of its own relay, as an agent's connection is: the windows and
credits are the agent's and A's, so B holds no more than what is in flight. B routes the agent's
messages by their stream and job ids (``LinkedAgents.take``) before its own relay and jobs see
them. A link ends when either master goes or the agent's connection to B does: A's streams over
it end with the reason (a move fails and puts its instance back), the jobs A sent over it fail
as a lost agent's do, and B cancels at the agent the streams A still had open.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from moorage.errors import Conflict
from moorage.master.forwarding import PeerMaster, ws_url
from moorage.master.leadership import MasterIdentity, link_key_hash
from moorage.master.socket_close import close_socket
from moorage.master.streams import AGENT_STREAM_MESSAGES, StreamPeer
from moorage.protocol import (
    BACKUP_AGENT_MESSAGES,
    BackupRun,
    ExecOpen,
    JobDone,
    JobProgress,
    LogsOpen,
    RestoreRun,
    StreamCancel,
    StreamCredit,
    StreamEnd,
    StreamInput,
    StreamOutput,
    StreamResize,
    StreamStarted,
    VolumeOpen,
    agent_data_frame,
    agent_message,
    data_frame,
    master_data_frame,
    master_message,
    validation_problem,
)

if TYPE_CHECKING:
    from moorage.master.deployer import Agents
    from moorage.master.hub import AgentConnection, AgentHub

__all__ = [
    "LINK_PATH",
    "MASTER_HEADER",
    "AgentLinks",
    "LinkedAgents",
    "PeerLink",
    "key_matches",
]

log = logging.getLogger("moorage.master.agent_links")

LINK_PATH = "/v1/agent-links/{node_id}"
MASTER_HEADER = "x-moorage-master"
OPEN_TIMEOUT = 10.0
IDLE_CLOSE = 60.0  # seconds a link with no stream open and no job running stays open

LINKED_OPENS = (LogsOpen, ExecOpen, VolumeOpen)
LINKED = (*LINKED_OPENS, StreamInput, StreamResize, StreamCancel, StreamCredit, BackupRun, RestoreRun)
"""What a master may send an agent over a link (what else it sends is refused, the link closed)."""

StreamMessage = StreamStarted | StreamOutput | StreamEnd | StreamCredit
JobMessage = JobProgress | JobDone

# close codes of a link (B's words come with them)
REFUSED = 4403  # not a live master of this store, or a bad key
AWAY = 4404  # the node's agent is not connected here
BROKEN = 4400  # A sent what a link does not carry
GONE = 4410  # the agent's connection here ended


class LinkReady(BaseModel):
    """B's first message on a link: the agent is connected here."""

    type: Literal["link"] = "link"
    node_id: str
    name: str


def key_matches(presented: str | None, stored_hash: str | None) -> bool:
    """Whether a presented link key is the one whose hash the store keeps (constant time)."""
    if not presented or not stored_hash:
        return False
    return hmac.compare_digest(link_key_hash(presented), stored_hash)


# -- B: the master holding the agent --------------------------------------------------------------


class ServedLink:
    """(B) One link another master opened to an agent connected here."""

    def __init__(self, websocket: WebSocket, conn: AgentConnection, master: str) -> None:
        self.websocket = websocket
        self.conn = conn
        self.master = master  # the name of the master at the other end
        self.streams: set[str] = set()
        self.jobs: set[str] = set()
        self._out: asyncio.Queue[str | bytes | None] = asyncio.Queue()

    def to_master(self, frame: str | bytes) -> None:
        """Queue a frame for A; never waits (the hub's receive loop calls it). What is queued is
        bounded by the streams' windows, which A's credits keep."""
        self._out.put_nowait(frame)

    def end(self) -> None:
        self._out.put_nowait(None)

    async def write(self) -> None:
        while (frame := await self._out.get()) is not None:
            if isinstance(frame, bytes):
                await self.websocket.send_bytes(frame)
            else:
                await self.websocket.send_text(frame)


class LinkedAgents:
    """(B) The links other masters have open to the agents connected here, and the routing of
    the agents' messages to them."""

    def __init__(self) -> None:
        self._links: set[ServedLink] = set()
        self._by_stream: dict[str, ServedLink] = {}
        self._by_job: dict[str, ServedLink] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def count(self) -> int:
        return len(self._links)

    def take(self, conn: AgentConnection, msg: StreamMessage | JobMessage, raw: str | bytes | None) -> bool:
        """An agent's stream or job message: passed on to the link that opened it (True), or left
        to this master (False). ``raw``: the frame as the agent sent it."""
        if isinstance(msg, JobProgress | JobDone):
            link = self._by_job.get(msg.job)
            if link is None or link.conn is not conn:
                return False
            if isinstance(msg, JobDone):
                self._by_job.pop(msg.job, None)
                link.jobs.discard(msg.job)
        else:
            link = self._by_stream.get(msg.stream)
            if link is None or link.conn is not conn:
                return False
            if isinstance(msg, StreamEnd):
                self._forget_stream(link, msg.stream)
        if isinstance(msg, StreamOutput):
            link.to_master(raw if isinstance(raw, bytes) else data_frame(msg))
        else:
            link.to_master(raw if isinstance(raw, str) else msg.model_dump_json())
        return True

    def connection_lost(self, conn: AgentConnection, reason: str) -> None:
        """The agent's connection here ended: so do its links, saying why."""
        for link in [link for link in self._links if link.conn is conn]:
            link.end()
            task = asyncio.get_running_loop().create_task(close_socket(link.websocket, GONE, reason))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def serve(self, websocket: WebSocket, conn: AgentConnection, master: str) -> None:
        """Run an accepted link to ``conn``'s agent until either end goes."""
        link = ServedLink(websocket, conn, master)
        self._links.add(link)
        writer = asyncio.create_task(link.write(), name=f"link-{conn.name}-{master}")
        try:
            await websocket.send_text(LinkReady(node_id=conn.node_id, name=conn.name).model_dump_json())
            log.info("master %s linked to node %s", master, conn.name)
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                problem = await self._to_agent(link, message.get("text"), message.get("bytes"))
                if problem is not None:
                    log.warning("link of master %s to node %s closed: %s", master, conn.name, problem)
                    await close_socket(websocket, BROKEN, problem)
                    return
        except (WebSocketDisconnect, RuntimeError):  # A went away; RuntimeError: the socket closed here
            return
        finally:
            self._links.discard(link)
            for stream in list(link.streams):  # what A had open ends at the agent too
                self._forget_stream(link, stream)
                with contextlib.suppress(Exception):
                    await conn.send(StreamCancel(stream=stream).model_dump_json())
            for job in link.jobs:  # its answer is this master's now (the store is shared)
                if self._by_job.get(job) is link:
                    del self._by_job[job]
            link.end()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer
            log.info("link of master %s to node %s ended", master, conn.name)

    async def _to_agent(self, link: ServedLink, text: str | None, data: bytes | None) -> str | None:
        """Pass one frame of A's on to the agent; what is wrong with it, if anything."""
        conn = link.conn
        if data is not None:
            return await self._data_to_agent(link, data)
        if text is None:
            return "an empty frame"
        try:
            msg = master_message(text)
        except ValidationError as err:
            return f"bad message: {validation_problem(err)}"
        if not isinstance(msg, LINKED):
            return f"a {msg.type} message is not carried over a link"
        if isinstance(msg, LINKED_OPENS):
            if msg.stream in self._by_stream or msg.stream in link.streams:
                return f"stream id {msg.stream} is in use"
            link.streams.add(msg.stream)
            self._by_stream[msg.stream] = link
        elif isinstance(msg, BackupRun | RestoreRun):
            link.jobs.add(msg.job)
            self._by_job[msg.job] = link
        elif msg.stream not in link.streams:
            # a credit, cancel, input or resize of a stream that ended here (its end is on the
            # way to A): dropped, as an agent drops what comes for a stream that is over
            return None
        elif isinstance(msg, StreamCancel):
            self._forget_stream(link, msg.stream)  # the agent's last output, if any, is dropped
        await conn.send(text)
        return None

    async def _data_to_agent(self, link: ServedLink, data: bytes) -> str | None:
        try:
            stdin = master_data_frame(data)
        except ValueError as err:
            return f"bad data frame: {err}"
        if stdin.stream not in link.streams:
            return None  # a stream that ended here before A heard: dropped, as an agent drops it
        if link.conn.binary_data:
            await link.conn.send_data(data)
        else:
            await link.conn.send(stdin.model_dump_json())
        return None

    def _forget_stream(self, link: ServedLink, stream: str) -> None:
        link.streams.discard(stream)
        if self._by_stream.get(stream) is link:
            del self._by_stream[stream]


# -- A: the master running the job ----------------------------------------------------------------


class PeerLink:
    """(A) One node's agent reached through the master holding it (see the module)."""

    binary_data = True  # data goes as binary frames between masters, whatever the agent takes

    def __init__(self, ws: ClientConnection, node_id: str, name: str, via: PeerMaster) -> None:
        self._ws = ws
        self.node_id = node_id
        self.name = name
        self.via = via
        self.closed = False
        self.jobs: set[str] = set()  # backup and restore jobs sent over it whose end is not in
        self.used = time.monotonic()  # when it last carried anything

    async def send(self, text: str) -> None:
        self.used = time.monotonic()
        await self._ws.send(text)

    async def send_data(self, frame: bytes) -> None:
        self.used = time.monotonic()
        await self._ws.send(frame)

    async def close(self) -> None:
        self.closed = True
        with contextlib.suppress(Exception):
            await self._ws.close()

    async def read(
        self,
        on_stream: Callable[[PeerLink, StreamMessage], None],
        on_job: Callable[[str, JobMessage], Awaitable[None]],
    ) -> str:
        """Hand what the agent says to this master's relay and jobs until the link ends; why it did."""
        try:
            async for frame in self._ws:
                try:
                    msg = agent_data_frame(frame) if isinstance(frame, bytes) else agent_message(frame)
                except ValidationError as err:
                    return f"master {self.via.name} passed on a bad message: {validation_problem(err)}"
                except ValueError as err:
                    return f"master {self.via.name} passed on a bad data frame: {err}"
                self.used = time.monotonic()
                if isinstance(msg, AGENT_STREAM_MESSAGES):
                    on_stream(self, msg)
                elif isinstance(msg, BACKUP_AGENT_MESSAGES):
                    if isinstance(msg, JobDone):
                        self.jobs.discard(msg.job)
                    await on_job(self.node_id, msg)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
        said = self._ws.close_reason
        return f"the link to node {self.name} through master {self.via.name} ended" + (
            f": {said}" if said else ""
        )


class AgentLinks:
    """(A) Every agent this master can reach: those connected here (the hub's connections), and
    through a link those the other live masters hold (``holder``: which, at the last look)."""

    def __init__(
        self,
        hub: AgentHub,
        me: MasterIdentity,
        context: ssl.SSLContext,
        holder: Callable[[str], PeerMaster | None] | None = None,
        agents: Agents | None = None,
    ) -> None:
        self.hub = hub
        self.agents: Agents = agents or hub  # every live master's agents (``Peers``), or the hub's
        self.me = me
        self._context = context
        self._holder = holder or (lambda _node_id: None)
        # (node id, name, why, the jobs it carried): those fail (set by app.py: BackupJobs.link_lost)
        self.link_lost: Callable[[str, str, str, set[str]], Awaitable[None]] | None = None
        self.idle_close = IDLE_CLOSE
        self._reaper: asyncio.Task[None] | None = None
        self._passes = 0  # looks for idle links so far (tests wait on it)
        self._links: dict[str, PeerLink] = {}
        self._opening: dict[str, asyncio.Lock] = {}
        self._readers: set[asyncio.Task[None]] = set()

    def connected_ids(self) -> set[str]:
        """The nodes whose agents are connected to a live master (this one or another)."""
        return self.agents.connected_ids()

    async def push_and_wait(self, node_id: str, timeout: float) -> None:
        """Push the node's desired state and, if its agent is connected to a live master, wait up
        to ``timeout`` seconds for its report on it (the containers it no longer wants are gone)."""
        await self.agents.push_desired([node_id])
        if node_id not in self.agents.connected_ids():
            return
        deadline = time.monotonic() + timeout
        while not self.agents.reported_since_push(node_id) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    def holds(self, node_id: str) -> bool:
        """Whether the node's agent can be reached: connected here, or held by a live master."""
        return self.hub.is_connected(node_id) or self._holder(node_id) is not None

    async def reach(self, node_id: str) -> StreamPeer | None:
        """The node's agent as jobs talk to it; None when no live master holds it. ``Conflict``
        when its master would not or could not link to it."""
        conn = self.hub.connections.get(node_id)
        if conn is not None:
            return conn
        lock = self._opening.setdefault(node_id, asyncio.Lock())
        async with lock:
            link = self._links.get(node_id)
            if link is not None and not link.closed:
                link.used = time.monotonic()  # not idle: the reaper leaves it to this caller
                return link
            peer = self._holder(node_id)
            if peer is None:
                return None
            link = await self._open(node_id, peer)
            self._links[node_id] = link
            task = asyncio.create_task(self._read(link), name=f"link-{link.name}")
            self._readers.add(task)
            task.add_done_callback(self._readers.discard)
            if self._reaper is None or self._reaper.done():
                self._reaper = asyncio.create_task(self._close_idle(), name="agent-links-idle")
            return link

    def sent_job(self, peer: StreamPeer, job_id: str) -> None:
        """A backup or restore job went to ``peer``: over a link, it keeps the link open until its
        end comes back (or fails with the link)."""
        if isinstance(peer, PeerLink):
            peer.jobs.add(job_id)

    async def _close_idle(self) -> None:
        """Close the links that carried nothing for ``idle_close`` seconds and hold no stream or
        job (the next job opens one again), until none is left."""
        while self._links:
            await asyncio.sleep(self.idle_close / 4)
            self._passes += 1
            now = time.monotonic()
            for link in list(self._links.values()):
                idle = now - link.used > self.idle_close
                if idle and not link.jobs and not self.hub.relay.open_count(link):
                    log.info("closing the idle link to node %s through master %s", link.name, link.via.name)
                    await link.close()

    async def _open(self, node_id: str, peer: PeerMaster) -> PeerLink:
        url = ws_url(peer, LINK_PATH.format(node_id=node_id), [])
        headers = {MASTER_HEADER: self.me.id, "authorization": f"Bearer {self.me.link_key}"}
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                ssl=self._context if url.startswith("wss://") else None,
                open_timeout=OPEN_TIMEOUT,
                max_size=None,
            )
        except InvalidStatus as err:
            raise Conflict(
                f"master {peer.name}, which holds node {node_id}'s agent, refused a link "
                f"(HTTP {err.response.status_code})"
            ) from err
        except (WebSocketException, OSError, TimeoutError) as err:
            raise Conflict(
                f"master {peer.name}, which holds node {node_id}'s agent, did not answer: {err}"
            ) from err
        try:
            ready = LinkReady.model_validate_json(await asyncio.wait_for(ws.recv(), OPEN_TIMEOUT))
        except ConnectionClosed as err:
            said = ws.close_reason or "it closed the link"
            raise Conflict(f"through master {peer.name}: {said}") from err
        except (ValidationError, TimeoutError) as err:
            await ws.close()
            raise Conflict(f"master {peer.name} did not open a link to node {node_id}: {err}") from err
        log.info("linked to node %s through master %s", ready.name, peer.name)
        return PeerLink(ws, node_id, ready.name, peer)

    async def _read(self, link: PeerLink) -> None:
        why = await link.read(self.hub.relay.from_agent, self._job_message)
        log.info("%s", why)
        if self._links.get(link.node_id) is link:
            del self._links[link.node_id]
        self.hub.relay.connection_lost(link, why)
        if self.link_lost is not None and link.jobs:
            try:
                await self.link_lost(link.node_id, link.name, why, set(link.jobs))
            except Exception as err:  # the store may be failing: the jobs fail on the next look
                log.warning("could not fail the jobs sent over the link to %s: %s", link.name, err)

    async def _job_message(self, node_id: str, msg: JobMessage) -> None:
        if self.hub.job_messages is not None:
            await self.hub.job_messages(node_id, msg)

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for link in list(self._links.values()):
            await link.close()
        readers = list(self._readers)
        if readers:
            await asyncio.wait(readers, timeout=3.0)

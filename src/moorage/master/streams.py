"""The master's end of logs and exec streams: many streams over each agent's one connection.

    route ── open(peer, logs|exec) ──▶ relay ── frame ──▶ agent (over the hub's connection)
    route ◀── next(): output | end ─── relay ◀── frame ── hub's receive loop: from_agent()
    route ── consumed(n) ─────────────▶ relay ── credit ─▶ agent sends more
    route ── write_stdin / resize ────▶ relay ── frame ──▶ agent (within the agent's credit)
    route ── close() ─────────────────▶ relay ── cancel ─▶ agent closes the engine's stream

A stream holds at most its window (``STREAM_WINDOW_BYTES``; ``VOLUME_WINDOW_BYTES`` for the
volume data streams of moves, ``VolumeOpen``) the route has not passed on: the agent sends no
more until the route credits, and an agent that does is cut off (its stream ends with an error),
so a fast log costs the master a window per stream, never more. ``from_agent`` never waits: the
hub's receive loop (heartbeats, reports) goes on whatever a stream's reader does. A stream ends
by its ``end`` from the agent, by ``close`` (the client went away: the agent is told to cancel),
when its agent's connection is lost, or when the master stops (``stop``); ``close`` never waits,
so it is safe in a ``finally`` of a cancelled request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Protocol

from moorage.errors import Conflict
from moorage.protocol import (
    MAX_STREAMS_PER_NODE,
    STREAM_CHUNK_BYTES,
    STREAM_WINDOW_BYTES,
    VOLUME_CHUNK_BYTES,
    VOLUME_WINDOW_BYTES,
    ExecOpen,
    LogsOpen,
    StreamCancel,
    StreamCredit,
    StreamEnd,
    StreamInput,
    StreamOutput,
    StreamResize,
    StreamStarted,
    VolumeOpen,
    data_frame,
)

__all__ = ["AGENT_STREAM_MESSAGES", "RelayStream", "StreamPeer", "StreamRelay"]

log = logging.getLogger("moorage.master.streams")

AGENT_STREAM_MESSAGES = (StreamStarted, StreamOutput, StreamEnd, StreamCredit)
"""The agent's messages that belong to a stream (the hub hands these to ``StreamRelay.from_agent``)."""


class StreamPeer(Protocol):
    """One agent's connection, as the relay uses it (``hub.AgentConnection``; a fake in tests)."""

    @property
    def node_id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def binary_data(self) -> bool:
        """Whether stdin data goes to this agent as binary frames (``send_data``)."""
        ...

    async def send(self, text: str) -> None: ...

    async def send_data(self, frame: bytes) -> None: ...


class RelayStream:
    """One logs, exec or volume stream, as the route (or move) that opened it sees it."""

    def __init__(self, relay: StreamRelay, peer: StreamPeer, stream_id: str, *, volume: bool = False) -> None:
        self.id = stream_id
        self.peer = peer
        self._relay = relay
        self.window = VOLUME_WINDOW_BYTES if volume else STREAM_WINDOW_BYTES
        self.chunk = VOLUME_CHUNK_BYTES if volume else STREAM_CHUNK_BYTES
        self._items: asyncio.Queue[StreamStarted | StreamOutput | StreamEnd] = asyncio.Queue()
        self._outstanding = 0  # output bytes received and not credited back
        self._uncredited = 0  # of those, bytes the route passed on (credited in batches)
        self._stdin_credit = self.window
        self._stdin_ready = asyncio.Event()
        self.ended = False  # the agent ended it, or the relay did
        self.closed = False  # the route let go of it

    @property
    def buffered(self) -> int:
        """Output bytes held for the route (at most its window)."""
        return self._outstanding - self._uncredited

    async def started(self, timeout: float) -> StreamEnd | None:
        """Wait for the agent to take the stream: None when it did, else the end it answered with."""
        try:
            first = await asyncio.wait_for(self._items.get(), timeout)
        except TimeoutError:
            self.close()
            return StreamEnd(
                stream=self.id,
                error=f"node {self.peer.name} did not answer within {timeout:.0f} s "
                "(is its agent older than this master?); try again",
            )
        if isinstance(first, StreamEnd):
            return first
        if isinstance(first, StreamOutput):  # not from a well-behaved agent; keep it in order
            self._items.put_nowait(first)
        return None

    async def next(self) -> StreamOutput | StreamEnd:
        """The next output (hand its size to ``consumed`` once passed on), or the end."""
        while True:
            item = await self._items.get()
            if isinstance(item, StreamOutput | StreamEnd):
                return item

    def consumed(self, size: int) -> None:
        """The route passed ``size`` bytes of output on: credit the agent (in chunks, or once the
        queue is empty, so the agent is never left without credit while the route waits)."""
        self._uncredited += size
        if self._uncredited >= self.window // 8 or (self._items.empty() and self._uncredited):
            credit, self._uncredited = self._uncredited, 0
            self._outstanding -= credit
            if not self.ended:
                self._relay.post(self.peer, StreamCredit(stream=self.id, bytes=credit).model_dump_json())

    async def write_stdin(self, data: bytes) -> bool:
        """Send input within the agent's credit (waits for it); False once the stream is over."""
        for start in range(0, len(data), self.chunk):
            piece = data if len(data) <= self.chunk else data[start : start + self.chunk]
            while self._stdin_credit < len(piece) and not self.ended:
                self._stdin_ready.clear()
                await self._stdin_ready.wait()
            if self.ended:
                return False
            self._stdin_credit -= len(piece)
            msg = StreamInput(stream=self.id, data=piece)
            if self.peer.binary_data:
                sent = await self._send_data(data_frame(msg))
            else:
                sent = await self._send(msg.model_dump_json())
            if not sent:
                return False
        return not self.ended

    async def end_stdin(self) -> None:
        if not self.ended:
            await self._send(StreamInput(stream=self.id, eof=True).model_dump_json())

    async def resize(self, width: int, height: int) -> None:
        if not self.ended:
            await self._send(StreamResize(stream=self.id, width=width, height=height).model_dump_json())

    def close(self) -> None:
        """Let go of the stream; the agent cancels it if it was still running. Never waits."""
        if self.closed:
            return
        self.closed = True
        if not self.ended:
            self.ended = True
            self._relay.post(self.peer, StreamCancel(stream=self.id).model_dump_json())
        self._relay.forget(self)
        self._relay.let_go(self)
        self._stdin_ready.set()

    async def _send(self, text: str) -> bool:
        try:
            await self.peer.send(text)
        except Exception as err:  # the connection is going away: the hub ends the stream with a reason
            log.info("stream %s to node %s: send failed: %s", self.id, self.peer.name, err)
            return False
        return True

    async def _send_data(self, frame: bytes) -> bool:
        try:
            await self.peer.send_data(frame)
        except Exception as err:  # as in ``_send``
            log.info("stream %s to node %s: send failed: %s", self.id, self.peer.name, err)
            return False
        return True

    # -- the relay's side ------------------------------------------------------------------------

    def _take(self, msg: StreamStarted | StreamOutput | StreamEnd | StreamCredit) -> str | None:
        """One message from the agent; an error if it broke the window."""
        if isinstance(msg, StreamCredit):
            self._stdin_credit = min(self.window, self._stdin_credit + msg.bytes)
            self._stdin_ready.set()
            return None
        if isinstance(msg, StreamOutput):
            if self._outstanding + len(msg.data) > self.window:
                return f"node {self.peer.name} sent more output than the stream's window; the stream was cut"
            self._outstanding += len(msg.data)
        elif isinstance(msg, StreamEnd):
            self.ended = True
            self._stdin_ready.set()
        self._items.put_nowait(msg)
        return None

    def _end(self, reason: str) -> None:
        if not self.ended:
            self.ended = True
            self._items.put_nowait(StreamEnd(stream=self.id, error=reason))
            self._stdin_ready.set()


class StreamRelay:
    """Every open stream of this master, by id (see the module)."""

    def __init__(self, per_node: int = MAX_STREAMS_PER_NODE) -> None:
        self._per_node = per_node
        self._streams: dict[str, RelayStream] = {}
        self._held: set[RelayStream] = set()  # opened and not yet closed by their route
        self._all_let_go = asyncio.Event()
        self._all_let_go.set()
        self._posts: set[asyncio.Task[None]] = set()
        self._stopping: str | None = None

    def open_count(self, peer: StreamPeer | None = None) -> int:
        return sum(1 for s in self._streams.values() if peer is None or s.peer is peer)

    async def open(self, peer: StreamPeer, request: LogsOpen | ExecOpen | VolumeOpen) -> RelayStream:
        """Register a stream and ask the agent for it; ``request.stream`` is replaced by a new id."""
        if self._stopping is not None:
            raise Conflict(f"{self._stopping}; try again once it is back")
        if self.open_count(peer) >= self._per_node:
            raise Conflict(
                f"node {peer.name} has {self._per_node} logs and exec streams open, the most it serves; "
                "end some (each 'moorage service logs -f' holds one) and try again"
            )
        stream = RelayStream(self, peer, secrets.token_hex(8), volume=isinstance(request, VolumeOpen))
        self._streams[stream.id] = stream
        self._held.add(stream)
        self._all_let_go.clear()
        try:
            await peer.send(request.model_copy(update={"stream": stream.id}).model_dump_json())
        except Exception as err:
            stream.closed = stream.ended = True
            self.forget(stream)
            self.let_go(stream)
            raise Conflict(
                f"node {peer.name} went offline just now ({type(err).__name__}); try again once it is back"
            ) from err
        return stream

    def from_agent(
        self, peer: StreamPeer, msg: StreamStarted | StreamOutput | StreamEnd | StreamCredit
    ) -> None:
        """A stream message from ``peer``'s agent; never waits. Ids of other nodes, or of streams
        that are over, are ignored (a cancel crosses the agent's last output)."""
        stream = self._streams.get(msg.stream)
        if stream is None or stream.peer is not peer or stream.ended:
            return
        problem = stream._take(msg)
        if problem is not None:
            log.warning("%s", problem)
            stream._end(problem)
            self.post(peer, StreamCancel(stream=stream.id).model_dump_json())
        if stream.ended:
            self.forget(stream)

    def connection_lost(self, peer: StreamPeer, reason: str | None = None) -> None:
        """``peer``'s connection closed (or went silent): its streams end, saying so."""
        reason = reason or f"the connection to node {peer.name} was lost"
        for stream in [s for s in self._streams.values() if s.peer is peer]:
            stream._end(reason)
            self.forget(stream)

    async def stop(self, reason: str = "the master is stopping", grace: float = 3.0) -> None:
        """End every stream (the agents cancel theirs) and take no new ones; wait up to ``grace``
        seconds for the routes to tell their clients (before the server closes their sockets)."""
        self._stopping = reason
        for stream in list(self._streams.values()):
            if not stream.ended:
                self.post(stream.peer, StreamCancel(stream=stream.id).model_dump_json())
            stream._end(reason)
            self.forget(stream)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_let_go.wait(), grace)
        posts = list(self._posts)
        if posts:
            await asyncio.wait(posts, timeout=grace)

    def let_go(self, stream: RelayStream) -> None:
        self._held.discard(stream)
        if not self._held:
            self._all_let_go.set()

    def forget(self, stream: RelayStream) -> None:
        if self._streams.get(stream.id) is stream:
            del self._streams[stream.id]

    def post(self, peer: StreamPeer, text: str) -> None:
        """Send without waiting (a credit or a cancel): from a ``finally`` or the receive loop."""

        async def send() -> None:
            try:
                await peer.send(text)
            except Exception as err:  # the connection is going away; nothing to tell anyone
                log.debug("could not send to node %s: %s", peer.name, err)

        task = asyncio.get_running_loop().create_task(send())
        self._posts.add(task)
        task.add_done_callback(self._posts.discard)

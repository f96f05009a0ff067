"""The master's relay (master/streams.py): streams multiplexed by id over agents' connections,
their credit, and how each ends; then the relay and the agent's streams (agent/streams.py) joined
in memory, with a fast log and a slow reader."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from moorage.agent.streams import AgentStreams
from moorage.errors import Conflict
from moorage.master.streams import StreamRelay
from moorage.protocol import (
    STREAM_CHUNK_BYTES,
    STREAM_WINDOW_BYTES,
    AnyMasterMessage,
    ExecOpen,
    LogsOpen,
    StreamCancel,
    StreamCredit,
    StreamEnd,
    StreamInput,
    StreamOutput,
    StreamStarted,
    agent_data_frame,
    agent_message,
    master_data_frame,
    master_message,
)
from tests.support.fake_engine import FakeEngine


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 20))


class Peer:
    """An agent's connection as the relay sees it: what the master sent it."""

    def __init__(self, name: str, *, binary_data: bool = False) -> None:
        self.node_id = f"id-{name}"
        self.name = name
        self.binary_data = binary_data
        self.sent: list[AnyMasterMessage] = []
        self.frames = 0  # binary ones
        self.broken = False

    async def send(self, text: str) -> None:
        if self.broken:
            raise ConnectionError("closed")
        self.sent.append(master_message(text))

    async def send_data(self, frame: bytes) -> None:
        assert self.binary_data, "a binary frame to an agent that did not ask for them"
        if self.broken:
            raise ConnectionError("closed")
        self.frames += 1
        self.sent.append(master_data_frame(frame))

    def of(self, kind: type) -> list[Any]:
        return [m for m in self.sent if isinstance(m, kind)]


async def settle() -> None:
    """Let the relay's background sends (credits, cancels) run."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_streams_are_multiplexed_by_id_and_peer() -> None:
    async def test() -> None:
        relay, one, two = StreamRelay(), Peer("node-1"), Peer("node-2")
        a = await relay.open(one, LogsOpen(stream="0", container="web-1"))
        b = await relay.open(one, LogsOpen(stream="0", container="web-2"))
        assert a.id != b.id
        assert [m.stream for m in one.of(LogsOpen)] == [a.id, b.id]
        assert [m.container for m in one.of(LogsOpen)] == ["web-1", "web-2"]
        relay.from_agent(one, StreamStarted(stream=a.id))
        relay.from_agent(two, StreamOutput(stream=a.id, data=b"not yours"))  # another node: ignored
        relay.from_agent(one, StreamOutput(stream=b.id, data=b"to b"))
        relay.from_agent(one, StreamOutput(stream=a.id, data=b"to a", fd=2))
        relay.from_agent(one, StreamEnd(stream=a.id))
        assert await a.started(1) is None
        got = await a.next()
        assert isinstance(got, StreamOutput) and (got.fd, got.data) == (2, b"to a")
        assert isinstance(await a.next(), StreamEnd)
        assert relay.open_count() == 1  # a is over; b is open
        assert b.buffered == len(b"to b")

    run(test)


def test_credit_is_given_back_as_the_route_passes_output_on() -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1")
        stream = await relay.open(peer, LogsOpen(stream="0", container="web-1", follow=True))
        for _ in range(3):
            relay.from_agent(peer, StreamOutput(stream=stream.id, data=b"x" * (STREAM_CHUNK_BYTES // 2)))
        first = await stream.next()
        stream.consumed(len(first.data))  # type: ignore[union-attr]
        await settle()
        assert peer.of(StreamCredit) == []  # half a chunk, more queued: wait for more
        second = await stream.next()
        stream.consumed(len(second.data))  # type: ignore[union-attr]
        await settle()
        assert [c.bytes for c in peer.of(StreamCredit)] == [STREAM_CHUNK_BYTES]
        third = await stream.next()
        stream.consumed(len(third.data))  # type: ignore[union-attr]
        await settle()  # the queue is empty: all of it, at once
        assert [c.bytes for c in peer.of(StreamCredit)] == [STREAM_CHUNK_BYTES, STREAM_CHUNK_BYTES // 2]
        assert stream.buffered == 0

    run(test)


def test_an_agent_that_breaks_the_window_is_cut_off() -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1")
        stream = await relay.open(peer, LogsOpen(stream="0", container="web-1", follow=True))
        for _ in range(STREAM_WINDOW_BYTES // STREAM_CHUNK_BYTES + 2):
            relay.from_agent(peer, StreamOutput(stream=stream.id, data=b"x" * STREAM_CHUNK_BYTES))
        assert stream.buffered == STREAM_WINDOW_BYTES  # never more
        items = [await stream.next() for _ in range(STREAM_WINDOW_BYTES // STREAM_CHUNK_BYTES + 1)]
        assert isinstance(items[-1], StreamEnd)
        assert "sent more output than the stream's window" in (items[-1].error or "")
        await settle()
        assert [c.stream for c in peer.of(StreamCancel)] == [stream.id]

    run(test)


def test_close_cancels_once_and_late_output_is_dropped() -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1")
        stream = await relay.open(peer, LogsOpen(stream="0", container="web-1", follow=True))
        stream.close()
        stream.close()
        relay.from_agent(peer, StreamOutput(stream=stream.id, data=b"late"))
        await settle()
        assert [c.stream for c in peer.of(StreamCancel)] == [stream.id]
        assert relay.open_count() == 0

    run(test)


def test_a_lost_connection_and_a_stopping_master_end_streams_with_a_reason() -> None:
    async def test() -> None:
        relay, one, two = StreamRelay(), Peer("node-1"), Peer("node-2")
        lost = await relay.open(one, LogsOpen(stream="0", container="web-1", follow=True))
        kept = await relay.open(two, ExecOpen(stream="0", container="web-2", cmd=["sleep"], stdin=True))
        relay.connection_lost(one)
        end = await lost.next()
        assert isinstance(end, StreamEnd) and end.error == "the connection to node node-1 was lost"
        assert await lost.write_stdin(b"x") is False
        lost.close()
        writing = asyncio.ensure_future(kept.write_stdin(b"y" * (STREAM_WINDOW_BYTES + 1)))
        await settle()
        assert not writing.done()  # waits for the agent's credit

        async def route() -> StreamOutput | StreamEnd:  # reads to the end, then lets go
            try:
                return await kept.next()
            finally:
                kept.close()

        reading = asyncio.ensure_future(route())
        await relay.stop(grace=10)  # returns once the route let go, not after the grace
        assert await writing is False
        end = await reading
        assert isinstance(end, StreamEnd) and end.error == "the master is stopping"
        assert [c.stream for c in two.of(StreamCancel)] == [kept.id]
        with pytest.raises(Conflict, match="the master is stopping"):
            await relay.open(two, LogsOpen(stream="0", container="web-2"))

    run(test)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_stdin_goes_within_the_agents_credit_in_order(binary: bool) -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1", binary_data=binary)
        stream = await relay.open(peer, ExecOpen(stream="0", container="web-1", cmd=["cat"], stdin=True))
        data = bytes(range(256)) * (STREAM_WINDOW_BYTES // 128)  # two windows
        writing = asyncio.ensure_future(stream.write_stdin(data))
        await settle()
        assert sum(len(m.data) for m in peer.of(StreamInput)) == STREAM_WINDOW_BYTES
        relay.from_agent(peer, StreamCredit(stream=stream.id, bytes=STREAM_WINDOW_BYTES))
        assert await writing is True
        assert b"".join(m.data for m in peer.of(StreamInput)) == data
        assert all(len(m.data) <= STREAM_CHUNK_BYTES for m in peer.of(StreamInput))
        await stream.end_stdin()
        assert peer.of(StreamInput)[-1].eof
        assert peer.frames == (len(peer.of(StreamInput)) - 1 if binary else 0)  # eof goes as JSON

    run(test)


def test_a_node_serves_a_bounded_number_of_streams() -> None:
    async def test() -> None:
        relay, peer, other = StreamRelay(per_node=2), Peer("node-1"), Peer("node-2")
        for _ in range(2):
            await relay.open(peer, LogsOpen(stream="0", container="web-1", follow=True))
        with pytest.raises(Conflict, match="node node-1 has 2 logs and exec streams open"):
            await relay.open(peer, LogsOpen(stream="0", container="web-1"))
        await relay.open(other, LogsOpen(stream="0", container="web-2"))  # per node

    run(test)


def test_an_unreachable_agent_is_a_conflict_and_no_stream() -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1")
        peer.broken = True
        with pytest.raises(Conflict, match="node node-1 went offline just now"):
            await relay.open(peer, LogsOpen(stream="0", container="web-1"))
        assert relay.open_count() == 0

    run(test)


def test_an_agent_that_never_answers_times_out() -> None:
    async def test() -> None:
        relay, peer = StreamRelay(), Peer("node-1")
        stream = await relay.open(peer, LogsOpen(stream="0", container="web-1"))
        refused = await stream.started(0.05)
        assert refused is not None and "did not answer" in (refused.error or "")
        await settle()
        assert relay.open_count() == 0 and peer.of(StreamCancel)

    run(test)


# -- the two ends joined -------------------------------------------------------------------------


class Wire:
    """An agent's connection in memory: the master's frames to ``AgentStreams.handle``, the
    agent's (from its threads) to ``StreamRelay.from_agent`` on the loop; ``high`` is the most
    any stream ever held on the master."""

    def __init__(
        self, relay: StreamRelay, engine: FakeEngine, loop: asyncio.AbstractEventLoop, *, binary: bool = False
    ) -> None:
        self.node_id, self.name = "id-node-1", "node-1"
        self.binary_data = binary
        self.relay = relay
        self.loop = loop
        self.agent = AgentStreams(engine, self._from_agent, binary_data=binary)
        self.high = 0
        self.frames = 0  # binary ones, from the agent
        self.lock = threading.Lock()

    async def send(self, text: str) -> None:
        msg = master_message(text)
        for reply in self.agent.handle(msg):  # type: ignore[arg-type]
            self._deliver(reply)

    async def send_data(self, frame: bytes) -> None:
        for reply in self.agent.handle(master_data_frame(frame)):
            self._deliver(reply)

    def _from_agent(self, frame: str | bytes) -> None:
        self.loop.call_soon_threadsafe(self._deliver, frame)

    def _deliver(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            assert self.binary_data, "a binary frame from an agent that was not welcomed so"
            self.frames += 1
            msg: Any = agent_data_frame(frame)
        else:
            msg = agent_message(frame)
        self.relay.from_agent(self, msg)
        for stream in list(self.relay._streams.values()):
            self.high = max(self.high, stream.buffered)


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_a_fast_log_read_slowly_holds_a_window_on_the_master_and_arrives_whole(binary: bool) -> None:
    total = 40 * STREAM_WINDOW_BYTES  # 10 MiB

    async def test() -> None:
        relay, engine = StreamRelay(), FakeEngine()
        engine.add_container("web-1")
        wire = Wire(relay, engine, asyncio.get_running_loop(), binary=binary)
        stream = await relay.open(wire, ExecOpen(stream="0", container="web-1", cmd=["flood", str(total)]))
        assert await stream.started(5) is None
        received = bytearray()
        while isinstance(item := await stream.next(), StreamOutput):
            received += item.data
            if len(received) % (4 * STREAM_CHUNK_BYTES) == 0:
                await asyncio.sleep(0.001)  # a slow client, now and then
            stream.consumed(len(item.data))
        assert item.exit_code == 0
        assert bytes(received) == (bytes(range(256)) * 256 * (total // 65536))[:total]
        assert 0 < wire.high <= STREAM_WINDOW_BYTES
        assert wire.agent.join(5) and engine.open_sources() == []
        assert (wire.frames >= total // STREAM_CHUNK_BYTES) if binary else wire.frames == 0

    run(test)


def test_a_client_that_leaves_a_followed_log_ends_it_on_the_agent() -> None:
    async def test() -> None:
        relay, engine = StreamRelay(), FakeEngine()
        engine.add_container("web-1")
        wire = Wire(relay, engine, asyncio.get_running_loop())
        stream = await relay.open(wire, LogsOpen(stream="0", container="web-1", follow=True))
        assert await stream.started(5) is None
        engine.print("web-1", "hello\n")
        item = await stream.next()
        assert isinstance(item, StreamOutput) and item.data == b"hello\n"
        stream.close()
        await settle()
        assert wire.agent.join(5)
        assert engine.open_sources() == [] and wire.agent.open_count() == 0

    run(test)

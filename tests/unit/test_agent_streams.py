"""The agent's logs and exec streams (agent/streams.py) against the in-memory engine: what the
master is sent, within its credit, and that a cancel or a lost connection leaves no thread or
engine stream behind."""

from __future__ import annotations

import threading

import pytest

from moorage.agent.streams import AgentStreams
from moorage.protocol import (
    STREAM_CHUNK_BYTES,
    STREAM_WINDOW_BYTES,
    AnyAgentMessage,
    ExecOpen,
    LogsOpen,
    StreamCancel,
    StreamCredit,
    StreamEnd,
    StreamInput,
    StreamOutput,
    StreamResize,
    StreamStarted,
    agent_message,
)
from tests.support.fake_engine import FakeEngine
from tests.support.waiting import wait_until


class Master:
    """What the agent sent, parsed, in order (the agent's threads send from anywhere)."""

    def __init__(self) -> None:
        self.sent: list[AnyAgentMessage] = []
        self.lock = threading.Lock()
        self.gone = False

    def send(self, text: str) -> None:
        if self.gone:
            raise ConnectionError("connection closed")
        with self.lock:
            self.sent.append(agent_message(text))

    def of(self, stream: str) -> list[AnyAgentMessage]:
        with self.lock:
            return [m for m in self.sent if getattr(m, "stream", None) == stream]

    def output(self, stream: str, fd: int | None = None) -> bytes:
        return b"".join(
            m.data for m in self.of(stream) if isinstance(m, StreamOutput) and (fd is None or m.fd == fd)
        )

    def end(self, stream: str) -> StreamEnd | None:
        return next((m for m in self.of(stream) if isinstance(m, StreamEnd)), None)


@pytest.fixture
def engine() -> FakeEngine:
    engine = FakeEngine(images=("busybox:local",))
    engine.add_container("web-1")
    engine.add_container("stopped-1", status="exited")
    return engine


@pytest.fixture
def master() -> Master:
    return Master()


@pytest.fixture
def streams(engine: FakeEngine, master: Master):
    streams = AgentStreams(engine, master.send, limit=4)
    yield streams
    streams.close_all()
    assert streams.join(5), "a stream's thread outlived the connection"
    assert engine.open_sources() == []


def ended(master: Master, stream: str) -> StreamEnd:
    return wait_until(lambda: master.end(stream), 5, f"the end of stream {stream}")


def test_logs_are_started_then_sent_per_stream_then_ended(
    engine: FakeEngine, master: Master, streams: AgentStreams
) -> None:
    engine.print("web-1", "one\ntwo\n")
    engine.print("web-1", "oops\n", fd=2)
    assert streams.handle(LogsOpen(stream="s1", container="web-1")) == []
    end = ended(master, "s1")
    assert (end.error, end.exit_code) == (None, None)
    kinds = [m.type for m in master.of("s1")]
    assert kinds[0] == "started" and kinds[-1] == "end"
    assert master.output("s1", 1) == b"one\ntwo\n"
    assert master.output("s1", 2) == b"oops\n"


@pytest.mark.parametrize(
    ("tail", "timestamps", "expected"),
    [
        pytest.param(1, False, b"c\n", id="tail"),
        pytest.param(0, False, b"", id="tail-0"),
        pytest.param(None, True, b"2024-01-01T00:00:00.000000000Z a\n2024-01-01T00:00:00.000000000Z b\n"
                     b"2024-01-01T00:00:00.000000000Z c\n", id="timestamps"),
    ],
)  # fmt: skip
def test_the_engine_is_asked_what_the_master_asked(
    engine: FakeEngine,
    master: Master,
    streams: AgentStreams,
    tail: int | None,
    timestamps: bool,
    expected: bytes,
) -> None:
    engine.print("web-1", "a\nb\nc\n")
    streams.handle(LogsOpen(stream="s", container="web-1", tail=tail, since=12.5, timestamps=timestamps))
    ended(master, "s")
    assert master.output("s") == expected
    assert engine.log_requests == [
        {"container": "web-1", "follow": False, "tail": tail, "since": 12.5, "timestamps": timestamps}
    ]


def test_an_engine_refusal_is_the_end_with_its_words(master: Master, streams: AgentStreams) -> None:
    streams.handle(LogsOpen(stream="s", container="gone-1"))
    assert ended(master, "s").error == "No such container: gone-1"
    assert not any(isinstance(m, StreamStarted) for m in master.of("s"))


def test_a_followed_log_sends_new_lines_until_cancelled(
    engine: FakeEngine, master: Master, streams: AgentStreams
) -> None:
    streams.handle(LogsOpen(stream="f", container="web-1", follow=True))
    wait_until(lambda: master.of("f"), 5, "the stream to start")
    engine.print("web-1", "later\n")
    wait_until(lambda: master.output("f") == b"later\n", 5, "the new line")
    assert streams.handle(StreamCancel(stream="f")) == []
    assert streams.join(5)
    assert engine.open_sources() == []
    assert master.end("f") is None  # the master forgot it: nothing more is said
    assert streams.open_count() == 0


def test_output_stays_within_the_masters_credit(master: Master, streams: AgentStreams) -> None:
    total = 3 * STREAM_WINDOW_BYTES
    streams.handle(ExecOpen(stream="x", container="web-1", cmd=["flood", str(total)]))
    wait_until(lambda: len(master.output("x")) == STREAM_WINDOW_BYTES, 5, "a window of output")
    assert all(len(m.data) <= STREAM_CHUNK_BYTES for m in master.of("x") if isinstance(m, StreamOutput))
    assert master.end("x") is None
    got = STREAM_WINDOW_BYTES
    while got < total:  # credit what arrived; exactly that much more comes
        streams.handle(StreamCredit(stream="x", bytes=STREAM_WINDOW_BYTES))
        got += STREAM_WINDOW_BYTES
        wait_until(lambda got=got: len(master.output("x")) == got, 5, f"{got} bytes")
    assert ended(master, "x").exit_code == 0
    assert master.output("x") == (bytes(range(256)) * 256 * (total // 65536 + 1))[:total]


@pytest.mark.parametrize(
    ("cmd", "code", "stdout", "stderr"),
    [
        pytest.param(["echo", "hello", "there"], 0, b"hello there\n", b"", id="echo"),
        pytest.param(["exit", "3"], 3, b"", b"exiting with 3\n", id="exit-status"),
        pytest.param(["nope"], 127, b'OCI runtime exec failed: exec: "nope": executable file not found\n', b"",
                     id="not-found"),
    ],
)  # fmt: skip
def test_exec_sends_output_then_the_exit_status(
    master: Master, streams: AgentStreams, cmd: list[str], code: int, stdout: bytes, stderr: bytes
) -> None:
    streams.handle(ExecOpen(stream="e", container="web-1", cmd=cmd))
    end = ended(master, "e")
    assert (end.exit_code, end.error) == (code, None)
    assert (master.output("e", 1), master.output("e", 2)) == (stdout, stderr)


def test_exec_stdin_reaches_the_command_and_is_credited(
    engine: FakeEngine, master: Master, streams: AgentStreams
) -> None:
    streams.handle(
        ExecOpen(stream="c", container="web-1", cmd=["cat"], stdin=True, tty=True, width=80, height=24)
    )
    wait_until(lambda: master.of("c"), 5, "the exec to start")
    session = engine.sources[-1]
    streams.handle(StreamInput(stream="c", data=b"ping\n"))
    streams.handle(StreamResize(stream="c", width=120, height=40))
    streams.handle(StreamInput(stream="c", data=b"pong\n", eof=True))
    assert ended(master, "c").exit_code == 0
    assert master.output("c") == b"ping\npong\n"
    credits = sum(m.bytes for m in master.of("c") if isinstance(m, StreamCredit))
    assert credits == len(b"ping\npong\n")
    assert session.sizes == [(80, 24), (120, 40)]  # type: ignore[attr-defined]


def test_input_beyond_the_window_cuts_the_stream(master: Master, streams: AgentStreams) -> None:
    streams.handle(ExecOpen(stream="c", container="web-1", cmd=["sleep"], stdin=True))
    wait_until(lambda: master.of("c"), 5, "the exec to start")
    piece = b"x" * STREAM_CHUNK_BYTES
    replies: list[str] = []
    for _ in range(STREAM_WINDOW_BYTES // STREAM_CHUNK_BYTES + 1):
        replies += streams.handle(StreamInput(stream="c", data=piece))
    assert [agent_message(r).model_dump(include={"type", "error"}) for r in replies] == [
        {"type": "end", "error": "the master sent more input than the stream's window"}
    ]
    assert streams.join(5)


def test_exec_in_a_stopped_container_is_refused(master: Master, streams: AgentStreams) -> None:
    streams.handle(ExecOpen(stream="e", container="stopped-1", cmd=["echo"]))
    assert "is not running" in (ended(master, "e").error or "")


def test_streams_beyond_the_limit_are_refused_at_once(master: Master, streams: AgentStreams) -> None:
    for n in range(4):
        assert streams.handle(LogsOpen(stream=f"s{n}", container="web-1", follow=True)) == []
    refused = streams.handle(LogsOpen(stream="s4", container="web-1", follow=True))
    assert "has 4 logs and exec streams open" in (agent_message(refused[0]).error or "")  # type: ignore[union-attr]
    assert streams.open_count() == 4


def test_a_lost_connection_ends_every_stream(
    engine: FakeEngine, master: Master, streams: AgentStreams
) -> None:
    streams.handle(LogsOpen(stream="f", container="web-1", follow=True))
    streams.handle(ExecOpen(stream="e", container="web-1", cmd=["sleep"], stdin=True))
    wait_until(lambda: len(engine.sources) == 2 and master.of("e"), 5, "both streams to start")
    master.gone = True
    streams.close_all()
    assert streams.join(5)
    assert engine.open_sources() == []
    assert streams.handle(LogsOpen(stream="late", container="web-1")) == []  # a closed connection opens none


def test_messages_for_unknown_streams_are_ignored(streams: AgentStreams) -> None:
    for msg in (
        StreamCredit(stream="zz", bytes=10),
        StreamCancel(stream="zz"),
        StreamInput(stream="zz", data=b"x"),
        StreamResize(stream="zz", width=1, height=1),
    ):
        assert streams.handle(msg) == []

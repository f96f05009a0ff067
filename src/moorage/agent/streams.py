"""The agent's end of logs, exec and volume data streams (see ``moorage.protocol``, "streams").

    master ─ logs/exec ─▶ handle() ─ starts ─▶ reader thread: engine ─ output ─▶ send()
                          handle() ─ queues ─▶ stdin thread (exec): stdin, eof, resize ─▶ engine
                          handle() ─ cancel ─▶ closes the engine's stream: both threads end

``handle`` runs on the connection's receive side and never blocks (it answers a refusal with the
messages it returns); the threads send with ``send``, which blocks until the frame is written
(so a slow connection slows the engine read) and raises once the connection is gone. A reader
sends at most the window of bytes the master has not credited back. ``close_all`` ends every
stream when the connection ends: no thread or engine stream outlives it.

A volume stream (``VolumeOpen``) is one thread too: it runs the operation through
``volume_data.VolumeData`` (a helper container that mounts the Docker volume), sending a read's
tar stream as output or feeding a write's ``tar x`` from the master's input itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from moorage.agent import volume_manifest, volume_stats
from moorage.agent.engine import ContainerIO, EngineError, ExecSession, OutputSource
from moorage.agent.volume_data import TarReader, VolumeData
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

__all__ = ["AgentStreams", "StreamMessage"]

log = logging.getLogger("moorage.agent.streams")

StreamMessage = LogsOpen | ExecOpen | VolumeOpen | StreamInput | StreamResize | StreamCancel | StreamCredit
Opening = LogsOpen | ExecOpen | VolumeOpen
Send = Callable[[str | bytes], None]  # a JSON message, or a binary data frame (``binary_data``)

_Item = tuple[str, bytes, int, int]  # ("data", bytes, 0, 0) | ("eof", ...) | ("resize", b"", width, height)
_STOP: _Item = ("stop", b"", 0, 0)


class _Cancelled(Exception):
    """The master cancelled the stream (or the connection ended): stop without a word."""


@dataclass(eq=False)
class _Stream:
    id: str
    window: int = STREAM_WINDOW_BYTES
    credit: int = STREAM_WINDOW_BYTES  # output bytes the master will still take
    cancelled: bool = False
    source: OutputSource | None = None
    inbox: queue.SimpleQueue[_Item] = field(default_factory=queue.SimpleQueue)  # exec: stdin, eof, resize
    inbox_bytes: int = 0
    takes_stdin: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)

    def attach(self, source: OutputSource) -> bool:
        """Keep the engine's stream, to close it on cancel; False (and closed) if cancelled already."""
        with self.cond:
            if not self.cancelled:
                self.source = source
                return True
        source.close()
        return False

    def take_credit(self, size: int) -> None:
        with self.cond:
            while self.credit < size and not self.cancelled:
                self.cond.wait()
            if self.cancelled:
                raise _Cancelled
            self.credit -= size

    def give_credit(self, size: int) -> None:
        with self.cond:
            self.credit = min(self.window, self.credit + size)
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            source = self.source
            self.cond.notify_all()
        self.inbox.put(_STOP)
        if source is not None:
            source.close()  # wakes the reader blocked in the engine


class AgentStreams:
    """Every stream of one connection to the master (see the module)."""

    def __init__(
        self,
        engine: ContainerIO,
        send: Send,
        *,
        limit: int = MAX_STREAMS_PER_NODE,
        volumes: VolumeData | None = None,
        binary_data: bool = False,
    ) -> None:
        self.engine = engine
        self.volumes = volumes
        self.binary_data = binary_data  # output data as binary frames (the master's welcome said so)
        self._send = send
        self._limit = limit
        self._streams: dict[str, _Stream] = {}
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._closed = False

    # -- the connection's side -----------------------------------------------------------------

    def handle(self, msg: StreamMessage) -> list[str]:
        """Act on one message from the master; what to send back at once (a refusal), if anything."""
        if isinstance(msg, LogsOpen | ExecOpen | VolumeOpen):
            return self._open(msg)
        with self._lock:
            stream = self._streams.get(msg.stream)
        if stream is None:  # ended already: its late credit, input or cancel has nothing to do
            return []
        if isinstance(msg, StreamCredit):
            stream.give_credit(msg.bytes)
        elif isinstance(msg, StreamCancel):
            self._forget(stream)
            stream.cancel()
        elif isinstance(msg, StreamResize):
            stream.inbox.put(("resize", b"", msg.width, msg.height))
        else:
            return self._input(stream, msg)
        return []

    def close_all(self) -> None:
        """The connection ended: cancel every stream (their threads end on their own)."""
        with self._lock:
            self._closed = True
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.cancel()

    def open_count(self) -> int:
        with self._lock:
            return len(self._streams)

    def join(self, timeout: float) -> bool:
        """Wait for every stream's threads to end (tests: nothing leaks); whether they all did."""
        with self._lock:
            threads = list(self._threads)
        for thread in threads:
            thread.join(timeout)
        return not any(t.is_alive() for t in threads)

    def _open(self, msg: Opening) -> list[str]:
        with self._lock:
            if self._closed or msg.stream in self._streams:
                return []
            if len(self._streams) >= self._limit:
                return [
                    StreamEnd(
                        stream=msg.stream,
                        error=f"this node has {self._limit} logs and exec streams open, the most it serves; "
                        "end some and try again",
                    ).model_dump_json()
                ]
            if isinstance(msg, VolumeOpen):
                stream = _Stream(
                    msg.stream, VOLUME_WINDOW_BYTES, VOLUME_WINDOW_BYTES, takes_stdin=msg.op == "write"
                )
            else:
                stream = _Stream(msg.stream, takes_stdin=isinstance(msg, ExecOpen) and msg.stdin)
            self._streams[msg.stream] = stream
            kind = msg.type
            thread = threading.Thread(
                target=self._run, args=(stream, msg), name=f"moorage-{kind}-{msg.stream}", daemon=True
            )
            self._threads.add(thread)
            thread.start()  # under the lock: ``join`` never sees a thread not started yet
        return []

    def _input(self, stream: _Stream, msg: StreamInput) -> list[str]:
        if not stream.takes_stdin:
            return []
        with stream.cond:
            stream.inbox_bytes += len(msg.data)
            over = stream.inbox_bytes > stream.window
        if over:
            self._forget(stream)
            stream.cancel()
            return [
                StreamEnd(
                    stream=stream.id, error="the master sent more input than the stream's window"
                ).model_dump_json()
            ]
        if msg.data:
            stream.inbox.put(("data", msg.data, 0, 0))
        if msg.eof:
            stream.inbox.put(("eof", b"", 0, 0))
        return []

    def _forget(self, stream: _Stream) -> None:
        with self._lock:
            if self._streams.get(stream.id) is stream:
                del self._streams[stream.id]

    # -- the stream's threads ------------------------------------------------------------------

    def _run(self, stream: _Stream, msg: Opening) -> None:
        try:
            if isinstance(msg, LogsOpen):
                self._logs(stream, msg)
            elif isinstance(msg, ExecOpen):
                self._exec(stream, msg)
            else:
                self._volume(stream, msg)
        except _Cancelled:
            pass
        except Exception as err:  # the connection is gone (send raised), or a bug: end quietly
            if not stream.cancelled:
                log.info("stream %s ended: %s: %s", stream.id, type(err).__name__, err)
        finally:
            self._forget(stream)
            stream.cancel()  # closes the engine's stream and stops the stdin thread
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _logs(self, stream: _Stream, msg: LogsOpen) -> None:
        try:
            source = self.engine.open_logs(
                msg.container, follow=msg.follow, tail=msg.tail, since=msg.since, timestamps=msg.timestamps
            )
        except EngineError as err:
            self._end(stream, error=err.message)
            return
        if not stream.attach(source):
            return
        self._send(StreamStarted(stream=stream.id).model_dump_json())
        try:
            self._pump(stream, source)
        except EngineError as err:
            self._end(stream, error=err.message)
            return
        self._end(stream)

    def _exec(self, stream: _Stream, msg: ExecOpen) -> None:
        try:
            session = self.engine.open_exec(msg.container, msg.cmd, tty=msg.tty, stdin=msg.stdin)
        except EngineError as err:
            self._end(stream, error=err.message)
            return
        if not stream.attach(session):
            return
        if msg.tty and msg.width and msg.height:
            with contextlib.suppress(EngineError):  # the size is a nicety; the command runs anyway
                session.resize(msg.width, msg.height)
        self._send(StreamStarted(stream=stream.id).model_dump_json())
        feeder = threading.Thread(
            target=self._feed, args=(stream, session), name=f"moorage-stdin-{stream.id}", daemon=True
        )
        with self._lock:
            self._threads.add(feeder)
            feeder.start()
        try:
            self._pump(stream, session)
            code = session.exit_code()
        except EngineError as err:
            self._end(stream, error=err.message)
            return
        self._end(stream, exit_code=code)

    def _pump(self, stream: _Stream, source: OutputSource) -> None:
        """Engine output to the master, in chunks, within the master's credit."""
        while (item := source.read()) is not None:
            if stream.cancelled:
                raise _Cancelled
            fd, data = item
            for start in range(0, len(data), STREAM_CHUNK_BYTES):
                piece = data[start : start + STREAM_CHUNK_BYTES]
                stream.take_credit(len(piece))
                self._send(self._output(stream, piece, 2 if fd == 2 else 1))
        if stream.cancelled:
            raise _Cancelled

    # -- volume streams ---------------------------------------------------------------------------

    def _volume(self, stream: _Stream, msg: VolumeOpen) -> None:
        if self.volumes is None:
            self._end(stream, error="this agent does not serve volume data")
            return
        try:
            if msg.op == "read":
                with self.volumes.reading(msg.volume, msg.paths) as reader:
                    self._send(StreamStarted(stream=stream.id).model_dump_json())
                    self._pump_tar(stream, reader)
            elif msg.op == "write":
                self._write(stream, msg, self.volumes)
            else:
                result = self._volume_result(msg, self.volumes)
                self._send(StreamStarted(stream=stream.id).model_dump_json())
                self._send_all(stream, result)
        except (EngineError, ValueError) as err:
            self._end(stream, error=getattr(err, "message", None) or str(err))
            return
        self._end(stream)

    @staticmethod
    def _volume_result(msg: VolumeOpen, data: VolumeData) -> bytes:
        if msg.op == "manifest":
            return volume_manifest.to_json(data.manifest(msg.volume, msg.paths))
        if msg.op == "stats":
            return volume_stats.to_json(
                data.stats(msg.volume), "the volume's file names cannot be listed exactly"
            )
        if msg.op == "remove_paths":
            data.remove_paths(msg.volume, msg.paths or [])
            return b"{}"
        if msg.op == "drop":
            return json.dumps({"removed": data.drop_volume(msg.volume, dict(msg.labels))}).encode()
        if msg.op == "usage":
            return json.dumps(data.usage(msg.volume)).encode()
        return json.dumps(data.users(msg.volume)).encode()

    def _pump_tar(self, stream: _Stream, reader: TarReader) -> None:
        """The archive in pieces of VOLUME_CHUNK_BYTES: the engine hands it over in frames of a
        few KiB, and a frame each way per piece of those would cost the agent and the master
        dearly (every one is a message, a send and a credit)."""
        pending = bytearray()
        while (data := reader.next_chunk()) is not None:
            pending += data
            if len(pending) >= VOLUME_CHUNK_BYTES:
                piece = bytes(pending[:VOLUME_CHUNK_BYTES])
                del pending[:VOLUME_CHUNK_BYTES]
                self._send_all(stream, piece)
        if pending:
            self._send_all(stream, bytes(pending))

    def _send_all(self, stream: _Stream, data: bytes) -> None:
        for start in range(0, len(data), VOLUME_CHUNK_BYTES):
            if stream.cancelled:
                raise _Cancelled
            piece = data if len(data) <= VOLUME_CHUNK_BYTES else data[start : start + VOLUME_CHUNK_BYTES]
            stream.take_credit(len(piece))
            self._send(self._output(stream, piece))

    def _output(self, stream: _Stream, data: bytes, fd: int = 1) -> str | bytes:
        msg = StreamOutput(stream=stream.id, fd=2 if fd == 2 else 1, data=data)
        return data_frame(msg) if self.binary_data else msg.model_dump_json()

    def _write(self, stream: _Stream, msg: VolumeOpen, data: VolumeData) -> None:
        """The master's input into ``tar x``; credit back what was written."""
        if msg.driver is not None:
            data.ensure_volume(msg.volume, msg.driver, dict(msg.driver_opts), dict(msg.labels))
        with data.writing(msg.volume) as writer:
            self._send(StreamStarted(stream=stream.id).model_dump_json())
            written = 0
            while (item := stream.inbox.get()) != _STOP:
                kind, chunk, _, _ = item
                if kind == "data":
                    writer.write(chunk)
                    with stream.cond:
                        stream.inbox_bytes -= len(chunk)
                        drained = stream.inbox_bytes == 0
                    written += len(chunk)
                    if written >= stream.window // 8 or drained:
                        self._send(StreamCredit(stream=stream.id, bytes=written).model_dump_json())
                        written = 0
                elif kind == "eof":
                    writer.finish()
                    return
            raise _Cancelled

    def _feed(self, stream: _Stream, session: ExecSession) -> None:
        """The master's input to the command; credit back what was written."""
        written = 0
        try:
            while (item := stream.inbox.get()) != _STOP:
                kind, data, width, height = item
                if kind == "data":
                    session.write(data)
                    with stream.cond:
                        stream.inbox_bytes -= len(data)
                        drained = stream.inbox_bytes == 0
                    written += len(data)
                    if written >= STREAM_CHUNK_BYTES or drained:
                        self._send(StreamCredit(stream=stream.id, bytes=written).model_dump_json())
                        written = 0
                elif kind == "eof":
                    session.close_stdin()
                elif kind == "resize":
                    session.resize(width, height)
        except Exception as err:  # the command stopped reading, or the connection is gone
            if not stream.cancelled:
                log.info("stdin of stream %s ended: %s", stream.id, err)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _end(self, stream: _Stream, *, exit_code: int | None = None, error: str | None = None) -> None:
        if stream.cancelled:
            raise _Cancelled
        self._forget(stream)
        self._send(StreamEnd(stream=stream.id, exit_code=exit_code, error=error).model_dump_json())

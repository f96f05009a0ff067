"""Logs and exec of a service's instances, relayed through the agents of their nodes.

Which instances a request reaches (``pick``): the one asked for, or every instance of the
service; an instance on no node, or on a node that is offline (or whose agent is connected to
another master), is named with the reason. Each reachable instance gets a stream of its own over
its node's connection (``moorage.master.streams``), and the request answers only once every
agent took or refused its stream, so what the engine refuses (no such container, not running)
is the request's status, not a line in a stream that already said 200.

Logs (``LogFeed``): NDJSON, one object per line of output,
``{"instance": 1, "node": "node-1", "stream": "stdout"|"stderr", "line": "...", "time": "..."}``
(``time`` with timestamps), or ``{"instance": 1, "node": "node-1", "error": "..."}`` when that
instance's stream could not start or ended early. Lines from several instances are merged as
they come; a line longer than ``LINE_BYTES`` comes in pieces; bytes that are not UTF-8 are
replaced. Memory per request: a window per instance and ``MERGED_LINES`` lines.

Exec (``pipe_exec``) on the client's WebSocket: binary frames carry data, their first byte the
stream (0 stdin from the client; 1 stdout, 2 stderr from the master); text frames carry JSON
control: from the client ``{"type": "resize", "width": W, "height": H}`` and ``{"type": "eof"}``
(close the command's stdin); from the master, last, ``{"type": "exit", "code": N}`` or
``{"type": "error", "message": "..."}`` (the command's end is not known: the node or the master
went away).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from fastapi import WebSocket
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from moorage.errors import Conflict, NotFound
from moorage.master.forwarding import ForwardedLog, PeerMaster
from moorage.master.streams import RelayStream, StreamPeer, StreamRelay
from moorage.model.node import NodeStatus
from moorage.model.stack import NULL_STACK
from moorage.protocol import ExecOpen, LogsOpen, StreamEnd, StreamOutput
from moorage.store.instance_places import InstancePlace

__all__ = [
    "LINE_BYTES",
    "START_TIMEOUT",
    "Forward",
    "LogFeed",
    "LogRequest",
    "Picked",
    "Target",
    "open_logs",
    "pick",
    "pipe_exec",
    "record",
    "start_exec",
]

START_TIMEOUT = 15.0  # seconds an agent has to take or refuse a stream
LINE_BYTES = 16 * 1024
MERGED_LINES = 64
STDIN, STDOUT, STDERR = 0, 1, 2
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Target:
    """One instance a request reaches, and the connection of its node's agent."""

    place: InstancePlace
    label: str  # redis-1
    peer: StreamPeer

    @property
    def node(self) -> str:
        return self.peer.name

    @property
    def container(self) -> str:
        assert self.place.container is not None
        return self.place.container


def _shown_service(stack: str, service: str) -> str:
    return service if stack == NULL_STACK else f"{stack}/{service}"


@dataclass(frozen=True, slots=True)
class Forward:
    """One instance whose node's agent another master holds: the request goes on to that master
    (``master/forwarding.py``)."""

    place: InstancePlace
    label: str  # redis-1
    master: PeerMaster


@dataclass(frozen=True, slots=True)
class Picked:
    targets: list[Target]  # through this master's agents
    forwards: list[Forward]  # through another master's
    problems: list[tuple[InstancePlace, str]]  # not reachable, and why


def _nowhere(node_id: str) -> PeerMaster | None:
    return None


def pick(
    places: Sequence[InstancePlace],
    instance: int | None,
    stack: str,
    service: str,
    peer_of: Callable[[str], StreamPeer | None],
    holder_of: Callable[[str], PeerMaster | None] = _nowhere,
) -> Picked:
    """The instances to reach (here, or through the master ``holder_of`` names for a node whose
    agent is connected there), and why each other one cannot be. ``NotFound`` for an instance
    the service does not have; ``Conflict`` when none can be reached."""
    shown = _shown_service(stack, service)
    if instance is not None:
        chosen = [p for p in places if p.number == instance]
        if not chosen:
            have = ", ".join(str(p.number) for p in places) or "none"
            raise NotFound(
                f"Service {shown} has no instance {instance} (it has: {have}); "
                f"'moorage service show {shown}' lists them"
            )
        places = chosen
    elif not places:
        raise Conflict(f"Service {shown} has no instances yet; 'moorage service deploy {shown}' places them")
    picked = Picked([], [], [])
    for place in places:
        label = f"{service}-{place.number}"
        problem, peer = _reach(place, label, peer_of)
        holder = holder_of(place.node_id) if peer is None and place.node_id is not None else None
        if peer is not None:
            picked.targets.append(Target(place, label, peer))
        elif holder is not None and place.container is not None and place.node_status != NodeStatus.OFFLINE:
            picked.forwards.append(Forward(place, label, holder))
        elif problem is not None:
            picked.problems.append((place, problem))
    if not picked.targets and not picked.forwards:
        raise Conflict("; ".join(problem for _, problem in picked.problems))
    return picked


def _reach(
    place: InstancePlace, label: str, peer_of: Callable[[str], StreamPeer | None]
) -> tuple[str | None, StreamPeer | None]:
    if place.node_id is None or place.container is None:
        why = f": {place.reason}" if place.reason else ""
        return f"instance {label} is {place.state} and on no node{why}", None
    if place.node_status == NodeStatus.OFFLINE:
        return (
            f"node {place.node} is offline; instance {label} is there, reachable once its agent reconnects",
            None,
        )
    peer = peer_of(place.node_id)
    if peer is None:
        return (
            f"node {place.node} is not connected to this master (reconnecting, or connected to another "
            f"master); instance {label} is there, try again",
            None,
        )
    return None, peer


async def _start_all(
    relay: StreamRelay, targets: Sequence[Target], requests: Sequence[LogsOpen | ExecOpen]
) -> list[tuple[Target, RelayStream | None, str | None]]:
    """Open a stream per target and wait until each agent took or refused it. A request
    cancelled meanwhile lets go of every stream it opened."""

    async def one(
        target: Target, request: LogsOpen | ExecOpen
    ) -> tuple[Target, RelayStream | None, str | None]:
        stream: RelayStream | None = None
        try:
            stream = await relay.open(target.peer, request)
            refused = await stream.started(START_TIMEOUT)
        except Conflict as err:
            return target, None, err.message
        except BaseException:
            if stream is not None:
                stream.close()
            raise
        if refused is not None:
            stream.close()
            return (
                target,
                None,
                f"instance {target.label} on node {target.node}: {refused.error or 'refused'}",
            )
        return target, stream, None

    async def release(done: tuple[Target, RelayStream | None, str | None]) -> None:
        if done[1] is not None:
            done[1].close()

    return await _all_or_release(
        [asyncio.ensure_future(one(t, r)) for t, r in zip(targets, requests, strict=True)], release
    )


async def _all_or_release(
    tasks: list[asyncio.Future[_R]], release: Callable[[_R], Awaitable[None]]
) -> list[_R]:
    """Every task's result. If the wait ends otherwise (the request cancelled: its client left),
    the others are cancelled and what those that had finished opened is let go (``release``)."""
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        for done in await asyncio.gather(*tasks, return_exceptions=True):
            if not isinstance(done, BaseException):
                await release(done)
        raise


# -- logs ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogRequest:
    follow: bool = False
    tail: int | None = None
    since: float | None = None
    timestamps: bool = False


def _record(target: Target, **fields: object) -> bytes:
    return record(target.place, target.node, **fields)


def record(place: InstancePlace, node: str | None, **fields: object) -> bytes:
    """One NDJSON line about an instance."""
    return (json.dumps({"instance": place.number, "node": node, **fields}) + "\n").encode()


StartForward = Callable[[Forward], Awaitable[ForwardedLog]]


async def open_logs(
    relay: StreamRelay,
    targets: Sequence[Target],
    request: LogRequest,
    forwards: Sequence[Forward] = (),
    start_forward: StartForward | None = None,
) -> LogFeed:
    """Start every target's logs, and each forwarded instance's at its master (``start_forward``,
    which raises ``Conflict`` with what that master said); ``Conflict`` if none started (with
    each one's reason)."""
    requests = [
        LogsOpen(
            stream="0",
            container=t.container,
            follow=request.follow,
            tail=request.tail,
            since=request.since,
            timestamps=request.timestamps,
        )
        for t in targets
    ]
    remote = asyncio.ensure_future(_start_forwards(forwards, start_forward))
    try:
        started = await _start_all(relay, targets, requests) if targets else []
    except BaseException:
        remote.cancel()  # what it started is let go (``_start_forwards``), or what it finished:
        with contextlib.suppress(BaseException):
            for _, log in await remote:
                if isinstance(log, ForwardedLog):
                    await log.close()
        raise
    forwarded = await remote
    streams = [(t, s) for t, s, _ in started if s is not None]
    refused = [_record(t, error=why) for t, _, why in started if why is not None]
    opened = [(f, log) for f, log in forwarded if isinstance(log, ForwardedLog)]
    refused += [record(f.place, f.place.node, error=log) for f, log in forwarded if isinstance(log, str)]
    if not streams and not opened:
        raise Conflict("; ".join(json.loads(line)["error"] for line in refused))
    return LogFeed(streams, refused, request.timestamps, opened)


async def _start_forwards(
    forwards: Sequence[Forward], start: StartForward | None
) -> list[tuple[Forward, ForwardedLog | str]]:
    """Each forwarded instance's logs started at its master, or why not."""
    if not forwards:
        return []
    assert start is not None, "forwarded instances need start_forward"

    async def one(forward: Forward) -> tuple[Forward, ForwardedLog | str]:
        try:
            return forward, await start(forward)
        except Conflict as err:
            return forward, f"instance {forward.label} on node {forward.place.node}: {err.message}"

    async def release(done: tuple[Forward, ForwardedLog | str]) -> None:
        if isinstance(done[1], ForwardedLog):
            await done[1].close()

    return await _all_or_release([asyncio.ensure_future(one(f)) for f in forwards], release)


class LogFeed:
    """The merged NDJSON lines of started log streams (see the module)."""

    def __init__(
        self,
        streams: list[tuple[Target, RelayStream]],
        first: list[bytes],
        timestamps: bool,
        forwarded: Sequence[tuple[Forward, ForwardedLog]] = (),
    ) -> None:
        self.streams = streams
        self.first = first
        self.timestamps = timestamps
        self.forwarded = list(forwarded)

    def close(self) -> None:
        for _, stream in self.streams:
            stream.close()

    async def lines(self, notes: Sequence[bytes] = ()) -> AsyncIterator[bytes]:
        """Every line until each stream ended; closing it (a client that left) cancels them all."""
        merged: asyncio.Queue[bytes | None] = asyncio.Queue(MERGED_LINES)
        pumps = [asyncio.ensure_future(self._pump(t, s, merged)) for t, s in self.streams]
        pumps += [asyncio.ensure_future(_pump_forwarded(f, log, merged)) for f, log in self.forwarded]
        try:
            for line in (*notes, *self.first):
                yield line
            running = len(pumps)
            while running:
                got = await merged.get()
                if got is None:
                    running -= 1
                else:
                    yield got
        finally:
            for pump in pumps:
                pump.cancel()
            self.close()
            for _, log in self.forwarded:
                await log.close()

    async def _pump(self, target: Target, stream: RelayStream, out: asyncio.Queue[bytes | None]) -> None:
        pending = {STDOUT: b"", STDERR: b""}
        try:
            while isinstance(item := await stream.next(), StreamOutput):
                lines = (pending[item.fd] + item.data).split(b"\n")
                rest = lines.pop()
                pieces = [
                    line[i : i + LINE_BYTES]
                    for line in lines
                    for i in range(0, max(1, len(line)), LINE_BYTES)
                ]
                while len(rest) > LINE_BYTES:
                    pieces.append(rest[:LINE_BYTES])
                    rest = rest[LINE_BYTES:]
                pending[item.fd] = rest
                for piece in pieces:
                    await out.put(self._line(target, item.fd, piece))
                stream.consumed(len(item.data))
            for fd, rest in pending.items():
                if rest:
                    await out.put(self._line(target, fd, rest))
            if item.error:
                await out.put(_record(target, error=item.error))
        except Exception as err:  # a bug must end this instance's part, not hang the request
            await out.put(_record(target, error=f"the master could not relay this log: {err}"))
        await out.put(None)

    def _line(self, target: Target, fd: int, raw: bytes) -> bytes:
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        fields: dict[str, object] = {"stream": "stderr" if fd == STDERR else "stdout"}
        if self.timestamps:
            stamp, _, text = text.partition(" ")
            fields["time"] = stamp
        fields["line"] = text
        return _record(target, **fields)


async def _pump_forwarded(forward: Forward, log: ForwardedLog, out: asyncio.Queue[bytes | None]) -> None:
    """A forwarded instance's lines (already instance-prefixed by its master) into the merge."""
    try:
        async for line in log.lines():
            await out.put(line)
    except Exception as err:  # that master went away mid-stream: this instance's part ends, said so
        await out.put(
            record(forward.place, forward.place.node, error=f"master {forward.master.name} went away: {err}")
        )
    await out.put(None)


# -- exec ----------------------------------------------------------------------------------------


async def start_exec(relay: StreamRelay, target: Target, request: ExecOpen) -> RelayStream:
    """Start the command; ``Conflict`` with the engine's words if it could not."""
    ((_, stream, why),) = await _start_all(
        relay, [target], [request.model_copy(update={"container": target.container})]
    )
    if stream is None:
        raise Conflict(why or "the command did not start")
    return stream


class _Resize(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["resize"]
    width: int = Field(ge=1, le=65535)
    height: int = Field(ge=1, le=65535)


class _Eof(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    type: Literal["eof"]


_Control = Annotated[_Resize | _Eof, Field(discriminator="type")]
_control: TypeAdapter[_Resize | _Eof] = TypeAdapter(_Control)


class _BadFrame(Exception):
    pass


async def pipe_exec(websocket: WebSocket, stream: RelayStream, *, stdin: bool) -> None:
    """Between the client's (accepted) WebSocket and the command, until either ends; input is
    dropped unless the command was started with ``stdin``."""
    up = asyncio.ensure_future(_upstream(websocket, stream, stdin))
    down = asyncio.ensure_future(_downstream(websocket, stream))
    try:
        await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        end = _outcome(down)
        if isinstance(end, StreamEnd):
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps(_last_frame(end)))
                await websocket.close(1000)
        elif isinstance(_outcome(up), _BadFrame):
            with contextlib.suppress(Exception):
                await websocket.close(
                    1008, "text frames are JSON: {type: resize, width, height} or {type: eof}"
                )
    finally:
        up.cancel()
        down.cancel()
        stream.close()
        await asyncio.gather(up, down, return_exceptions=True)


async def _upstream(websocket: WebSocket, stream: RelayStream, stdin: bool) -> None:
    """The client's stdin and control frames to the command, until the client goes."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is not None:
            if stdin and data[:1] == bytes([STDIN]) and len(data) > 1:
                await stream.write_stdin(data[1:])
            continue
        try:
            control = _control.validate_json(message.get("text") or "")
        except ValidationError as err:
            raise _BadFrame from err
        if isinstance(control, _Eof):
            await stream.end_stdin()
        else:
            await stream.resize(control.width, control.height)


async def _downstream(websocket: WebSocket, stream: RelayStream) -> StreamEnd:
    """The command's output to the client; its end."""
    while isinstance(item := await stream.next(), StreamOutput):
        await websocket.send_bytes(bytes([item.fd]) + item.data)
        stream.consumed(len(item.data))
    return item


def _last_frame(end: StreamEnd) -> dict[str, object]:
    if end.exit_code is not None and end.error is None:
        return {"type": "exit", "code": end.exit_code}
    return {"type": "error", "message": end.error or "the node did not tell the command's exit status"}


def _outcome(task: asyncio.Future[StreamEnd] | asyncio.Future[None]) -> StreamEnd | BaseException | None:
    """A finished task's result or exception (so none goes unretrieved); None while it runs."""
    if not task.done() or task.cancelled():
        return None
    return task.exception() or task.result()

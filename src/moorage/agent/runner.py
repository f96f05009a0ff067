"""``moorage agent``: dial out to the master, say who this node is, keep the connection.

connect ──hello──▶ master ──welcome──▶ heartbeat every interval
   ▲                                   info whenever the node's facts change
   └──── backoff (0.5 s doubling to 5 s) ◀── connection lost / refused
         to the next of the masters given (several masters of one store), round and round

The connection is opened with the node's own credential (``node_credential`` in the data dir)
once the master has issued one (in the first ``welcome``), else with the grid's join token. If
the master refuses the credential (the node was removed), the agent joins again with the join
token, as a new node. ``wss://``/``https://`` masters are verified against the system's CAs,
or against ``ca`` alone when given.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from anyio import to_thread
from pydantic import ValidationError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException

from moorage import __version__
from moorage.agent.backups import AgentBackups, Held
from moorage.agent.converge import Converger
from moorage.agent.drivers import volume_drivers
from moorage.agent.engine import Containers, DockerHelpers, DockerIO, Engine, EngineError
from moorage.agent.identity import CREDENTIAL_FILE, load_credential, node_id, save_credential
from moorage.agent.streams import AgentStreams
from moorage.agent.volume_data import DEFAULT_HELPER_IMAGE, VolumeData
from moorage.protocol import (
    AGENT_PATH,
    MAX_MESSAGE_BYTES,
    BackupRun,
    Desired,
    ErrorMsg,
    ExecOpen,
    Heartbeat,
    Hello,
    InfoMsg,
    LogsOpen,
    NodeInfoWire,
    RestoreRun,
    StatusMsg,
    StreamCancel,
    StreamCredit,
    StreamInput,
    StreamResize,
    VolumeOpen,
    Welcome,
    master_data_frame,
    master_message,
)

__all__ = ["AgentConfig", "run_agent", "tls_context", "websocket_url"]

log = logging.getLogger("moorage.agent")

INFO_POLL = 2.0
CONVERGE_INTERVAL = 5.0
BACKOFF_START = 0.5
BACKOFF_MAX = 5.0


@dataclass(frozen=True, slots=True)
class AgentConfig:
    masters: tuple[str, ...]  # one URL, or several masters of one store (or one balancer's)
    token: str | None  # the grid's join token; not needed once the node has its credential
    data_dir: Path
    name: str = field(default_factory=socket.gethostname)
    docker_host: str | None = None
    labels: tuple[str, ...] = ()
    plugin_dir: Path | None = Path("/run/docker/plugins")
    ca: Path | None = None  # verify a TLS master against this CA bundle (PEM) only
    restic: str | None = None  # the restic binary backup jobs run (default: the one on PATH)
    helper_image: str = DEFAULT_HELPER_IMAGE  # helper containers that read and write volume data


def tls_context(ca: Path | None) -> ssl.SSLContext:
    """Verify the master's certificate and host name: against ``ca`` if given, else the system CAs."""
    return ssl.create_default_context(cafile=str(ca) if ca is not None else None)


def websocket_url(master: str) -> str:
    base = master.rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            return ws + base.removeprefix(http) + AGENT_PATH
    if base.startswith(("ws://", "wss://")):
        return base + AGENT_PATH
    return "ws://" + base + AGENT_PATH


class _NoToken(Exception):
    """Neither a node credential nor a join token to open the connection with."""


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.node_id = node_id(config.data_dir)
        self.credential = load_credential(config.data_dir)
        self.use_credential = self.credential is not None  # False after the master refused it
        self.engine = Engine(config.docker_host)
        self.stopping = asyncio.Event()
        self.desired: Desired | None = None
        self.converge_now = asyncio.Event()
        self.converger: Converger | None = None
        self.volume_data: VolumeData | None = None
        self.streams: AgentStreams | None = None  # the logs and exec streams of the current connection
        self.held = Held()  # containers a backup job stopped: convergence leaves them stopped
        # one convergence pass at a time, across connections: a connection's end cancels its
        # loop at once, but not a pass in its thread (stopping containers can take many seconds),
        # so the next connection's first pass waits for it instead of running beside it
        self.converging = threading.Lock()
        self.backups: AgentBackups | None = None  # backup and restore jobs of the current connection

    def node_info(self) -> NodeInfoWire:
        facts = self.engine.facts()
        return NodeInfoWire(
            engine_version=facts.version,
            cpus=facts.cpus,
            memory=facts.memory,
            drivers=volume_drivers(facts, self.config.plugin_dir),
        )

    async def _sweep(self) -> None:
        try:
            swept = await to_thread.run_sync(AgentBackups.sweep, self.engine)
            if swept:
                log.info("removed %d helper container(s) of backup jobs a previous run left", swept)
        except EngineError as err:
            log.warning("could not look for leftover backup helpers: %s", err.message)

    async def run(self) -> None:
        await self._sweep()
        backoff = BACKOFF_START
        turn = 0
        while not self.stopping.is_set():
            master = self.config.masters[turn % len(self.config.masters)]
            turn += 1  # next time the next master: this one may be gone
            url = websocket_url(master)
            try:
                welcomed = await self._session(url, master)
                if welcomed:
                    backoff = BACKOFF_START
            except InvalidStatus as err:
                status = err.response.status_code
                if status in (401, 403):
                    self._refused(status)
                else:
                    log.warning("master answered HTTP %s to the agent connection", status)
            except InvalidURI as err:
                log.error("--master %s is not a usable URL: %s", master, err)
                return
            except ssl.SSLCertVerificationError as err:
                log.error(
                    "the master's TLS certificate is not trusted: %s; pass --ca FILE with the CA "
                    "that signed it (or fix the certificate's host name)",
                    err.verify_message or err,
                )
            except _NoToken:
                log.error(
                    "this node has no credential yet and no join token was given: pass --token-file F "
                    "or set MOORAGE_JOIN_TOKEN ('moorage grid token --rotate' makes one)"
                )
            except (OSError, WebSocketException, TimeoutError) as err:
                log.warning("cannot reach master at %s: %s", master, err)
            except EngineError as err:
                log.warning("%s", err.message)
            if self.stopping.is_set():
                break
            delay = backoff * (0.75 + random.random() / 2)
            log.info("reconnecting in %.1fs", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)
            backoff = min(backoff * 2, BACKOFF_MAX)

    def _bearer(self) -> str:
        if self.use_credential and self.credential:
            return self.credential
        if self.config.token:
            return self.config.token
        if self.credential:  # refused before, but it is all there is: try it again
            self.use_credential = True
            return self.credential
        raise _NoToken

    def _refused(self, status: int) -> None:
        if self.use_credential and self.credential:
            if self.config.token:
                log.warning(
                    "master refused this node's credential (HTTP %s): was the node removed? "
                    "joining again with the join token, as a new node",
                    status,
                )
            else:
                log.error(
                    "master refused this node's credential (HTTP %s): was the node removed? "
                    "give the grid's join token (--token-file F or MOORAGE_JOIN_TOKEN) to join again",
                    status,
                )
            self.use_credential = False
            return
        log.error(
            "master refused the join token (HTTP %s); check --token-file/MOORAGE_JOIN_TOKEN "
            "('moorage grid token --rotate' makes a new one)",
            status,
        )
        self.use_credential = self.credential is not None

    async def _session(self, url: str, master: str) -> bool:
        info = await to_thread.run_sync(self.node_info)
        headers = {"Authorization": f"Bearer {self._bearer()}"}
        tls = tls_context(self.config.ca) if url.startswith("wss://") else None
        # no permessage-deflate: a volume move's data (random-looking, or compressed already)
        # does not shrink, and deflating it cost the agent and the master most of their CPU
        async with connect(
            url,
            additional_headers=headers,
            open_timeout=10,
            max_size=MAX_MESSAGE_BYTES,
            ssl=tls,
            compression=None,
        ) as ws:
            hello = Hello(
                node_id=self.node_id,
                name=self.config.name,
                labels=list(self.config.labels),
                info=info,
                agent_version=__version__,
                binary_data=True,
            )
            await ws.send(hello.model_dump_json())
            reply = master_message(await asyncio.wait_for(ws.recv(), 15))
            if isinstance(reply, ErrorMsg):
                log.error("master refused this node: %s", reply.message)
                return False
            if not isinstance(reply, Welcome):
                log.error("master did not welcome this node; got %s", reply.type)
                return False
            if reply.credential is not None:
                await to_thread.run_sync(save_credential, self.config.data_dir, reply.credential)
                self.credential, self.use_credential = reply.credential, True
                log.info(
                    "master issued this node its credential, kept in %s (mode 0600)",
                    self.config.data_dir / CREDENTIAL_FILE,
                )
            if self.converger is None or self.converger.grid != reply.grid:
                self.converger = Converger(Containers(self.engine), reply.grid, held=self.held)
            log.info("connected to %s as node %s in grid %s", master, reply.name, reply.grid)
            if self.volume_data is None:
                self.volume_data = VolumeData(DockerHelpers(self.engine), self.config.helper_image)
                with contextlib.suppress(EngineError):  # helpers a previous run left (it died mid-move)
                    left = await to_thread.run_sync(self.volume_data.remove_leftovers)
                    if left:
                        log.info("removed %d helper containers left by a previous run", left)
            self.streams = AgentStreams(
                DockerIO(self.engine),
                _sender(ws, asyncio.get_running_loop()),
                volumes=self.volume_data,
                binary_data=reply.binary_data,
            )
            self.backups = AgentBackups(
                self.engine,
                _sender(ws, asyncio.get_running_loop()),
                self.config.data_dir,
                grid=reply.grid,
                docker_host=self.config.docker_host,
                restic=self.config.restic,
                held=self.held,
            )
            tasks = [
                asyncio.create_task(self._heartbeats(ws, reply.heartbeat_interval)),
                asyncio.create_task(self._watch_info(ws, info)),
                asyncio.create_task(self._receive(ws)),
                asyncio.create_task(self._converge_loop(ws)),
                asyncio.create_task(self.stopping.wait()),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if not task.cancelled() and (exc := task.exception()) is not None:
                        if isinstance(exc, ConnectionClosed):
                            log.warning("connection to master closed: %s", exc)
                        else:
                            raise exc
            finally:
                self.streams.close_all()  # no logs or exec stream outlives its connection
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return True

    async def _heartbeats(self, ws: ClientConnection, interval: float) -> None:
        beat = Heartbeat().model_dump_json()
        while True:
            await ws.send(beat)
            await asyncio.sleep(interval)

    async def _watch_info(self, ws: ClientConnection, sent: NodeInfoWire) -> None:
        while True:
            await asyncio.sleep(INFO_POLL)
            try:
                info = await to_thread.run_sync(self.node_info)
            except EngineError as err:
                log.warning("%s", err.message)
                continue
            if info != sent:
                await ws.send(InfoMsg(info=info).model_dump_json())
                sent = info
                log.info("reported changed node info: drivers %s", [d.name for d in info.drivers])

    async def _receive(self, ws: ClientConnection) -> None:
        async for raw in ws:
            if isinstance(raw, bytes):  # a data frame (only once the welcome said so)
                if self.streams is None or not self.streams.binary_data:
                    log.warning("ignoring a binary frame from the master (this connection has none)")
                    continue
                try:
                    data = master_data_frame(raw)
                except ValueError as err:
                    log.warning("ignoring a bad data frame from the master: %s", err)
                    continue
                for reply in self.streams.handle(data):
                    await ws.send(reply)
                continue
            try:
                msg = master_message(raw)
            except ValidationError:
                log.warning("ignoring a message from the master this agent does not understand")
                continue
            if isinstance(msg, ErrorMsg):
                log.error("master: %s", msg.message)
            elif isinstance(msg, Desired):
                self.desired = msg
                self.converge_now.set()
            elif isinstance(msg, BackupRun | RestoreRun) and self.backups is not None:
                self.backups.handle(msg)
            elif isinstance(msg, _STREAM_MESSAGES) and self.streams is not None:
                for reply in self.streams.handle(msg):
                    await ws.send(reply)

    async def _converge_loop(self, ws: ClientConnection) -> None:
        """Converge on every new desired state, and every CONVERGE_INTERVAL seconds anyway. A new
        desired state is always answered by a report (changed or not, naming its ``seq``): the
        master judges a deployment only by reports made after it asked."""
        last: StatusMsg | None = None
        answered: int | None = None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.converge_now.wait(), CONVERGE_INTERVAL)
            self.converge_now.clear()
            if self.desired is None or self.converger is None:
                continue
            converger, desired = self.converger, self.desired
            try:
                # abandoned, not awaited, when the connection ends: reconnecting does not wait for
                # it, and the next pass does (``converging``)
                status = await to_thread.run_sync(self._converge, converger, desired, abandon_on_cancel=True)
            except EngineError as err:
                log.warning("convergence failed: %s", err.message)
                continue
            if status != last or desired.seq != answered:
                await ws.send(status.model_copy(update={"desired_seq": desired.seq}).model_dump_json())
                last, answered = status, desired.seq

    def _converge(self, converger: Converger, desired: Desired) -> StatusMsg:
        """One pass, after any pass still running (see ``converging``)."""
        with self.converging:
            return converger.converge(desired)


_STREAM_MESSAGES = (LogsOpen, ExecOpen, VolumeOpen, StreamInput, StreamResize, StreamCancel, StreamCredit)


def _sender(ws: ClientConnection, loop: asyncio.AbstractEventLoop) -> Callable[[str | bytes], None]:
    """What a stream's thread sends with (JSON text, or a binary data frame): blocks until the
    frame is written on the loop."""

    def send(frame: str | bytes) -> None:
        asyncio.run_coroutine_threadsafe(ws.send(frame), loop).result()

    return send


def run_agent(config: AgentConfig) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    agent = Agent(config)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, agent.stopping.set)
        await agent.run()
        agent.engine.close()
        log.info("agent stopped")

    asyncio.run(main())

"""The agent hub: every agent's WebSocket, its heartbeats, and node status transitions.

An agent dials in to ``/v1/agent`` with its grid's join token and says ``hello``; the hub registers
the node (online) and answers ``welcome``. Heartbeats only touch memory. A node goes ``offline``
when its connection closes or when ``missed_heartbeats`` intervals pass without a word; only
transitions are written to the store.
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

from moorage.errors import MoorageError
from moorage.master.desired import desired_for_node
from moorage.master.settings import MasterSettings
from moorage.model.node import NodeStatus
from moorage.protocol import Desired, ErrorMsg, Heartbeat, Hello, InfoMsg, StatusMsg, Welcome, agent_message
from moorage.store.database import Database
from moorage.store.grids import grid_by_id, grid_by_join_token
from moorage.store.instances import apply_instance_status, apply_volume_status
from moorage.store.nodes import register_node, set_info, set_status

__all__ = ["AgentConnection", "AgentHub"]

log = logging.getLogger("moorage.master.hub")

HELLO_TIMEOUT = 15.0
HEARTBEAT = Heartbeat().model_dump_json()  # what agents send every interval, byte for byte


@dataclass(eq=False)
class AgentConnection:
    node_id: str
    name: str
    grid: str
    websocket: WebSocket
    last_seen: float = field(default_factory=time.monotonic)
    last_seen_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> None:
        async with self.send_lock:
            await self.websocket.send_text(text)

    def touch(self) -> None:
        self.last_seen = time.monotonic()
        self.last_seen_at = datetime.now(UTC)


class AgentHub:
    """``on_status``: agents reported a change (or a node went away), rollouts look again.
    ``on_nodes_changed``: a node came online or changed, or a Docker volume was removed, so
    instances waiting for a node may place. ``app.py`` passes the deployer's ``Wakeups``."""

    def __init__(
        self,
        db: Database,
        settings: MasterSettings,
        on_status: Callable[[], Awaitable[None]],
        on_nodes_changed: Callable[[], None],
    ) -> None:
        self.db = db
        self.settings = settings
        self.connections: dict[str, AgentConnection] = {}
        self._monitor: asyncio.Task[None] | None = None
        self._on_status = on_status
        self._on_nodes_changed = on_nodes_changed

    def is_connected(self, node_id: str) -> bool:
        return node_id in self.connections

    def connected_ids(self) -> set[str]:
        return set(self.connections)

    async def _wake(self) -> None:
        await self._on_status()

    def _nodes_changed(self) -> None:
        self._on_nodes_changed()

    async def push_desired(self, node_ids: Iterable[str]) -> None:
        """Send each connected node among ``node_ids`` its whole desired state."""
        for node_id in sorted(set(node_ids)):
            conn = self.connections.get(node_id)
            if conn is None:
                continue
            desired = await to_thread.run_sync(self._desired, conn.node_id, conn.grid)
            payload = desired.model_dump_json()  # outside the try: a bug here must not pass for a lost link
            try:
                await conn.send(payload)
            except Exception as err:  # the connection is going away; it gets the state on reconnect
                log.info("could not send desired state to %s: %s", conn.name, err)

    async def start(self) -> None:
        self._monitor = asyncio.create_task(self._watch_heartbeats(), name="heartbeat-monitor")

    async def stop(self) -> None:
        if self._monitor is not None:
            self._monitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._monitor
        for conn in list(self.connections.values()):
            with contextlib.suppress(Exception):
                await conn.websocket.close(code=1001)

    async def serve(self, websocket: WebSocket, token: str | None) -> None:
        """Run one agent's connection from handshake to close."""
        grid_row = await to_thread.run_sync(self._grid_for_token, token)
        if grid_row is None:
            # Refuse the handshake: the agent sees HTTP 403 and says the token is wrong.
            await websocket.close(code=1008, reason="join token not accepted")
            return
        grid_name, grid_id = grid_row
        await websocket.accept()
        conn: AgentConnection | None = None
        try:
            hello = await asyncio.wait_for(self._receive_hello(websocket), HELLO_TIMEOUT)
            if hello is None:
                return
            try:
                await to_thread.run_sync(self._register, grid_id, hello)
            except MoorageError as err:
                await websocket.send_text(ErrorMsg(message=err.message).model_dump_json())
                await websocket.close(code=1008)
                return
            conn = AgentConnection(
                node_id=hello.node_id, name=hello.name, grid=grid_name, websocket=websocket
            )
            previous = self.connections.get(hello.node_id)
            self.connections[hello.node_id] = conn
            if previous is not None:
                with contextlib.suppress(Exception):
                    await previous.websocket.close(code=1000, reason="replaced by a new connection")
            log.info("node %s (%s) online in grid %s", hello.name, hello.node_id, grid_name)
            welcome = Welcome(
                node_id=hello.node_id,
                name=hello.name,
                grid=grid_name,
                heartbeat_interval=self.settings.heartbeat_interval,
            )
            await conn.send(welcome.model_dump_json())
            await self.push_desired([conn.node_id])
            self._nodes_changed()
            await self._receive_loop(conn)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            if conn is not None and self.connections.get(conn.node_id) is conn:
                del self.connections[conn.node_id]
                await to_thread.run_sync(
                    self._set_status, conn.node_id, NodeStatus.OFFLINE, conn.last_seen_at
                )
                log.info("node %s (%s) offline: connection closed", conn.name, conn.node_id)
                await self._wake()

    async def _receive_hello(self, websocket: WebSocket) -> Hello | None:
        raw = await websocket.receive_text()
        try:
            msg = agent_message(raw)
        except ValidationError as err:
            await websocket.send_text(
                ErrorMsg(message=f"First message must be a valid hello: {err}").model_dump_json()
            )
            await websocket.close(code=1008)
            return None
        if not isinstance(msg, Hello):
            await websocket.send_text(ErrorMsg(message="First message must be hello").model_dump_json())
            await websocket.close(code=1008)
            return None
        return msg

    async def _receive_loop(self, conn: AgentConnection) -> None:
        while True:
            raw = await conn.websocket.receive_text()
            conn.touch()
            if raw == HEARTBEAT:  # most messages: nothing to parse, nothing to store
                continue
            try:
                msg = agent_message(raw)
            except ValidationError as err:
                log.warning("node %s sent a message the master does not understand: %s", conn.name, err)
                continue
            if isinstance(msg, Heartbeat):
                continue
            if isinstance(msg, InfoMsg):
                await to_thread.run_sync(self._set_info, conn.node_id, msg)
                self._nodes_changed()  # drivers or resources may have changed
            elif isinstance(msg, StatusMsg):
                changed = await to_thread.run_sync(self._set_status_report, conn.node_id, msg)
                if changed:
                    await self._wake()
                if any(v.state == "removed" for v in msg.volumes):
                    self._nodes_changed()  # the Docker volume name is free on this node again

    async def _watch_heartbeats(self) -> None:
        period = max(0.2, self.settings.heartbeat_interval / 2)
        while True:
            await asyncio.sleep(period)
            deadline = time.monotonic() - self.settings.node_timeout
            for conn in [c for c in self.connections.values() if c.last_seen < deadline]:
                log.info("node %s (%s) offline: missed heartbeats", conn.name, conn.node_id)
                del self.connections[conn.node_id]
                await to_thread.run_sync(
                    self._set_status, conn.node_id, NodeStatus.OFFLINE, conn.last_seen_at
                )
                with contextlib.suppress(Exception):
                    await conn.websocket.close(code=1001, reason="missed heartbeats")
                await self._wake()

    # -- store calls, run in a worker thread -------------------------------------------------

    def _grid_for_token(self, token: str | None) -> tuple[str, int] | None:
        if not token:
            return None
        with self.db.session() as session:
            row = grid_by_join_token(session, token)
            return None if row is None else (row.name, row.id)

    def _register(self, grid_id: int, hello: Hello) -> None:
        with self.db.session() as session:
            grid_row = grid_by_id(session, grid_id)
            if grid_row is None:
                raise MoorageError("This grid was removed; join the agent to an existing grid")
            register_node(
                session, grid_row, hello.node_id, hello.name, hello.labels, hello.info.model_dump(mode="json")
            )

    def _set_info(self, node_id: str, msg: InfoMsg) -> None:
        with self.db.session() as session:
            set_info(session, node_id, msg.info.model_dump(mode="json"))

    def _desired(self, node_id: str, grid: str) -> Desired:
        with self.db.session() as session:
            return desired_for_node(session, node_id, grid)

    def _set_status_report(self, node_id: str, msg: StatusMsg) -> int:
        with self.db.session() as session:
            return apply_instance_status(session, node_id, msg.instances) + apply_volume_status(
                session, node_id, msg.volumes
            )

    def _set_status(self, node_id: str, status: NodeStatus, last_seen_at: datetime) -> None:
        with self.db.session() as session:
            set_status(session, node_id, status, last_seen_at)

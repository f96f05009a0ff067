"""An agent without a Docker Engine: speaks the real protocol over a real WebSocket.

For API tests of the hub (registration, heartbeats, offline detection). The real agent, on real
engines, is exercised by the end-to-end tests. Given an ``engine`` (``FakeEngine``), a node also
serves logs and exec with the agent's own stream code (``moorage.agent.streams``): each desired
container is there, running, in that engine.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from typing import Any

from pydantic import ValidationError
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection, connect

from moorage.agent.runner import websocket_url
from moorage.agent.streams import AgentStreams
from moorage.protocol import master_message
from tests.support.fake_engine import FakeEngine

STREAM_TYPES = {"logs", "exec", "volume", "stdin", "resize", "cancel", "credit"}


def hello(name: str, node_id: str | None = None, labels: list[str] | None = None, drivers=None) -> dict:
    return {
        "type": "hello",
        "node_id": node_id or uuid.uuid4().hex,
        "name": name,
        "labels": labels or [],
        "info": {
            "engine_version": "20.10.24",
            "cpus": 2,
            "memory": 2**30,
            "drivers": drivers if drivers is not None else [{"name": "local", "scope": "local"}],
        },
    }


def join(
    master_url: str, token: str, message: dict, ssl_context: ssl.SSLContext | None = None
) -> tuple[ClientConnection, dict]:
    ws = connect(
        websocket_url(master_url), additional_headers={"Authorization": f"Bearer {token}"}, ssl=ssl_context
    )
    ws.send(json.dumps(message))
    return ws, json.loads(ws.recv(timeout=10))


class FakeNode(threading.Thread):
    """A fake agent that stays connected: heartbeats, takes every desired state and, while
    ``reporting`` is set, reports each desired container running with its config hash (a fresh
    report after each desired state), and with ``report_volumes`` each desired Docker volume
    present. Reconnects as the same node when the master restarts."""

    def __init__(
        self,
        master_url: str,
        token: str,
        name: str,
        *,
        reporting: bool = True,
        report_volumes: bool = False,
        engine: FakeEngine | None = None,
        labels: list[str] | None = None,
        drivers: list[dict] | None = None,
        volume_data: Any = None,
    ) -> None:
        super().__init__(name=f"fake-{name}", daemon=True)
        self.labels = labels
        self.drivers = drivers
        self.volume_data = volume_data  # serves volume streams (agent/volume_data.VolumeData's calls)
        self.master_url = master_url
        self.token = token
        self.node_name = name
        self.node_id = uuid.uuid4().hex
        self.credential: str | None = None
        self.reporting = threading.Event()
        if reporting:
            self.reporting.set()
        self.stopping = threading.Event()
        self.containers: list[dict] = []  # of the last desired state
        self.volumes: list[dict] = []  # of the last desired state
        self.report_volumes = report_volumes
        self.desired_count = 0
        self.welcomes = 0
        self.engine = engine
        self.streams: AgentStreams | None = None  # of the current connection
        self.stream_messages: list[dict] = []  # every stream message the master sent

    def __enter__(self) -> FakeNode:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        self.join(timeout=10)

    def run(self) -> None:
        while not self.stopping.is_set():
            try:  # the node's own credential once it has one, as the real agent does
                bearer = self.credential or self.token
                ws, welcome = join(
                    self.master_url, bearer, hello(self.node_name, self.node_id, self.labels, self.drivers)
                )
            except (OSError, WebSocketException, TimeoutError):
                self.stopping.wait(0.2)
                continue
            if welcome.get("type") == "welcome":
                self.credential = welcome.get("credential") or self.credential
                self.welcomes += 1
                self._session(ws)
            ws.close()

    def _session(self, ws: ClientConnection) -> None:
        lock = threading.Lock()  # the stream threads and this one send: one frame at a time
        real_send = ws.send

        def send(text: str | bytes) -> None:
            with lock:
                real_send(text)

        ws.send = send  # type: ignore[method-assign]
        if self.engine is not None or self.volume_data is not None:
            self.streams = AgentStreams(self.engine or FakeEngine(), send, volumes=self.volume_data)
        try:
            self._converse(ws)
        finally:
            if self.streams is not None:
                self.streams.close_all()

    def _converse(self, ws: ClientConnection) -> None:
        beat, fresh = 0.0, False
        while not self.stopping.is_set():
            try:
                raw = ws.recv(timeout=0.2)
                message = json.loads(raw)
                if message["type"] == "desired":
                    self.containers = message["containers"]
                    self.volumes = message.get("volumes", [])
                    self.desired_count += 1
                    self._run_containers()
                    fresh = True
                elif message["type"] in STREAM_TYPES:
                    self.stream_messages.append(message)
                    self._stream(ws, raw)
            except TimeoutError:
                pass
            except (ConnectionClosed, OSError):
                return
            try:
                if fresh and self.reporting.is_set():
                    status: dict = {"type": "status", "instances": [_running(c) for c in self.containers]}
                    if self.report_volumes:
                        status["volumes"] = [_present(v) for v in self.volumes]
                    ws.send(json.dumps(status))
                    fresh = False
                if time.monotonic() - beat > 0.3:
                    ws.send(json.dumps({"type": "heartbeat"}))
                    beat = time.monotonic()
            except (ConnectionClosed, OSError):
                return

    def _run_containers(self) -> None:
        if self.engine is not None:
            for container in self.containers:
                if self.engine.named(container["name"]) is None:
                    self.engine.add_container(container["name"], image=container["image"])

    def _stream(self, ws: ClientConnection, raw: str | bytes) -> None:
        if self.streams is None:
            return
        try:
            msg = master_message(raw)
        except ValidationError:
            return
        for reply in self.streams.handle(msg):  # type: ignore[arg-type]
            ws.send(reply)


def _running(container: dict) -> dict:
    return {
        "service_id": container["service_id"],
        "instance": container["instance"],
        "state": "running",
        "config_hash": container["config_hash"],
        "started_at": "2026-01-01T00:00:00+00:00",
    }


def _present(volume: dict) -> dict:
    return {"volume_instance_id": volume["volume_instance_id"], "name": volume["name"], "state": "present"}

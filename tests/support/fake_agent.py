"""An agent without a Docker Engine: speaks the real protocol over a real WebSocket.

For API tests of the hub (registration, heartbeats, offline detection). The real agent, on real
engines, is exercised by the end-to-end tests.
"""

from __future__ import annotations

import json
import uuid

from websockets.sync.client import ClientConnection, connect

from moorage.agent.runner import websocket_url


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


def join(master_url: str, token: str, message: dict) -> tuple[ClientConnection, dict]:
    ws = connect(websocket_url(master_url), additional_headers={"Authorization": f"Bearer {token}"})
    ws.send(json.dumps(message))
    return ws, json.loads(ws.recv(timeout=10))

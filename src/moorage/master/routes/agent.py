"""/v1/agent: the WebSocket agents dial in to; /v1/agent-links/{node_id}: the other masters' links
to the agents connected here (``master/agent_links.py``)."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from moorage.master.agent_links import LINK_PATH, MASTER_HEADER
from moorage.master.auth import bearer_token
from moorage.master.state import MasterState
from moorage.protocol import AGENT_PATH

__all__ = ["router"]

router = APIRouter(tags=["agents"])


@router.websocket(AGENT_PATH)
async def agent_socket(websocket: WebSocket) -> None:
    state: MasterState = websocket.app.state.moorage
    await state.hub.serve(websocket, bearer_token(websocket.headers.get("authorization")))


@router.websocket(LINK_PATH)
async def agent_link(websocket: WebSocket, node_id: str) -> None:
    state: MasterState = websocket.app.state.moorage
    key = bearer_token(websocket.headers.get("authorization"))
    await state.hub.serve_link(websocket, node_id, websocket.headers.get(MASTER_HEADER), key)

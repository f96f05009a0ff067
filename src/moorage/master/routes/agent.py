"""/v1/agent: the WebSocket agents dial in to."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from moorage.master.auth import bearer_token
from moorage.master.state import MasterState
from moorage.protocol import AGENT_PATH

__all__ = ["router"]

router = APIRouter(tags=["agents"])


@router.websocket(AGENT_PATH)
async def agent_socket(websocket: WebSocket) -> None:
    state: MasterState = websocket.app.state.moorage
    await state.hub.serve(websocket, bearer_token(websocket.headers.get("authorization")))

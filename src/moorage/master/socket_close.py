"""Closing a WebSocket the master serves, with a reason that fits the frame: the agent hub's
connections and the links of other masters (``master/agent_links.py``) close alike."""

from __future__ import annotations

import contextlib

from fastapi import WebSocket

__all__ = ["close_reason", "close_socket"]


def close_reason(reason: str) -> str:
    """A WebSocket close reason holds at most 123 bytes of UTF-8."""
    encoded = reason.encode()
    if len(encoded) <= 123:
        return reason
    return encoded[:120].decode(errors="ignore") + "..."


async def close_socket(websocket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # it may be closed already: nothing more to tell
        await websocket.close(code=code, reason=close_reason(reason))

"""Logs and exec of instances whose node's agent is connected to another master of the store.

With several masters behind a load balancer, a client's request lands on any of them, while a
node's agent is connected to one. The master that took the request passes it on to the master
holding the agent (its URL as the store's ``masters`` table has it, the client's own token),
marked with ``FORWARDED``: that master answers from its own agents only, never passing it on
again (one hop at most, no loops).

    logs   one ``GET .../logs?instance=N`` per such instance; its NDJSON lines (already
           instance-prefixed) are merged with this master's own (``LogFeed``); a refusal there
           becomes that instance's ``error`` line, as a refusal of an agent here does
    exec   the client's WebSocket piped frame for frame to that master's exec socket; what it
           refuses before it accepts (409, 404) is refused here with the same status and words

The peer's certificate (an ``https://`` master) is checked against the system's CAs and the
certificate chain this master serves (masters behind one balancer usually share it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import WebSocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from moorage.errors import Conflict, MoorageError

__all__ = [
    "FORWARDED",
    "PeerMaster",
    "forwarded_logs",
    "open_peer_exec",
    "peer_ssl",
    "pipe_to_peer",
    "ws_url",
]

FORWARDED = "x-moorage-forwarded"  # the id of the master that passed the request on
CONNECT_TIMEOUT = 5.0
START_TIMEOUT = 20.0  # the peer waits up to its own agents' start timeout (15 s) before it answers


@dataclass(frozen=True, slots=True)
class PeerMaster:
    """Another live master of the store, holding a node's agent."""

    id: str
    name: str
    url: str


def peer_ssl(own_chain: Path | None) -> ssl.SSLContext:
    """How an ``https://`` peer's certificate is checked (see the module)."""
    context = ssl.create_default_context()
    if own_chain is not None:
        with contextlib.suppress(OSError, ssl.SSLError):
            context.load_verify_locations(cafile=str(own_chain))
    return context


def _headers(authorization: str | None, me: str) -> dict[str, str]:
    headers = {FORWARDED: me}
    if authorization:
        headers["authorization"] = authorization
    return headers


def _error_of(body: bytes | None) -> object:
    """The ``error`` of a master's JSON answer; None if the body is not one."""
    try:
        return json.loads(body or b"{}").get("error")
    except (ValueError, AttributeError):
        return None


def _refusal(response_body: bytes, status: int) -> str:
    said = _error_of(response_body)
    if isinstance(said, dict):
        said = "; ".join(f"{k}: {v}" for k, v in said.items())
    return str(said or f"HTTP {status}")


# -- logs ----------------------------------------------------------------------------------------


class ForwardedLog:
    """One instance's logs from the master holding its node's agent: NDJSON lines as they come."""

    def __init__(self, client: httpx.AsyncClient, response: httpx.Response) -> None:
        self._client = client
        self._response = response

    async def lines(self) -> AsyncIterator[bytes]:
        async for line in self._response.aiter_lines():
            if line:
                yield (line + "\n").encode()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._response.aclose()
        with contextlib.suppress(Exception):
            await self._client.aclose()


async def forwarded_logs(
    peer: PeerMaster,
    path: str,
    params: dict[str, Any],
    authorization: str | None,
    me: str,
    context: ssl.SSLContext,
) -> ForwardedLog:
    """Start one instance's logs at ``peer``; ``Conflict`` with what it said when it refused."""
    client = httpx.AsyncClient(
        base_url=peer.url,
        verify=context,
        timeout=httpx.Timeout(START_TIMEOUT, connect=CONNECT_TIMEOUT, read=None),
    )
    try:
        request = client.build_request("GET", path, params=params, headers=_headers(authorization, me))
        response = await asyncio.wait_for(client.send(request, stream=True), START_TIMEOUT)
    except (httpx.HTTPError, TimeoutError, OSError) as err:
        await client.aclose()
        raise Conflict(f"master {peer.name}, which holds its node's agent, did not answer: {err}") from err
    except BaseException:
        await client.aclose()
        raise
    if response.status_code != 200:
        body = await response.aread()
        await response.aclose()
        await client.aclose()
        raise Conflict(f"through master {peer.name}: {_refusal(body, response.status_code)}")
    return ForwardedLog(client, response)


# -- exec ----------------------------------------------------------------------------------------


def ws_url(peer: PeerMaster, path: str, query: list[tuple[str, str]]) -> str:
    base = peer.url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base.removeprefix("https://")
    elif base.startswith("http://"):
        base = "ws://" + base.removeprefix("http://")
    return f"{base}{path}?{urlencode(query)}"


class PeerRefused(MoorageError):
    """The peer refused the exec before accepting it: its status and words, to pass on as they are."""

    def __init__(self, status: int, payload: object) -> None:
        super().__init__(str(payload))
        self.status = status
        self._payload = payload

    def payload(self) -> object:
        return self._payload


async def open_peer_exec(
    peer: PeerMaster,
    path: str,
    query: list[tuple[str, str]],
    authorization: str | None,
    me: str,
    context: ssl.SSLContext,
) -> ClientConnection:
    """The peer's exec socket, accepted (the command started there); ``PeerRefused`` with the
    peer's status and error when it refused, ``Conflict`` when it could not be reached."""
    url = ws_url(peer, path, query)
    try:
        return await asyncio.wait_for(
            connect(
                url,
                additional_headers=_headers(authorization, me),
                ssl=context if url.startswith("wss://") else None,
                open_timeout=START_TIMEOUT,
                max_size=None,
            ),
            START_TIMEOUT + 1,
        )
    except InvalidStatus as err:
        status = err.response.status_code
        payload = _error_of(err.response.body)
        raise PeerRefused(status, payload or f"master {peer.name} answered {status}") from err
    except (WebSocketException, OSError, TimeoutError) as err:
        raise Conflict(f"master {peer.name}, which holds its node's agent, did not answer: {err}") from err


async def pipe_to_peer(websocket: WebSocket, peer: ClientConnection) -> None:
    """Frames both ways between the client's (accepted) socket and the peer's, until either ends;
    the peer's close (after its last ``exit`` or ``error`` frame) closes the client's alike."""

    async def up() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            await peer.send(data if data is not None else (message.get("text") or ""))

    async def down() -> None:
        with contextlib.suppress(ConnectionClosed):
            async for frame in peer:
                if isinstance(frame, bytes):
                    await websocket.send_bytes(frame)
                else:
                    await websocket.send_text(frame)

    tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        if tasks[1].done():  # the peer ended: end the client's socket as it did
            code = peer.close_code or 1000
            reason = peer.close_reason or ""
            with contextlib.suppress(Exception):
                await websocket.close(code if code != 1006 else 1011, reason)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await peer.close()

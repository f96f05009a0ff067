"""What the master checks of a request before it reads the body: the token, the size, the pace.

An ASGI middleware in front of the API. For a ``/v1`` request that carries a body
(``Content-Length`` above 0, or ``Transfer-Encoding: chunked``):

1. the bearer token is checked first (``moorage.master.auth.require_admin``): no token, or an
   unknown one, is a 401 (a join token a 403) answered at once, without reading a byte of the body;
   an accepted token is kept in the request's state, where the route's own check finds it (one
   look-up of the token per request);
2. a ``Content-Length`` over ``MAX_BODY_BYTES`` is a 413 at once;
3. while the route reads the body, bytes are counted (a chunked body has no length to check up
   front): past ``MAX_BODY_BYTES`` the read stops with a 413; a body not complete within
   ``BODY_TIMEOUT`` seconds is a 408, so a client that trickles a body cannot hold a worker.

A large body from a stranger therefore costs the master neither memory nor time. (Slow or endless
request headers are the HTTP server's to time out: see ``moorage.master.server``.)
"""

from __future__ import annotations

import math

import anyio
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from moorage.errors import MoorageError
from moorage.master.auth import require_admin

__all__ = ["BODY_TIMEOUT", "MAX_BODY_BYTES", "RequestLimits"]

MAX_BODY_BYTES = 8 * 1024 * 1024
"""The largest request body the API reads (8 MiB: a stack of 1,000 services with its source fits)."""

BODY_TIMEOUT = 30.0
"""Seconds a client has to send a whole request body once the route starts reading it."""

_TOO_LARGE = (
    f"The request body is larger than {MAX_BODY_BYTES // (1024 * 1024)} MiB, the most this master reads; "
    "split the change into smaller requests"
)


class RequestLimits:
    """The middleware (see the module)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        length_header = headers.get("content-length")
        length = _length(length_header)
        if length_header is not None and length is None:
            await _answer(scope, receive, send, 400, "Content-Length is not a number of bytes")
            return
        if not chunked and not length:
            await self.app(scope, receive, send)
            return
        try:
            await require_admin(Request(scope), scope["app"].state.moorage)
        except MoorageError as error:
            await _answer(scope, receive, send, error.status, error.payload())
            return
        if length is not None and length > MAX_BODY_BYTES:
            await _answer(scope, receive, send, 413, _TOO_LARGE)
            return
        await self.app(scope, _limited(receive), send)


def _length(header: str | None) -> int | None:
    if header is None or not header.strip().isdigit():
        return None
    return int(header)


def _limited(receive: Receive) -> Receive:
    """``receive`` that counts the body's bytes and gives up past the limit or the deadline."""
    received = 0
    deadline = math.inf
    complete = False

    async def limited() -> Message:
        nonlocal received, deadline, complete
        if complete:  # after the body: only the disconnect, whenever it comes
            return await receive()
        if deadline == math.inf:
            deadline = anyio.current_time() + BODY_TIMEOUT
        with anyio.move_on_after(max(0.0, deadline - anyio.current_time())) as waited:
            message = await receive()
        if waited.cancelled_caught:
            raise HTTPException(
                408, f"The request body did not arrive within {BODY_TIMEOUT:.0f} s; send it in one go"
            )
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > MAX_BODY_BYTES:
                raise HTTPException(413, _TOO_LARGE)
            complete = not message.get("more_body", False)
        return message

    return limited


async def _answer(scope: Scope, receive: Receive, send: Send, status: int, error: object) -> None:
    # The connection closes after this answer: the body the client is still sending is not read.
    response = JSONResponse({"error": error}, status_code=status, headers={"Connection": "close"})
    await response(scope, receive, send)

"""Bearer tokens: admin tokens for the API; for agents, a grid's join token or a node's credential.

Principals (each secret is stored only as its SHA-256 hash):

    admin token        named, several (``/v1/tokens``)      the whole API
    grid join token    one per grid (rotate: POST token)   the agent socket, to admit a NEW node id
    node credential    one per node, issued at first join  the agent socket, as that node only

Agents are admitted in ``moorage.master.admission``. Every request's token is looked up in the store
once (an indexed read, no cache): a removed or rotated token stops working at the next request.
The verdict is kept on the request (``request.state``) for the rest of it: a request with a body
is checked by the request-limits middleware before its body is read
(``moorage.master.request_limits``), and the route's ``Admin`` dependency then takes that verdict
instead of looking the token up again; a request without a body is checked by the dependency alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from moorage.errors import Forbidden, Unauthorized
from moorage.master.state import MasterState, State
from moorage.store.grids import grid_by_join_token
from moorage.store.tokens import LAST_USED_PRECISION, AdminToken, admin_token_by_hash, hash_token, mark_used

__all__ = ["Actor", "Admin", "bearer_token", "check_admin", "require_admin"]

_VERDICT = "moorage_admin"  # the attribute of ``request.state`` that holds this request's verdict


@dataclass(frozen=True, slots=True)
class _Verdict:
    """An admin token accepted for this request: its hash (the token this request carries) and row."""

    digest: str
    token: AdminToken


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_admin(request: Request, state: State) -> AdminToken:
    """Every API request's check, on the event loop (``async``): one indexed read of the store
    (on the loop itself for SQLite, see ``Database.read``); ``last_used_at`` is written at most
    once a minute per token, on a worker thread. The admin token it accepted.

    Once per request: an accepted token is kept in ``request.state``, and a second check of the
    same request (the route's, after the middleware's) takes it without reading the store, if the
    request still carries that token (the console checks a cookie's token as a request of its own)."""
    return await check_admin(request, state)


async def check_admin(request: HTTPConnection, state: MasterState) -> AdminToken:
    """``require_admin`` for any connection: a request, or one of the API's WebSockets."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "Missing bearer token: send 'Authorization: Bearer TOKEN' (the admin token is in the master's "
            "data dir, admin.token), or run 'moorage login --url URL --token TOKEN'"
        )
    digest = hash_token(token)
    checked = getattr(request.state, _VERDICT, None)
    if isinstance(checked, _Verdict) and checked.digest == digest:
        return checked.token

    def kind(session: Session) -> AdminToken | str | None:
        found = admin_token_by_hash(session, digest)
        if found is not None:
            return found
        return "join" if grid_by_join_token(session, token) is not None else None

    found = await state.db.read(kind)
    if isinstance(found, AdminToken):
        now = datetime.now(UTC)
        if found.last_used_at is None or now - found.last_used_at >= LAST_USED_PRECISION:
            await state.db.run(lambda session: mark_used(session, found.id, now))
        setattr(request.state, _VERDICT, _Verdict(digest, found))
        return found
    if found == "join":
        raise Forbidden("This is a grid join token, for agents only; use an admin token for the API")
    raise Unauthorized("Token not accepted by this master; check MOORAGE_TOKEN or run 'moorage login' again")


Admin = Depends(require_admin)

Actor = Annotated[AdminToken, Depends(require_admin)]
"""The admin token a request was accepted with (the router's check, not a second look-up): a
route that records what a user did takes ``actor: Actor`` and names ``actor.name``."""

"""Bearer tokens: admin tokens for the API, a grid's join token for its agents."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from moorage.errors import Forbidden, Unauthorized
from moorage.master.state import State
from moorage.store.grids import grid_by_join_token
from moorage.store.tokens import hash_token, is_admin_token

__all__ = ["Admin", "bearer_token", "require_admin"]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def require_admin(request: Request, state: State) -> None:
    """Every API request's check, so it runs on the event loop (``async``): a known admin token is a
    set lookup; only a token not seen yet costs a store query, on a worker thread."""
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "Missing bearer token: send 'Authorization: Bearer TOKEN' (the admin token is in the master's "
            "data dir, admin.token), or run 'moorage login --url URL --token TOKEN'"
        )
    digest = hash_token(token)
    if digest in state.admin_token_hashes:
        return

    def kind(session: Session) -> Literal["admin", "join"] | None:
        if is_admin_token(session, token):
            return "admin"
        return "join" if grid_by_join_token(session, token) is not None else None

    found = await state.db.read(kind)
    if found == "admin":
        state.admin_token_hashes.add(digest)
        return
    if found == "join":
        raise Forbidden("This is a grid join token, for agents only; use an admin token for the API")
    raise Unauthorized("Token not accepted by this master; check MOORAGE_TOKEN or run 'moorage login' again")


Admin = Depends(require_admin)

"""Bearer tokens: admin tokens for the API, a grid's join token for its agents."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from moorage.errors import Forbidden, Unauthorized
from moorage.master.state import MasterState, master_state
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


def require_admin(request: Request, state: Annotated[MasterState, Depends(master_state)]) -> None:
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        raise Unauthorized(
            "Missing bearer token: send 'Authorization: Bearer TOKEN' (the admin token is in the master's "
            "data dir, admin.token), or run 'moorage login --url URL --token TOKEN'"
        )
    digest = hash_token(token)
    if digest in state.admin_token_hashes:
        return
    with state.db.session() as session:
        if is_admin_token(session, token):
            state.admin_token_hashes.add(digest)
            return
        if grid_by_join_token(session, token) is not None:
            raise Forbidden("This is a grid join token, for agents only; use an admin token for the API")
    raise Unauthorized("Token not accepted by this master; check MOORAGE_TOKEN or run 'moorage login' again")


Admin = Depends(require_admin)

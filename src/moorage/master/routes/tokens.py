"""/v1/tokens: the master's admin tokens, by name (one per person or CI).

``POST /v1/tokens`` ``{name}`` → 201 with the secret (shown only then); ``GET /v1/tokens`` →
``{"tokens": [{name, created_at, last_used_at}]}`` (never a secret); ``POST
/v1/tokens/{name}/rotate`` → a new secret for that name; ``DELETE /v1/tokens/{name}`` revokes it.
Each takes effect at the next request: the master looks every token up (no cache).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.master.auth import Actor
from moorage.master.routing import api_router
from moorage.master.state import State
from moorage.master.token_schemas import (
    AdminTokenCreate,
    AdminTokenList,
    NewAdminTokenOut,
    admin_token_out,
    new_admin_token_out,
)
from moorage.master.user_actions import record_action
from moorage.model.events import EventKind
from moorage.store.tokens import create_admin_token, list_admin_tokens, remove_admin_token, rotate_admin_token

__all__ = ["router"]

router = api_router("/v1/tokens", "tokens")


@router.post("", status_code=201, responses={409: {"description": "A token of that name exists"}})
async def create(body: AdminTokenCreate, state: State, actor: Actor) -> NewAdminTokenOut:
    def work(session: Session) -> NewAdminTokenOut:
        made = new_admin_token_out(create_admin_token(session, body.name))
        record_action(session, None, EventKind.TOKEN_CREATED, f"admin token {made.name} created", actor)
        return made

    return await state.db.run(work)


@router.get("")
async def index(state: State) -> AdminTokenList:
    return await state.db.read(
        lambda session: AdminTokenList(tokens=[admin_token_out(t) for t in list_admin_tokens(session)])
    )


@router.post("/{name}/rotate", responses={404: {"description": "No token of that name"}})
async def rotate(name: str, state: State, actor: Actor) -> NewAdminTokenOut:
    def work(session: Session) -> NewAdminTokenOut:
        made = new_admin_token_out(rotate_admin_token(session, name))
        record_action(session, None, EventKind.TOKEN_ROTATED, f"admin token {made.name} rotated", actor)
        return made

    return await state.db.run(work)


@router.delete(
    "/{name}",
    responses={404: {"description": "No token of that name"}, 409: {"description": "The last admin token"}},
)
async def remove(name: str, state: State, actor: Actor) -> dict[str, str]:
    def work(session: Session) -> None:
        remove_admin_token(session, name)
        record_action(session, None, EventKind.TOKEN_REVOKED, f"admin token {name} revoked", actor)

    await state.db.run(work)
    return {"removed": name}

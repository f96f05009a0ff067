"""Wire schemas of the token routes: admin tokens (``/v1/tokens``) and grids' join tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from moorage.master.schemas import Documented, GridOut
from moorage.store.tokens import TOKEN_NAME_RE, AdminToken, NewAdminToken

__all__ = [
    "AdminTokenCreate",
    "AdminTokenList",
    "AdminTokenOut",
    "GridCreated",
    "JoinTokenOut",
    "NewAdminTokenOut",
    "admin_token_out",
    "new_admin_token_out",
]


class AdminTokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Documented.of(pattern=TOKEN_NAME_RE.pattern, minLength=1, maxLength=64)] = Field(
        description="Token name: lowercase letters, digits, '_', '.' and '-' (e.g. alice, ci)"
    )


class AdminTokenOut(BaseModel):
    name: str
    created_at: datetime
    last_used_at: datetime | None = Field(description="Within a minute; null if never used")


class NewAdminTokenOut(AdminTokenOut):
    token: str = Field(description="The secret: shown only in this answer, stored hashed")


class AdminTokenList(BaseModel):
    tokens: list[AdminTokenOut]


class GridCreated(GridOut):
    join_token: str = Field(description="The grid's join token: shown only here and when rotated")


class JoinTokenOut(BaseModel):
    token: str
    disconnected: int = Field(
        0,
        description="Agent connections the old token admitted, now closed (each reconnects with its node credential)",
    )


def admin_token_out(token: AdminToken) -> AdminTokenOut:
    return AdminTokenOut(name=token.name, created_at=token.created_at, last_used_at=token.last_used_at)


def new_admin_token_out(made: NewAdminToken) -> NewAdminTokenOut:
    token = made.token
    return NewAdminTokenOut(
        name=token.name, created_at=token.created_at, last_used_at=token.last_used_at, token=made.secret
    )

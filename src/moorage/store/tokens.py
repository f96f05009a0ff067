"""Admin tokens: named, several (one per person or CI), each stored only as a SHA-256 hash.

The secret is shown once, when it is made (``create_admin_token``, ``rotate_admin_token``). The
master looks every request's token up here (no cache), so a removed token stops working at once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.model.quoting import shown
from moorage.store.removal import delete_found
from moorage.store.tables import AdminTokenRow

__all__ = [
    "FIRST_TOKEN_NAME",
    "LAST_USED_PRECISION",
    "TOKEN_NAME_RE",
    "AdminToken",
    "NewAdminToken",
    "admin_token_by_hash",
    "create_admin_token",
    "has_admin_token",
    "hash_token",
    "list_admin_tokens",
    "mark_used",
    "new_token",
    "remove_admin_token",
    "rotate_admin_token",
    "token_name_error",
]

FIRST_TOKEN_NAME = "admin"  # the one the master makes at first start (data dir, admin.token)
TOKEN_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
LAST_USED_PRECISION = timedelta(minutes=1)  # last_used_at is written at most this often per token


@dataclass(frozen=True, slots=True)
class AdminToken:
    id: int
    name: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class NewAdminToken:
    token: AdminToken
    secret: str  # shown once


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_name_error(name: str) -> str | None:
    if TOKEN_NAME_RE.fullmatch(name):
        return None
    return (
        f"Token name '{shown(name)}' is not valid: use 1 to 64 lowercase letters, digits, '_', '.' or '-', "
        "starting with a letter or digit (e.g. alice, ci)"
    )


def _token(row: AdminTokenRow) -> AdminToken:
    return AdminToken(id=row.id, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at)


def _row(session: Session, name: str) -> AdminTokenRow:
    row = session.scalar(select(AdminTokenRow).where(AdminTokenRow.name == name))
    if row is None:
        raise NotFound(_no_token(name))
    return row


def _no_token(name: str) -> str:
    return f"Token {name} not found; 'moorage token ls' lists them"


def has_admin_token(session: Session) -> bool:
    return session.scalar(select(AdminTokenRow.id).limit(1)) is not None


def create_admin_token(session: Session, name: str = FIRST_TOKEN_NAME) -> NewAdminToken:
    """Make a new admin token called ``name``; only its hash is kept."""
    if (problem := token_name_error(name)) is not None:
        raise InvalidInput.one("name", problem)
    if session.scalar(select(AdminTokenRow.id).where(AdminTokenRow.name == name)) is not None:
        raise Conflict(f"Token {name} already exists; pick another name, or 'moorage token rotate {name}'")
    secret = new_token()
    row = AdminTokenRow(name=name, token_hash=hash_token(secret), created_at=datetime.now(UTC))
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as err:  # made at the same moment by another request
        raise Conflict(f"Token {name} already exists; pick another name") from err
    return NewAdminToken(token=_token(row), secret=secret)


def list_admin_tokens(session: Session) -> list[AdminToken]:
    return [_token(row) for row in session.scalars(select(AdminTokenRow).order_by(AdminTokenRow.name))]


def rotate_admin_token(session: Session, name: str) -> NewAdminToken:
    """A new secret for ``name``; the old one stops working when this commits."""
    row = _row(session, name)
    secret = new_token()
    row.token_hash = hash_token(secret)
    row.last_used_at = None
    return NewAdminToken(token=_token(row), secret=secret)


def remove_admin_token(session: Session, name: str) -> None:
    """Remove ``name`` unless it is the last admin token. Two removes of the last two tokens at the
    same time must not both go through: on PostgreSQL every token's row is locked first, so they
    run one after the other; on SQLite the count is read after the DELETE, under the write lock
    that serializes writers. A remove that would leave none rolls back."""
    session.scalars(select(AdminTokenRow.id).with_for_update()).all()  # SQLite: a plain read
    row = _row(session, name)
    delete_found(
        session, AdminTokenRow, _no_token(name), AdminTokenRow.id == row.id, AdminTokenRow.name == name
    )
    if not session.scalar(select(func.count()).select_from(AdminTokenRow)):
        raise Conflict(
            f"Token {name} is the only admin token; removing it would lock everyone out. "
            "Make another first ('moorage token create NAME'), or rotate this one"
        )


def admin_token_by_hash(session: Session, digest: str) -> AdminToken | None:
    row = session.execute(
        select(
            AdminTokenRow.id, AdminTokenRow.name, AdminTokenRow.created_at, AdminTokenRow.last_used_at
        ).where(AdminTokenRow.token_hash == digest)
    ).first()
    if row is None:
        return None
    return AdminToken(id=row.id, name=row.name, created_at=row.created_at, last_used_at=row.last_used_at)


def mark_used(session: Session, token_id: int, at: datetime) -> None:
    session.execute(update(AdminTokenRow).where(AdminTokenRow.id == token_id).values(last_used_at=at))

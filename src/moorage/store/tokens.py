"""Admin tokens: created once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.store.tables import AdminTokenRow

__all__ = ["create_admin_token", "has_admin_token", "hash_token", "is_admin_token", "new_token"]


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def has_admin_token(session: Session) -> bool:
    return session.scalar(select(AdminTokenRow.id).limit(1)) is not None


def create_admin_token(session: Session) -> str:
    """Make a new admin token and return it; only its hash is kept."""
    token = new_token()
    session.add(AdminTokenRow(token_hash=hash_token(token), created_at=datetime.now(UTC)))
    return token


def is_admin_token(session: Session, token: str) -> bool:
    found = session.scalar(select(AdminTokenRow.id).where(AdminTokenRow.token_hash == hash_token(token)))
    return found is not None

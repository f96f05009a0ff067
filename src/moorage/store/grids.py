"""Grid repository. A grid's join token is kept only as its hash: shown once, when made."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from moorage.errors import Conflict, InvalidInput, NotFound
from moorage.model.grid import Grid, grid_name_error
from moorage.store.removal import delete_found
from moorage.store.tables import GridRow, NodeRow
from moorage.store.tokens import hash_token, new_token

__all__ = [
    "create_grid",
    "get_grid_row",
    "grid_by_id",
    "grid_by_join_token",
    "grid_id",
    "list_grids",
    "remove_grid",
    "rotate_join_token",
    "show_grid",
]


def _grid(row: GridRow, node_count: int) -> Grid:
    return Grid(
        id=row.id,
        name=row.name,
        created_at=row.created_at,
        node_count=node_count,
        backup_repo=row.backup_repo,
    )


def _node_counts(session: Session) -> dict[int, int]:
    rows = session.execute(select(NodeRow.grid_id, func.count()).group_by(NodeRow.grid_id))
    return {grid_id: count for grid_id, count in rows.tuples()}


def get_grid_row(session: Session, name: str) -> GridRow:
    row = session.scalar(select(GridRow).where(GridRow.name == name))
    if row is None:
        raise NotFound(_no_grid(name))
    return row


def grid_id(session: Session, name: str) -> int:
    """The id of grid ``name`` (reads no more than it: not the join token's hash)."""
    found = session.scalar(select(GridRow.id).where(GridRow.name == name))
    if found is None:
        raise NotFound(_no_grid(name))
    return found


def _no_grid(name: str) -> str:
    return f"Grid {name} not found"


def create_grid(session: Session, name: str) -> tuple[Grid, str]:
    """The new grid and its join token (not stored: only its hash is)."""
    if (problem := grid_name_error(name)) is not None:
        raise InvalidInput.one("name", problem)
    if session.scalar(select(GridRow.id).where(GridRow.name == name)) is not None:
        raise InvalidInput.one("name", f"Grid with name {name} already exists")
    now = datetime.now(UTC)
    token = new_token()
    row = GridRow(name=name, join_token_hash=hash_token(token), created_at=now, updated_at=now)
    session.add(row)
    session.flush()
    return _grid(row, 0), token


def list_grids(session: Session) -> list[Grid]:
    counts = _node_counts(session)
    rows = session.scalars(select(GridRow).order_by(GridRow.name))
    return [_grid(row, counts.get(row.id, 0)) for row in rows]


def show_grid(session: Session, name: str) -> Grid:
    row = get_grid_row(session, name)
    return _grid(row, _node_counts(session).get(row.id, 0))


def remove_grid(session: Session, name: str) -> None:
    row = get_grid_row(session, name)
    nodes = session.scalar(select(func.count()).select_from(NodeRow).where(NodeRow.grid_id == row.id)) or 0
    if nodes:
        raise Conflict(
            f"Grid {name} still has {nodes} node(s); stop their agents and remove them with "
            f"'moorage node rm NODE' first"
        )
    delete_found(session, GridRow, _no_grid(name), GridRow.id == row.id, GridRow.name == name)


def rotate_join_token(session: Session, name: str) -> str:
    """A new join token for grid ``name``; the old one stops admitting agents when this commits."""
    row = get_grid_row(session, name)
    token = new_token()
    row.join_token_hash = hash_token(token)
    row.updated_at = datetime.now(UTC)
    return token


def grid_by_join_token(session: Session, token: str) -> GridRow | None:
    return session.scalar(select(GridRow).where(GridRow.join_token_hash == hash_token(token)))


def grid_by_id(session: Session, grid_id: int) -> GridRow | None:
    """The grid with this row id; None once it was removed."""
    return session.get(GridRow, grid_id)

"""Who opened an agent socket: a grid's join token, or one node's own credential (see
``moorage.master.auth`` for the principals, ``moorage.store.nodes`` for what each may claim)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from moorage.store.grids import grid_by_id, grid_by_join_token
from moorage.store.nodes import node_by_credential

__all__ = ["AgentAdmission", "admit_agent"]


@dataclass(frozen=True, slots=True)
class AgentAdmission:
    """Who opened an agent socket: a grid's join token (``node_id`` None) or a node's credential."""

    grid: str
    grid_id: int
    node_id: str | None = None

    @property
    def by_join_token(self) -> bool:
        return self.node_id is None


def admit_agent(session: Session, token: str | None) -> AgentAdmission | None:
    """The principal behind an agent's bearer token, or None to refuse the handshake."""
    if not token:
        return None
    node = node_by_credential(session, token)
    if node is not None:
        grid = grid_by_id(session, node.grid_id)
        return None if grid is None else AgentAdmission(grid=grid.name, grid_id=grid.id, node_id=node.id)
    grid = grid_by_join_token(session, token)
    return None if grid is None else AgentAdmission(grid=grid.name, grid_id=grid.id)

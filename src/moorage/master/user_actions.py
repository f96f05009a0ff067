"""Events of what users did through the API, with the name of the admin token they used.

A route calls ``record_action`` inside the unit of work that makes the change (its one
``Database.run``), so the event and the change commit or roll back together.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from moorage.model.events import EventKind
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import grid_id as grid_id_of
from moorage.store.tokens import AdminToken

__all__ = ["record_action"]


def record_action(
    session: Session,
    grid: str | None,
    kind: EventKind,
    message: str,
    actor: AdminToken,
    *,
    stack: str | None = None,
    service: str | None = None,
    volume: str | None = None,
    deployment: str | None = None,
) -> None:
    """Record that ``actor`` did ``kind`` in ``grid`` (None: to the master itself, such as tokens)."""
    grid_id = grid_id_of(session, grid) if grid is not None else None
    record_events(
        session,
        NewEvent(
            grid_id,
            kind,
            message,
            actor=actor.name,
            stack=stack,
            service=service,
            volume=volume,
            deployment=deployment,
        ),
    )

"""Where a service's instances are: the node and the container each one's logs and exec reach."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.model.container import container_name
from moorage.store.grids import get_grid_row
from moorage.store.services import get_service_row
from moorage.store.tables import InstanceRow, NodeRow

__all__ = ["InstancePlace", "instance_places"]


@dataclass(frozen=True, slots=True)
class InstancePlace:
    number: int
    node_id: str | None
    node: str | None  # the node's name
    node_status: str | None  # online | offline, as the store has it
    container: str | None  # the Docker container name, once the instance has a desired container
    state: str
    reason: str | None


def instance_places(session: Session, grid: str, stack: str, service: str) -> list[InstancePlace]:
    """Every instance of the service, by number (``NotFound`` for an unknown grid or service)."""
    row = get_service_row(session, get_grid_row(session, grid), stack, service)
    found = session.execute(
        select(
            InstanceRow.number,
            InstanceRow.node_id,
            NodeRow.name,
            NodeRow.status,
            InstanceRow.container.is_not(None),
            InstanceRow.state,
            InstanceRow.reason,
        )
        .outerjoin(NodeRow, NodeRow.id == InstanceRow.node_id)
        .where(InstanceRow.service_id == row.id)
        .order_by(InstanceRow.number)
    ).tuples()
    return [
        InstancePlace(
            number=number,
            node_id=node_id,
            node=node,
            node_status=status,
            container=container_name(stack, service, number) if has_container else None,
            state=state,
            reason=reason,
        )
        for number, node_id, node, status, has_container, state, reason in found
    ]

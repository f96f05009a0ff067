"""Services (in stacks and in the null stack) and their instances."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.model.container import container_name
from moorage.model.node import NodeStatus
from moorage.model.node_loss import aged
from moorage.model.stack import NULL_STACK, StackSpec, full_service_id
from moorage.model.states import InstanceState
from moorage.stackfile import stack_from_dict
from moorage.stackfile.stored_service import StoredService, load_service, service_document
from moorage.store.placements import chunks
from moorage.store.removal import delete_found
from moorage.store.tables import GridRow, InstanceRow, NodeRow, ServiceRow

__all__ = [
    "InstanceView",
    "ServiceView",
    "StoredRow",
    "add_service",
    "get_service_row",
    "list_services",
    "parse_service_ref",
    "remove_service",
    "save_service",
    "scale_service",
    "service_exists",
    "service_view",
    "service_views",
    "shown_state",
    "stored_service",
]

# What the master itself decides about an instance; every other state is what its node's agent
# last reported, which is only as fresh as that node's connection.
MASTER_STATES = frozenset({InstanceState.PENDING, InstanceState.SCHEDULED, InstanceState.FAILED})


@dataclass(frozen=True, slots=True)
class InstanceView:
    number: int
    node: str | None
    state: str
    reason: str | None
    container: str | None
    exit_code: int | None
    started_at: datetime | None
    config_hash: str | None
    up_to_date: bool


@dataclass(frozen=True, slots=True)
class ServiceView:
    id: str
    grid: str
    stack: str
    stored: StoredService
    created_at: datetime
    updated_at: datetime
    instances: tuple[InstanceView, ...]


def parse_service_ref(ref: str) -> tuple[str, str]:
    """``stack/service`` or ``service`` (null stack) -> (stack, service)."""
    stack, sep, name = ref.rpartition("/")
    return (stack if sep else NULL_STACK), name


def get_service_row(session: Session, grid_row: GridRow, stack: str, name: str) -> ServiceRow:
    row = session.scalar(
        select(ServiceRow).where(
            ServiceRow.grid_id == grid_row.id, ServiceRow.stack == stack, ServiceRow.name == name
        )
    )
    if row is None:
        raise NotFound(_no_service(grid_row.name, stack, name))
    return row


def _no_service(grid: str, stack: str, name: str) -> str:
    shown = name if stack == NULL_STACK else f"{stack}/{name}"
    return f"Service {shown} not found in grid {grid}; 'moorage service ls' lists them"


def save_service(
    session: Session, grid_row: GridRow, stack: str, name: str, document: dict[str, Any]
) -> ServiceRow:
    now = datetime.now(UTC)
    row = session.scalar(
        select(ServiceRow).where(
            ServiceRow.grid_id == grid_row.id, ServiceRow.stack == stack, ServiceRow.name == name
        )
    )
    if row is None:
        row = ServiceRow(
            grid_id=grid_row.id, stack=stack, name=name, spec=document, created_at=now, updated_at=now
        )
        session.add(row)
    elif row.spec != document:
        row.spec = document
        row.updated_at = now
    session.flush()
    return row


class StoredRow(Protocol):
    """What ``stored_service`` reads of a service row."""

    @property
    def id(self) -> int: ...
    @property
    def spec(self) -> dict[str, Any]: ...


def stored_service(row: StoredRow) -> StoredService:
    """The service a row stores, parsed once per row while its document stays equal."""
    return load_service(row.spec, key=("service", row.id))


def shown_state(state: str, reason: str | None, node_status: str | None) -> tuple[str, str | None]:
    """The state and reason a view shows: an agent's report from a node that is offline now is
    no longer known to hold (its containers may run, or the node may be gone), so it reads
    ``unknown`` with the reason ``node offline``, never ``running``. A reason that says when a
    node was last seen says how long ago (``model.node_loss.aged``)."""
    if node_status == NodeStatus.OFFLINE and state not in MASTER_STATES:
        return InstanceState.UNKNOWN, f"node offline (last reported {state})"
    return state, aged(reason)


def service_view(session: Session, grid_row: GridRow, row: ServiceRow) -> ServiceView:
    return service_views(session, grid_row, [row])[0]


def service_views(session: Session, grid_row: GridRow, rows: Sequence[ServiceRow]) -> list[ServiceView]:
    """The services with their instances. Reads the instance columns a view shows (not the
    stored containers), and each service's document through the cache of ``load_service``:
    a client following a deployment polls this."""
    ids = [r.id for r in rows]
    names = {r.id: (r.stack, r.name) for r in rows}
    instances: dict[int, list[InstanceView]] = {i: [] for i in ids}
    for part in chunks(ids):
        found = session.execute(
            select(
                InstanceRow.service_id,
                InstanceRow.number,
                NodeRow.name,
                NodeRow.status,
                InstanceRow.state,
                InstanceRow.reason,
                InstanceRow.container.is_not(None),
                InstanceRow.exit_code,
                InstanceRow.started_at,
                InstanceRow.observed_hash,
                InstanceRow.desired_hash,
            )
            .outerjoin(NodeRow, NodeRow.id == InstanceRow.node_id)
            .where(InstanceRow.service_id.in_(part))
            .order_by(InstanceRow.service_id, InstanceRow.number)
        ).tuples()
        for (
            service_id,
            number,
            node,
            node_status,
            state,
            reason,
            has_container,
            exit_code,
            started,
            observed,
            desired,
        ) in found:
            stack, name = names[service_id]
            state, reason = shown_state(state, reason, node_status)
            instances[service_id].append(
                InstanceView(
                    number=number,
                    node=node,
                    state=state,
                    reason=reason,
                    container=container_name(stack, name, number) if has_container else None,
                    exit_code=exit_code,
                    started_at=started,
                    config_hash=observed,
                    up_to_date=observed is not None and observed == desired,
                )
            )
    return [
        ServiceView(
            id=full_service_id(grid_row.name, r.stack, r.name),
            grid=grid_row.name,
            stack=r.stack,
            stored=stored_service(r),
            created_at=r.created_at,
            updated_at=r.updated_at,
            instances=tuple(instances[r.id]),
        )
        for r in rows
    ]


def list_services(session: Session, grid_row: GridRow, stack: str | None = None) -> list[ServiceView]:
    query = select(ServiceRow).where(ServiceRow.grid_id == grid_row.id)
    if stack is not None:
        query = query.where(ServiceRow.stack == stack)
    rows = list(session.scalars(query.order_by(ServiceRow.stack, ServiceRow.name)))
    return service_views(session, grid_row, rows)


def service_exists(session: Session, grid_row: GridRow, stack: str, name: str) -> bool:
    found = session.scalar(
        select(ServiceRow.id).where(
            ServiceRow.grid_id == grid_row.id, ServiceRow.stack == stack, ServiceRow.name == name
        )
    )
    return found is not None


def add_service(session: Session, grid_row: GridRow, stack: StackSpec) -> ServiceRow:
    """Store the one service of ``stack`` (validated, its volumes checked by the caller) as a new
    row: one of that name written meanwhile by another request fails the unique constraint (an
    ``IntegrityError``, which the API answers with 409) instead of being overwritten."""
    service = stack.services[0]
    now = datetime.now(UTC)
    row = ServiceRow(
        grid_id=grid_row.id,
        stack=stack.name,
        name=service.name,
        spec=service_document(stack, service),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _normalized(document: dict[str, Any]) -> dict[str, Any]:
    spec = stack_from_dict(document)
    return service_document(spec, spec.services[0])


def scale_service(session: Session, row: ServiceRow, instances: int) -> None:
    """Set the service's number of instances. Its row is locked and read afresh first (see
    ``Database``): one removed meanwhile is a ``NotFound``."""
    if instances < 0:
        raise InvalidInput.one("instances", "must be 0 or more")
    locked = session.scalar(
        select(ServiceRow)
        .where(ServiceRow.id == row.id, ServiceRow.name == row.name, ServiceRow.stack == row.stack)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if locked is None:
        grid = session.scalar(select(GridRow.name).where(GridRow.id == row.grid_id))
        raise NotFound(_no_service(grid or "?", row.stack, row.name))
    document = dict(locked.spec)
    services = {k: dict(v) for k, v in document["services"].items()}
    for service in services.values():
        service["instances"] = instances
    document["services"] = services
    locked.spec = _normalized(document)
    locked.updated_at = datetime.now(UTC)


def remove_service(session: Session, row: ServiceRow) -> set[str]:
    """Remove a service (its containers go; its volumes stay). Returns the nodes to tell."""
    if row.stack != NULL_STACK:
        raise InvalidInput.one(
            "service",
            f"Service {row.stack}/{row.name} belongs to stack {row.stack}; remove it from the stack file and "
            f"'moorage stack upgrade', or 'moorage stack rm {row.stack}'",
        )
    nodes = set(session.scalars(select(InstanceRow.node_id).where(InstanceRow.service_id == row.id)))

    def not_found() -> str:
        grid = session.scalar(select(GridRow.name).where(GridRow.id == row.grid_id))
        return _no_service(grid or "?", row.stack, row.name)

    delete_found(
        session,
        ServiceRow,
        not_found,
        ServiceRow.id == row.id,
        ServiceRow.grid_id == row.grid_id,
        ServiceRow.stack == row.stack,
        ServiceRow.name == row.name,
    )
    return {n for n in nodes if n}

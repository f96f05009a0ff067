"""Stacks: install, upgrade (each a stored revision), remove; their services in deploy order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.model.stack import NULL_STACK, ServiceSpec, StackSpec
from moorage.stackfile import stack_from_dict, stack_to_dict
from moorage.stackfile.stored_service import service_document
from moorage.store.grids import get_grid_row
from moorage.store.removal import delete_found
from moorage.store.services import ServiceView, list_services, save_service, stored_service
from moorage.store.stack_volumes import check_external, ensure_own, remove_own
from moorage.store.tables import GridRow, InstanceRow, ServiceRow, StackRevisionRow, StackRow
from moorage.store.volume_use import refresh_use

__all__ = [
    "StackChange",
    "StackView",
    "deploy_order",
    "get_stack_row",
    "install_stack",
    "list_stacks",
    "remove_stack",
    "show_stack",
    "stack_service_ids",
    "upgrade_stack",
]


@dataclass(frozen=True, slots=True)
class StackChange:
    stack: str
    revision: int
    service_ids: list[int]  # in deploy order
    touched_nodes: set[str]  # nodes that lost containers (services dropped)


@dataclass(frozen=True, slots=True)
class StackView:
    """A stack as the API shows it: its current revision and its services with their instances."""

    id: str  # grid/stack
    name: str
    revision: int
    spec: StackSpec
    document: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    services: list[ServiceView]


def deploy_order(services: tuple[ServiceSpec, ...]) -> list[ServiceSpec]:
    """Dependencies first; otherwise in file order. (The stack file pipeline rejects cycles.)"""
    by_name = {s.name: s for s in services}
    done: dict[str, ServiceSpec] = {}

    def visit(service: ServiceSpec, path: tuple[str, ...]) -> None:
        if service.name in done or service.name in path:
            return
        for dep in service.depends_on:
            if dep in by_name:
                visit(by_name[dep], (*path, service.name))
        done[service.name] = service

    for service in services:
        visit(service, ())
    return list(done.values())


def _no_stack(grid_row: GridRow, name: str) -> str:
    return f"Stack {name} not found in grid {grid_row.name}; 'moorage stack ls' lists them"


def get_stack_row(session: Session, grid_row: GridRow, name: str, *, for_update: bool = False) -> StackRow:
    """The stack's row; ``for_update``: locked until the unit of work ends (PostgreSQL; see
    ``Database``), and read afresh, for a unit of work that changes it."""
    query = select(StackRow).where(StackRow.grid_id == grid_row.id, StackRow.name == name)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    row = session.scalar(query)
    if row is None:
        raise NotFound(_no_stack(grid_row, name))
    return row


def _checked(session: Session, grid_row: GridRow, data: dict[str, Any], name: str | None) -> StackSpec:
    spec = stack_from_dict(data)
    if name is not None and name != spec.name:
        spec = StackSpec(
            name=name,
            services=spec.services,
            version=spec.version,
            description=spec.description,
            volumes=spec.volumes,
        )
    if spec.name == NULL_STACK:
        raise InvalidInput.one(
            "name", "The stack name 'null' is reserved for stand-alone services; pick another"
        )
    check_external(session, grid_row, spec)
    return spec


def _volume_names(spec: StackSpec, rows: list[ServiceRow]) -> set[str]:
    """The grid volumes a stack declares and those its stored services mount."""
    names = {decl.grid_volume(spec.name) for decl in spec.volumes}
    for row in rows:
        names.update(stored_service(row).grid_volumes)
    return names


def _stack_services(session: Session, grid_row: GridRow, name: str) -> list[ServiceRow]:
    return list(
        session.scalars(select(ServiceRow).where(ServiceRow.grid_id == grid_row.id, ServiceRow.stack == name))
    )


def _save_services(session: Session, grid_row: GridRow, spec: StackSpec) -> list[int]:
    return [
        save_service(session, grid_row, spec.name, s.name, service_document(spec, s)).id
        for s in deploy_order(spec.services)
    ]


def _drop_services(session: Session, rows: list[ServiceRow]) -> set[str]:
    if not rows:
        return set()
    ids = [r.id for r in rows]
    nodes = set(
        session.scalars(
            select(InstanceRow.node_id).where(
                InstanceRow.service_id.in_(ids), InstanceRow.node_id.is_not(None)
            )
        )
    )
    session.execute(delete(InstanceRow).where(InstanceRow.service_id.in_(ids)))
    session.execute(delete(ServiceRow).where(ServiceRow.id.in_(ids)))
    return {n for n in nodes if n}


def _revision(session: Session, stack: StackRow, spec: StackSpec, source: str, now: datetime) -> None:
    session.add(
        StackRevisionRow(
            stack_id=stack.id,
            revision=stack.revision,
            spec=stack_to_dict(spec),
            source=source,
            created_at=now,
        )
    )


def install_stack(
    session: Session, grid: str, data: dict[str, Any], source: str, name: str | None
) -> StackChange:
    grid_row = get_grid_row(session, grid)
    spec = _checked(session, grid_row, data, name)
    if session.scalar(select(StackRow.id).where(StackRow.grid_id == grid_row.id, StackRow.name == spec.name)):
        raise InvalidInput.one(
            "name",
            f"Stack {spec.name} already exists in grid {grid}; use 'moorage stack upgrade {spec.name} FILE'",
        )
    ensure_own(session, grid_row, spec)
    now = datetime.now(UTC)
    row = StackRow(
        grid_id=grid_row.id,
        name=spec.name,
        revision=1,
        spec=stack_to_dict(spec),
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    _revision(session, row, spec, source, now)
    service_ids = _save_services(session, grid_row, spec)
    refresh_use(session, grid_row.id, _volume_names(spec, []))  # a stack installed again uses its volumes
    return StackChange(spec.name, 1, service_ids, set())


def upgrade_stack(session: Session, grid: str, name: str, data: dict[str, Any], source: str) -> StackChange:
    grid_row = get_grid_row(session, grid)
    row = get_stack_row(session, grid_row, name, for_update=True)  # a remove or upgrade waits
    spec = _checked(session, grid_row, data, name)
    ensure_own(session, grid_row, spec)
    before = _stack_services(session, grid_row, name)
    volumes = _volume_names(spec, before)  # what the services mounted before the upgrade too
    now = datetime.now(UTC)
    row.revision += 1
    row.spec = stack_to_dict(spec)
    row.updated_at = now
    _revision(session, row, spec, source, now)
    keep = {s.name for s in spec.services}
    touched = _drop_services(session, [s for s in before if s.name not in keep])
    service_ids = _save_services(session, grid_row, spec)
    refresh_use(session, grid_row.id, volumes)
    return StackChange(name, row.revision, service_ids, touched)


def stack_service_ids(session: Session, grid: str, name: str) -> list[int]:
    grid_row = get_grid_row(session, grid)
    row = get_stack_row(session, grid_row, name)
    spec = stack_from_dict(row.spec)
    rows = {
        s.name: s.id
        for s in session.scalars(
            select(ServiceRow).where(ServiceRow.grid_id == grid_row.id, ServiceRow.stack == name)
        )
    }
    return [rows[s.name] for s in deploy_order(spec.services) if s.name in rows]


def remove_stack(session: Session, grid: str, name: str, *, volumes: bool = False) -> set[str]:
    """Remove the stack and its services (their containers go; volumes stay, their volume
    instances ``unused``); with ``volumes``, also the volumes the stack owns (never external
    ones), whose Docker volumes their agents then delete: those of a stack removed before too.
    Returns the nodes to tell."""
    grid_row = get_grid_row(session, grid)
    if (
        volumes
        and session.scalar(select(StackRow.id).where(StackRow.grid_id == grid_row.id, StackRow.name == name))
        is None
    ):
        removed, nodes = remove_own(session, grid_row, name)  # removed before, its volumes kept
        if not removed:
            raise NotFound(_no_stack(grid_row, name))
        return nodes
    row = get_stack_row(session, grid_row, name)
    # The stack's row first: a remove at the same time then finds nothing to delete (a 404, see
    # store/removal.py), and the services read after it are all the stack's, as it was last changed.
    delete_found(
        session,
        StackRow,
        _no_stack(grid_row, name),
        StackRow.id == row.id,
        StackRow.grid_id == grid_row.id,
        StackRow.name == name,
    )
    services = _stack_services(session, grid_row, name)
    used = _volume_names(stack_from_dict(row.spec), services)
    nodes = _drop_services(session, services)
    refresh_use(session, grid_row.id, used)
    if volumes:
        nodes |= remove_own(session, grid_row, name)[1]
    return nodes


def _stack_view(session: Session, row: StackRow, grid_row: GridRow) -> StackView:
    return StackView(
        id=f"{grid_row.name}/{row.name}",
        name=row.name,
        revision=row.revision,
        spec=stack_from_dict(row.spec),
        document=row.spec,
        created_at=row.created_at,
        updated_at=row.updated_at,
        services=list_services(session, grid_row, row.name),
    )


def list_stacks(session: Session, grid: str) -> list[StackView]:
    grid_row = get_grid_row(session, grid)
    return [
        _stack_view(session, r, grid_row)
        for r in session.scalars(
            select(StackRow).where(StackRow.grid_id == grid_row.id).order_by(StackRow.name)
        )
    ]


def show_stack(session: Session, grid: str, name: str) -> StackView:
    grid_row = get_grid_row(session, grid)
    return _stack_view(session, get_stack_row(session, grid_row, name), grid_row)

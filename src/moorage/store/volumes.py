"""Volume definitions and the services that reference them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.model.volume import VolumeScope, volume_name_error
from moorage.stackfile.stored_service import load_service
from moorage.store.grids import get_grid_row
from moorage.store.tables import GridRow, NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow

__all__ = [
    "VolumeView",
    "create_volume",
    "get_volume_row",
    "list_volumes",
    "missing_volumes",
    "remove_volume",
    "services_using",
    "show_volume",
]

DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")


@dataclass(frozen=True, slots=True)
class VolumeInstanceView:
    id: str
    name: str
    node: str
    zone: str | None
    state: str
    error: str | None


@dataclass(frozen=True, slots=True)
class VolumeView:
    grid: str
    name: str
    scope: str
    driver: str
    driver_opts: dict[str, str]
    labels: dict[str, str]
    created_at: datetime
    updated_at: datetime
    instances: tuple[VolumeInstanceView, ...]
    services: tuple[str, ...]


def _errors(
    name: str, scope: str, driver: str, driver_opts: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (problem := volume_name_error(name)) is not None:
        errors["name"] = problem
    if scope not in {s.value for s in VolumeScope}:
        errors["scope"] = f"Unknown scope '{scope}', must be one of grid, stack, instance"
    if not driver:
        errors["driver"] = "Driver is required: name the volume driver, e.g. local"
    elif ":" in driver:
        errors["driver"] = (
            f"Driver '{driver}' must not have a tag: use the driver's name without ':{driver.partition(':')[2]}'"
        )
    elif not DRIVER_RE.fullmatch(driver):
        errors["driver"] = f"Driver '{driver}' is not a valid driver name"
    for key in driver_opts:
        if not key:
            errors["driver_opts"] = "Driver option keys must not be empty"
    for key in labels:
        if not key:
            errors["labels"] = "Label keys must not be empty"
    return errors


def create_volume(
    session: Session,
    grid: str,
    *,
    name: str,
    scope: str,
    driver: str,
    driver_opts: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> VolumeView:
    grid_row = get_grid_row(session, grid)
    driver_opts = dict(driver_opts or {})
    labels = dict(labels or {})
    errors = _errors(name, scope, driver, driver_opts, labels)
    if "name" not in errors and session.scalar(
        select(VolumeRow.id).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == name)
    ):
        errors["name"] = "Volume with given name already exists"
    if errors:
        raise InvalidInput(errors)
    now = datetime.now(UTC)
    row = VolumeRow(
        grid_id=grid_row.id,
        name=name,
        scope=scope,
        driver=driver,
        driver_opts=driver_opts,
        labels=labels,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _view(session, grid_row, row)


def get_volume_row(session: Session, grid_row: GridRow, name: str) -> VolumeRow:
    row = session.scalar(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == name))
    if row is None:
        raise NotFound(f"Volume {name} not found")
    return row


def services_using(session: Session, grid_row: GridRow) -> dict[str, list[str]]:
    """Grid volume name -> ids of the services (running or not) whose mounts refer to it."""
    users: dict[str, list[str]] = {}
    for service in session.scalars(
        select(ServiceRow)
        .where(ServiceRow.grid_id == grid_row.id)
        .order_by(ServiceRow.stack, ServiceRow.name)
    ):
        stored = load_service(service.spec)
        for volume in stored.grid_volumes:
            users.setdefault(volume, []).append(f"{grid_row.name}/{service.stack}/{service.name}")
    return users


def missing_volumes(session: Session, grid_row: GridRow, names: list[str]) -> list[str]:
    if not names:
        return []
    found = set(
        session.scalars(
            select(VolumeRow.name).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name.in_(names))
        )
    )
    return [n for n in dict.fromkeys(names) if n not in found]


def _view(
    session: Session, grid_row: GridRow, row: VolumeRow, users: dict[str, list[str]] | None = None
) -> VolumeView:
    instances = session.execute(
        select(VolumeInstanceRow, NodeRow.name)
        .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
        .where(VolumeInstanceRow.volume_id == row.id)
        .order_by(VolumeInstanceRow.name, NodeRow.name)
    ).tuples()
    users = users if users is not None else services_using(session, grid_row)
    return VolumeView(
        grid=grid_row.name,
        name=row.name,
        scope=row.scope,
        driver=row.driver,
        driver_opts=dict(row.driver_opts),
        labels=dict(row.labels),
        created_at=row.created_at,
        updated_at=row.updated_at,
        instances=tuple(
            VolumeInstanceView(
                id=vi.id, name=vi.name, node=node, zone=vi.zone, state=vi.state, error=vi.error
            )
            for vi, node in instances
        ),
        services=tuple(users.get(row.name, [])),
    )


def list_volumes(session: Session, grid: str) -> list[VolumeView]:
    grid_row = get_grid_row(session, grid)
    users = services_using(session, grid_row)
    rows = session.scalars(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id).order_by(VolumeRow.name))
    return [_view(session, grid_row, row, users) for row in rows]


def show_volume(session: Session, grid: str, name: str) -> VolumeView:
    grid_row = get_grid_row(session, grid)
    return _view(session, grid_row, get_volume_row(session, grid_row, name))


def remove_volume(session: Session, grid: str, name: str) -> set[str]:
    """Remove the definition; its volume instances become ``removing``. Returns the nodes to tell."""
    grid_row = get_grid_row(session, grid)
    row = get_volume_row(session, grid_row, name)
    users = services_using(session, grid_row).get(name, [])
    if users:
        raise InvalidInput.one(
            "name",
            f"Volume {name} is still in use by services: {', '.join(users)}; "
            "remove those services (moorage service rm / moorage stack rm) first",
        )
    now = datetime.now(UTC)
    nodes = set(
        session.scalars(select(VolumeInstanceRow.node_id).where(VolumeInstanceRow.volume_id == row.id))
    )
    session.execute(
        update(VolumeInstanceRow)
        .where(VolumeInstanceRow.volume_id == row.id)
        .values(state="removing", volume_id=None, updated_at=now)
    )
    session.execute(delete(VolumeRow).where(VolumeRow.id == row.id))
    return nodes

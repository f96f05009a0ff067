"""Volume definitions and the services that reference them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Row, Select, Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.model.mount import parse_mount
from moorage.model.stack import MountKind
from moorage.model.volume import VolumeScope, volume_name_error
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
    "stored_grid_volumes",
]

DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")

# The API's paths (list, show, create, remove) use Core statements on the tables, built once,
# and no ORM objects: ``GET /v1/volumes/{grid}`` is four queries whatever the number of volumes,
# volume instances and services, where it was two plus one per volume.
_VOLUME_TABLE = cast(Table, VolumeRow.__table__)
_grids, _nodes, _services = GridRow.__table__.c, NodeRow.__table__.c, ServiceRow.__table__.c
_volumes, _vis = VolumeRow.__table__.c, VolumeInstanceRow.__table__.c

_GRID = select(_grids.id, _grids.name).where(_grids.name == bindparam("grid"))
_SERVICE_MOUNTS = (
    select(_services.stack, _services.name, _services.spec)
    .where(_services.grid_id == bindparam("grid_id"))
    .order_by(_services.stack, _services.name)
)
_VOLUME_FIELDS = select(
    _volumes.id,
    _volumes.name,
    _volumes.scope,
    _volumes.driver,
    _volumes.driver_opts,
    _volumes.labels,
    _volumes.created_at,
    _volumes.updated_at,
)
_VOLUMES = _VOLUME_FIELDS.where(_volumes.grid_id == bindparam("grid_id")).order_by(_volumes.name)
_VOLUME = _VOLUME_FIELDS.where(_volumes.grid_id == bindparam("grid_id"), _volumes.name == bindparam("name"))
_VOLUME_ID = select(_volumes.id).where(
    _volumes.grid_id == bindparam("grid_id"), _volumes.name == bindparam("name")
)
_INSTANCES = (
    select(_vis.volume_id, _vis.id, _vis.name, _nodes.name, _vis.zone, _vis.state, _vis.error)
    .select_from(VolumeInstanceRow.__table__.join(NodeRow.__table__, _nodes.id == _vis.node_id))
    .order_by(_vis.name, _nodes.name)
)
_GRID_INSTANCES = _INSTANCES.join(VolumeRow.__table__, _volumes.id == _vis.volume_id).where(
    _volumes.grid_id == bindparam("grid_id")
)
_VOLUME_INSTANCES = _INSTANCES.where(_vis.volume_id == bindparam("volume_id"))


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
    grid_id, grid_name = _grid(session, grid)
    driver_opts = dict(driver_opts or {})
    labels = dict(labels or {})
    errors = _errors(name, scope, driver, driver_opts, labels)
    if "name" not in errors and session.scalar(_VOLUME_ID, {"grid_id": grid_id, "name": name}):
        errors["name"] = "Volume with given name already exists"
    if errors:
        raise InvalidInput(errors)
    now = datetime.now(UTC)
    session.execute(
        insert(_VOLUME_TABLE).values(
            grid_id=grid_id,
            name=name,
            scope=scope,
            driver=driver,
            driver_opts=driver_opts,
            labels=labels,
            created_at=now,
            updated_at=now,
        )
    )
    return _one_view(session, grid_id, grid_name, name)


def get_volume_row(session: Session, grid_row: GridRow, name: str) -> VolumeRow:
    row = session.scalar(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == name))
    if row is None:
        raise NotFound(f"Volume {name} not found")
    return row


def stored_grid_volumes(document: Mapping[str, Any]) -> list[str]:
    """The grid volumes a stored service document's named mounts refer to, in mount order.

    The same answer as ``load_service(document).grid_volumes``, read straight from the stored
    (already validated, normalized) document: its one service's ``volumes:`` mount specs, each
    named mount's alias resolved through the top-level ``volumes:`` (``external: true`` or
    ``external: {name: X}``). The volume API does this for every service of the grid on every
    request, where running the whole stack pipeline per service cost milliseconds.
    """
    decls = document.get("volumes") or {}
    names: list[str] = []
    for service in (document.get("services") or {}).values():
        for spec in service.get("volumes") or ():
            mount = parse_mount(spec)
            if mount.kind is not MountKind.NAMED or not mount.source:
                continue
            external = (decls.get(mount.source) or {}).get("external")
            names.append(str(external["name"]) if isinstance(external, dict) else mount.source)
    return list(dict.fromkeys(names))


def services_using(session: Session, grid_row: GridRow) -> dict[str, list[str]]:
    """Grid volume name -> ids of the services (running or not) whose mounts refer to it."""
    return _users(session, grid_row.id, grid_row.name)


def _users(session: Session, grid_id: int, grid_name: str) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for stack, name, spec in session.execute(_SERVICE_MOUNTS, {"grid_id": grid_id}).all():
        for volume in stored_grid_volumes(spec):
            users.setdefault(volume, []).append(f"{grid_name}/{stack}/{name}")
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


def _grid(session: Session, grid: str) -> tuple[int, str]:
    """The grid's id and name; the same answer as ``get_grid_row``, without loading the row."""
    found = session.execute(_GRID, {"grid": grid}).first()
    if found is None:
        raise NotFound(f"Grid {grid} not found")
    return found[0], found[1]


def _instances(
    session: Session, query: Select[Any], **params: Any
) -> dict[int, tuple[VolumeInstanceView, ...]]:
    """Volume id -> its volume instances, by Docker volume name then node name."""
    found: dict[int, list[VolumeInstanceView]] = {}
    for volume_id, vi_id, vi_name, node, zone, state, error in session.execute(query, params).all():
        if volume_id is not None:
            found.setdefault(volume_id, []).append(
                VolumeInstanceView(id=vi_id, name=vi_name, node=node, zone=zone, state=state, error=error)
            )
    return {volume_id: tuple(views) for volume_id, views in found.items()}


def _view(
    grid_name: str,
    row: Row[Any],
    instances: Mapping[int, tuple[VolumeInstanceView, ...]],
    users: Mapping[str, list[str]],
) -> VolumeView:
    volume_id, name, scope, driver, driver_opts, labels, created_at, updated_at = row
    return VolumeView(
        grid=grid_name,
        name=name,
        scope=scope,
        driver=driver,
        driver_opts=dict(driver_opts),
        labels=dict(labels),
        created_at=created_at,
        updated_at=updated_at,
        instances=instances.get(volume_id, ()),
        services=tuple(users.get(name, [])),
    )


def _one_view(session: Session, grid_id: int, grid_name: str, name: str) -> VolumeView:
    row = session.execute(_VOLUME, {"grid_id": grid_id, "name": name}).first()
    if row is None:
        raise NotFound(f"Volume {name} not found")
    instances = _instances(session, _VOLUME_INSTANCES, volume_id=row[0])
    return _view(grid_name, row, instances, _users(session, grid_id, grid_name))


def list_volumes(session: Session, grid: str) -> list[VolumeView]:
    """Every volume of the grid, by name, with its instances and the services using it."""
    grid_id, grid_name = _grid(session, grid)
    users = _users(session, grid_id, grid_name)
    instances = _instances(session, _GRID_INSTANCES, grid_id=grid_id)
    rows = session.execute(_VOLUMES, {"grid_id": grid_id}).all()
    return [_view(grid_name, row, instances, users) for row in rows]


def show_volume(session: Session, grid: str, name: str) -> VolumeView:
    grid_id, grid_name = _grid(session, grid)
    return _one_view(session, grid_id, grid_name, name)


def remove_volume(session: Session, grid: str, name: str) -> set[str]:
    """Remove the definition; its volume instances become ``removing``. Returns the nodes to tell."""
    grid_id, grid_name = _grid(session, grid)
    volume_id = session.scalar(_VOLUME_ID, {"grid_id": grid_id, "name": name})
    if volume_id is None:
        raise NotFound(f"Volume {name} not found")
    users = _users(session, grid_id, grid_name).get(name, [])
    if users:
        raise InvalidInput.one(
            "name",
            f"Volume {name} is still in use by services: {', '.join(users)}; "
            "remove those services (moorage service rm / moorage stack rm) first",
        )
    now = datetime.now(UTC)
    nodes = set(
        session.scalars(select(VolumeInstanceRow.node_id).where(VolumeInstanceRow.volume_id == volume_id))
    )
    session.execute(
        update(VolumeInstanceRow)
        .where(VolumeInstanceRow.volume_id == volume_id)
        .values(state="removing", volume_id=None, updated_at=now)
    )
    session.execute(delete(VolumeRow).where(VolumeRow.id == volume_id))
    return nodes

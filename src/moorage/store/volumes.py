"""Volume definitions and the services that reference them."""

from __future__ import annotations

import json
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    delete,
    insert,
    select,
    type_coerce,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from moorage.errors import InvalidInput, NotFound
from moorage.model.events import EventKind
from moorage.model.node_loss import OnNodeLost, on_node_lost_error
from moorage.model.stack import full_service_id
from moorage.model.states import VolumeInstanceState
from moorage.model.volume import DriverCapability, default_topology, volume_definition_errors
from moorage.stackfile.stored_service import load_service
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import get_grid_row
from moorage.store.tables import GridRow, NodeRow, RetiredVolumeRow, ServiceRow, VolumeInstanceRow, VolumeRow

__all__ = [
    "VolumeInstanceView",
    "VolumeListing",
    "VolumeView",
    "create_volume",
    "get_volume_row",
    "list_volumes",
    "missing_volumes",
    "named_pattern",
    "remove_volume",
    "services_using",
    "set_on_node_lost",
    "show_volume",
    "volume_heads",
    "volume_listing",
]

# The API's paths (list, show, create, remove) use Core statements on the tables, built once, run
# on the session's connection, and no ORM objects: ``GET /v1/volumes/{grid}`` is four queries
# whatever the number of volumes, volume instances and services; create and remove are three to
# five statements, none of them reading every service of the grid.
_VOLUME_TABLE = cast(Table, VolumeRow.__table__)
_VI_TABLE = cast(Table, VolumeInstanceRow.__table__)
_grids, _nodes, _services = GridRow.__table__.c, NodeRow.__table__.c, ServiceRow.__table__.c
_volumes, _vis = VolumeRow.__table__.c, VolumeInstanceRow.__table__.c

_GRID = select(_grids.id, _grids.name).where(_grids.name == bindparam("grid"))
# The grid and the id of its volume of that name (None: no such volume), in one query.
_GRID_AND_VOLUME_ID = (
    select(_grids.id, _grids.name, _volumes.id)
    .select_from(
        GridRow.__table__.outerjoin(
            VolumeRow.__table__, and_(_volumes.grid_id == _grids.id, _volumes.name == bindparam("name"))
        )
    )
    .where(_grids.name == bindparam("grid"))
)
# Stored service documents as the text the store holds: what they mount is parsed once per
# distinct text (``_mounted_volumes``), not once per service per request.
_SPEC_TEXT = sql_cast(_services.spec, Text)
_SERVICE_MOUNTS = (
    select(_services.stack, _services.name, _SPEC_TEXT)
    .where(_services.grid_id == bindparam("grid_id"))
    .order_by(_services.stack, _services.name)
)
# Only the services whose document mentions a name: a superset of those that mount it (see
# ``_users_of``), found by the store without sending every document over.
_SERVICE_MOUNTS_NAMING = _SERVICE_MOUNTS.where(_SPEC_TEXT.like(bindparam("pattern"), escape="/"))
_VOLUME_FIELDS = select(
    _volumes.id,
    _volumes.name,
    _volumes.scope,
    _volumes.driver,
    _volumes.driver_opts,
    _volumes.labels,
    _volumes.created_at,
    _volumes.updated_at,
    _volumes.topology,
    _volumes.stack,
    _volumes.on_node_lost,
)
_VOLUMES = _VOLUME_FIELDS.where(_volumes.grid_id == bindparam("grid_id")).order_by(_volumes.name)
_VOLUME = _VOLUME_FIELDS.where(_volumes.grid_id == bindparam("grid_id"), _volumes.name == bindparam("name"))
_INSTANCES = (
    select(
        _vis.volume_id,
        _vis.id,
        _vis.name,
        _nodes.name,
        _vis.zone,
        _vis.region,
        _vis.state,
        _vis.error,
        _vis.unused_since,
        _vis.reported_driver,
        _vis.reported_driver_opts,
    )
    .select_from(VolumeInstanceRow.__table__.join(NodeRow.__table__, _nodes.id == _vis.node_id))
    .order_by(_vis.name, _nodes.name)
)
_GRID_INSTANCES = _INSTANCES.join(VolumeRow.__table__, _volumes.id == _vis.volume_id).where(
    _volumes.grid_id == bindparam("grid_id")
)
_VOLUME_INSTANCES = _INSTANCES.where(_vis.volume_id == bindparam("volume_id"))
# A volume's own fields as the store holds them, unconverted (JSON as text; SQLite's timestamps as
# text, PostgreSQL's as the driver's datetime): equal for two reads only if the stored fields are.
_VOLUME_KEY_FIELDS = (
    _volumes.id,
    _volumes.name,
    _volumes.scope,
    _volumes.driver,
    sql_cast(_volumes.driver_opts, Text),
    sql_cast(_volumes.labels, Text),
    type_coerce(_volumes.created_at, String),
    type_coerce(_volumes.updated_at, String),
    _volumes.topology,
    _volumes.stack,
    _volumes.on_node_lost,
)
_VOLUME_KEYS = (
    select(*_VOLUME_KEY_FIELDS).where(_volumes.grid_id == bindparam("grid_id")).order_by(_volumes.name)
)
_VOLUMES_WITH_KEYS = select(*_VOLUME_FIELDS.selected_columns, *_VOLUME_KEY_FIELDS).where(
    _volumes.id.in_(bindparam("ids", expanding=True))
)
_INSERT_VOLUME = insert(_VOLUME_TABLE)
# What the grid's nodes report of a driver (a superset: the nodes whose facts mention its name;
# ``_capability`` reads the real list), for the topology check of a new volume.
_NODE_DRIVERS_NAMING = select(_nodes.name, _nodes.info).where(
    _nodes.grid_id == bindparam("grid_id"), sql_cast(_nodes.info, Text).like(bindparam("pattern"), escape="/")
)
# Removal: the volume's instances become ``removing`` and let go of it, then the definition goes.
_MARK_REMOVING = (
    update(_VI_TABLE)
    .where(_vis.volume_id == bindparam("removed"))
    .values(state=VolumeInstanceState.REMOVING.value, volume_id=None, updated_at=bindparam("now"))
)
_MARK_REMOVING_RETURNING_NODES = _MARK_REMOVING.returning(_vis.node_id)
_VOLUME_NODES = select(_vis.node_id).where(_vis.volume_id == bindparam("removed"))
_RETIRED_TABLE = cast(Table, RetiredVolumeRow.__table__)
_retired = _RETIRED_TABLE.c
_KEPT_COPY_NODES = select(_retired.node_id).where(_retired.volume_id == bindparam("removed"))
_PURGE_KEPT_COPIES = (
    update(_RETIRED_TABLE).where(_retired.volume_id == bindparam("removed")).values(state="purging")
)
# The grid and its volume of that name, the volume's row locked (PostgreSQL; on SQLite the unit of
# work holds the write lock already): a service that mounts it cannot be added meanwhile, as
# ``missing_volumes`` locks the volumes it finds ``FOR SHARE`` (see ``Database``).
_GRID_AND_LOCKED_VOLUME = (
    select(_grids.id, _grids.name, _volumes.id)
    .select_from(GridRow.__table__.join(VolumeRow.__table__, _volumes.grid_id == _grids.id))
    .where(_grids.name == bindparam("grid"), _volumes.name == bindparam("name"))
    .with_for_update(of=_VOLUME_TABLE)
)
_DELETE_VOLUME = delete(_VOLUME_TABLE).where(  # by id and name: see store/removal.py
    _volumes.id == bindparam("removed"), _volumes.name == bindparam("name")
)


@dataclass(frozen=True, slots=True)
class VolumeInstanceView:
    id: str
    name: str
    node: str
    zone: str | None
    region: str | None
    state: str
    error: str | None
    unused_since: datetime | None = None
    # what its node's engine has (None: not reported yet); compared with the definition for drift
    reported_driver: str | None = None
    reported_driver_opts: dict[str, str] | None = None


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
    topology: str
    stack: str | None = None  # the owning stack's name; None for a volume made by ``volume create``
    on_node_lost: str = OnNodeLost.WAIT  # model.node_loss: what its data does on a node declared lost


def create_volume(
    session: Session,
    grid: str,
    *,
    name: str,
    scope: str,
    driver: str,
    driver_opts: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
    topology: str | None = None,
    stack: str | None = None,
    on_node_lost: str | None = None,
) -> VolumeView:
    """Record a volume definition. Without ``topology`` it gets its driver's default (``grid``
    when a node of the grid has the driver global, else ``node``), stored as the volume's own; a
    topology wider than the nodes say the driver can honour is refused. ``stack``: the stack
    that declares it and owns it (``store/stack_volumes.py``). ``on_node_lost``: wait (the
    default), restore or recreate (``model.node_loss``), for instance-scope volumes."""
    conn = session.connection()
    grid_id, grid_name, existing = _grid_and_volume_id(conn, grid, name)
    driver_opts = dict(driver_opts or {})
    labels = dict(labels or {})
    capability = _capability(conn, grid_id, driver)
    topology = topology if topology is not None else default_topology(capability).value
    errors = volume_definition_errors(name, scope, driver, driver_opts, labels, topology, capability)
    on_node_lost = on_node_lost if on_node_lost is not None else OnNodeLost.WAIT.value
    if (problem := on_node_lost_error(on_node_lost, scope)) is not None and "scope" not in errors:
        errors["on_node_lost"] = problem
    if "name" not in errors and existing is not None:
        errors["name"] = "Volume with given name already exists"
    if errors:
        raise InvalidInput(errors)
    now = datetime.now(UTC)
    conn.execute(
        _INSERT_VOLUME,
        {
            "grid_id": grid_id,
            "name": name,
            "scope": scope,
            "driver": driver,
            "driver_opts": driver_opts,
            "labels": labels,
            "created_at": now,
            "updated_at": now,
            "topology": topology,
            "stack": stack,
            "on_node_lost": on_node_lost,
        },
    )
    # What reading the new row back would give: the values just written (timestamps keep their
    # microseconds in both stores), and no volume instances, since none can point at a volume id
    # that did not exist (removing a volume detaches its instances, and the foreign key does too).
    return VolumeView(
        grid=grid_name,
        name=name,
        scope=scope,
        driver=driver,
        driver_opts=driver_opts,
        labels=labels,
        created_at=now,
        updated_at=now,
        instances=(),
        services=tuple(_users_of(conn, grid_id, grid_name, name)),
        topology=topology,
        stack=stack,
        on_node_lost=on_node_lost,
    )


def _capability(conn: Connection, grid_id: int, driver: str) -> DriverCapability:
    """What the grid's nodes (online or not) report of ``driver``: one statement, reading only
    the nodes whose facts mention its name."""
    reports: list[tuple[str, str | None]] = []
    rows = conn.execute(_NODE_DRIVERS_NAMING, {"grid_id": grid_id, "pattern": _like_pattern(driver)}).all()
    for node, info in rows:
        for found in (info or {}).get("drivers") or ():
            if isinstance(found, dict) and found.get("name") == driver:
                scope = found.get("scope")
                reports.append((node, scope if isinstance(scope, str) else None))
    return DriverCapability.of(driver, reports)


def get_volume_row(session: Session, grid_row: GridRow, name: str) -> VolumeRow:
    row = session.scalar(select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == name))
    if row is None:
        raise NotFound(f"Volume {name} not found")
    return row


@lru_cache(maxsize=4096)
def _mounted_volumes(document_text: str) -> tuple[str, ...]:
    """The grid volumes a stored service document mounts (``StoredService.grid_volumes``), by its
    text: a pure function of that text, so an answer kept for it is right for as long as any row
    holds that text. The volume API asks this of every service of the grid on every request; the
    stack pipeline runs once per distinct document."""
    return tuple(load_service(json.loads(document_text)).grid_volumes)


def services_using(session: Session, grid_row: GridRow) -> dict[str, list[str]]:
    """Grid volume name -> ids of the services (running or not) whose mounts refer to it."""
    return _users(session.connection(), grid_row.id, grid_row.name)


def _users(conn: Connection, grid_id: int, grid_name: str) -> dict[str, list[str]]:
    users: dict[str, list[str]] = {}
    for stack, name, text in conn.execute(_SERVICE_MOUNTS, {"grid_id": grid_id}).all():
        for volume in _mounted_volumes(text):
            users.setdefault(volume, []).append(full_service_id(grid_name, stack, name))
    return users


def named_pattern(volume: str) -> str:
    """A LIKE pattern every stored document that mounts ``volume`` matches: one holds the name
    as written, except for a stack's own volume (``<stack>_<alias>``, ``model.stack``), which a
    document holds as its alias and its stack's name; both contain what follows the first ``_``."""
    return _like_pattern(volume.partition("_")[2] or volume)


def _like_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``/``) matching any string that contains ``text``."""
    return "%" + text.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


def _users_of(conn: Connection, grid_id: int, grid_name: str, volume: str) -> list[str]:
    """``_users(...).get(volume, [])`` for one volume, reading only the documents that contain
    its name: a document that mounts it holds the name as written (a mount's source, or an
    ``external: {name: ...}``; JSON writes letters, digits, '_' and '-' as they are), and LIKE
    only ever finds more (SQLite's ignores case), which ``_mounted_volumes`` then sorts out."""
    params = {"grid_id": grid_id, "pattern": named_pattern(volume)}
    return [
        full_service_id(grid_name, stack, name)
        for stack, name, text in conn.execute(_SERVICE_MOUNTS_NAMING, params).all()
        if volume in _mounted_volumes(text)
    ]


def missing_volumes(session: Session, grid_row: GridRow, names: list[str]) -> list[str]:
    """The ``names`` the grid has no volume of. The volumes found stay locked ``FOR SHARE`` until
    the unit of work ends, so none of them is removed before the service that mounts them is
    stored (``remove_volume`` locks its volume ``FOR UPDATE``)."""
    if not names:
        return []
    found = set(
        session.scalars(
            select(VolumeRow.name)
            .where(VolumeRow.grid_id == grid_row.id, VolumeRow.name.in_(names))
            .with_for_update(read=True)
        )
    )
    return [n for n in dict.fromkeys(names) if n not in found]


def _grid(conn: Connection, grid: str) -> tuple[int, str]:
    """The grid's id and name; the same answer as ``get_grid_row``, without loading the row."""
    found = conn.execute(_GRID, {"grid": grid}).first()
    if found is None:
        raise NotFound(f"Grid {grid} not found")
    return found[0], found[1]


def _grid_and_volume_id(conn: Connection, grid: str, name: str) -> tuple[int, str, int | None]:
    """``_grid`` and the id of the grid's volume ``name`` (None when there is none)."""
    found = conn.execute(_GRID_AND_VOLUME_ID, {"grid": grid, "name": name}).first()
    if found is None:
        raise NotFound(f"Grid {grid} not found")
    return found[0], found[1], found[2]


def _instances(
    conn: Connection, query: Select[Any], **params: Any
) -> dict[int, tuple[VolumeInstanceView, ...]]:
    """Volume id -> its volume instances, by Docker volume name then node name."""
    found: dict[int, list[VolumeInstanceView]] = {}
    for row in conn.execute(query, params).all():
        volume_id, vi_id, vi_name, node, zone, region, state, error, since, driver, opts = row
        if volume_id is not None:
            found.setdefault(volume_id, []).append(
                VolumeInstanceView(
                    id=vi_id,
                    name=vi_name,
                    node=node,
                    zone=zone,
                    region=region,
                    state=state,
                    error=error,
                    unused_since=since,
                    reported_driver=driver,
                    reported_driver_opts=None if opts is None else {str(k): str(v) for k, v in opts.items()},
                )
            )
    return {volume_id: tuple(views) for volume_id, views in found.items()}


def _view(
    grid_name: str,
    row: Sequence[Any],
    instances: Mapping[int, tuple[VolumeInstanceView, ...]],
    users: Mapping[str, list[str]],
) -> VolumeView:
    volume_id, name, scope, driver, driver_opts, labels, created_at, updated_at, topology, stack, policy = row
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
        topology=topology,
        stack=stack,
        on_node_lost=policy,
    )


def _one_view(conn: Connection, grid_id: int, grid_name: str, name: str) -> VolumeView:
    row = conn.execute(_VOLUME, {"grid_id": grid_id, "name": name}).first()
    if row is None:
        raise NotFound(f"Volume {name} not found")
    instances = _instances(conn, _VOLUME_INSTANCES, volume_id=row[0])
    return _view(grid_name, row, instances, {name: _users_of(conn, grid_id, grid_name, name)})


def list_volumes(session: Session, grid: str) -> list[VolumeView]:
    """Every volume of the grid, by name, with its instances and the services using it."""
    conn = session.connection()
    grid_id, grid_name = _grid(conn, grid)
    users = _users(conn, grid_id, grid_name)
    instances = _instances(conn, _GRID_INSTANCES, grid_id=grid_id)
    rows = conn.execute(_VOLUMES, {"grid_id": grid_id}).all()
    return [_view(grid_name, row, instances, users) for row in rows]


@dataclass(frozen=True, slots=True)
class VolumeListing:
    """What ``list_volumes`` reads, with each volume's own fields left as a key: for a reader that
    keeps what it made of those fields (``volume_heads``) and would rather not convert them again.

    ``volumes``: (key, volume id, name) by name. A key is hashable and equal for two volumes only
    if their stored fields (name, scope, driver, driver_opts, labels, created_at, updated_at,
    topology) and grid name are.
    """

    grid: str
    volumes: tuple[tuple[Hashable, int, str], ...]
    instances: Mapping[int, tuple[VolumeInstanceView, ...]]
    users: Mapping[str, list[str]]


def volume_listing(session: Session, grid: str) -> VolumeListing:
    """``list_volumes`` as a ``VolumeListing``: the same four queries, no field converted."""
    conn = session.connection()
    grid_id, grid_name = _grid(conn, grid)
    users = _users(conn, grid_id, grid_name)
    instances = _instances(conn, _GRID_INSTANCES, grid_id=grid_id)
    rows = conn.execute(_VOLUME_KEYS, {"grid_id": grid_id}).all()
    return VolumeListing(
        grid=grid_name,
        volumes=tuple(((grid_name, *row), row[0], row[1]) for row in rows),
        instances=instances,
        users=users,
    )


def volume_heads(session: Session, grid: str, keys: Collection[Hashable]) -> dict[Hashable, VolumeView]:
    """The volumes of ``keys`` (from a ``VolumeListing`` of ``grid``) as views of their own fields
    (no instances, no services), by key. A volume changed since its key was read is left out."""
    wanted = set(keys)
    ids = sorted({key[1] for key in wanted if isinstance(key, tuple)})
    heads: dict[Hashable, VolumeView] = {}
    conn = session.connection()
    for start in range(0, len(ids), 900):
        for row in conn.execute(_VOLUMES_WITH_KEYS, {"ids": ids[start : start + 900]}).all():
            key = (grid, *row[len(_VOLUME_FIELDS.selected_columns) :])
            if key in wanted:
                heads[key] = _view(grid, row[: len(_VOLUME_FIELDS.selected_columns)], {}, {})
    return heads


def set_on_node_lost(session: Session, grid: str, name: str, policy: str) -> tuple[VolumeView, str | None]:
    """Change what the volume's data does on a node declared lost; (the volume, its policy before,
    None when it did not change)."""
    grid_row = get_grid_row(session, grid)
    row = session.scalar(
        select(VolumeRow).where(VolumeRow.grid_id == grid_row.id, VolumeRow.name == name).with_for_update()
    )
    if row is None:
        raise NotFound(f"Volume {name} not found")
    if (problem := on_node_lost_error(policy, row.scope)) is not None:
        raise InvalidInput.one("on_node_lost", problem)
    before = row.on_node_lost
    if before != policy:
        row.on_node_lost = policy
        row.updated_at = datetime.now(UTC)
        session.flush()
    return show_volume(session, grid, name), before if before != policy else None


def show_volume(session: Session, grid: str, name: str) -> VolumeView:
    conn = session.connection()
    grid_id, grid_name = _grid(conn, grid)
    return _one_view(conn, grid_id, grid_name, name)


def remove_volume(session: Session, grid: str, name: str) -> set[str]:
    """Remove the definition; its volume instances become ``removing``, and the copies moves and
    lost nodes left (retired, stale) are purged with it. Returns the nodes to tell."""
    conn = session.connection()
    found = conn.execute(_GRID_AND_LOCKED_VOLUME, {"grid": grid, "name": name}).first()
    if found is None:
        _grid(conn, grid)  # NotFound for the grid, if it is the grid that is missing
        raise NotFound(f"Volume {name} not found")
    grid_id, grid_name, volume_id = found
    users = _users_of(conn, grid_id, grid_name, name)
    if users:
        raise InvalidInput.one(
            "name",
            f"Volume {name} is still in use by services: {', '.join(users)}; "
            "remove those services (moorage service rm / moorage stack rm) first",
        )
    _record_removing(session, grid_id, volume_id, name)
    params = {"removed": volume_id, "now": datetime.now(UTC)}  # (a key named as a column would be SET)
    if conn.dialect.update_returning:  # one statement marks them and says where they are
        nodes = set(conn.scalars(_MARK_REMOVING_RETURNING_NODES, params))
    else:
        nodes = set(conn.scalars(_VOLUME_NODES, params))
        conn.execute(_MARK_REMOVING, params)
    # its retired (moved-from) and stale (lost node's) copies go with it: their nodes delete them
    nodes |= set(conn.scalars(_KEPT_COPY_NODES, {"removed": volume_id}))
    conn.execute(_PURGE_KEPT_COPIES, {"removed": volume_id})
    if conn.execute(_DELETE_VOLUME, {"removed": volume_id, "name": name}).rowcount == 0:  # store/removal.py
        raise NotFound(f"Volume {name} not found")  # (and the marks above roll back)
    return nodes


def _record_removing(session: Session, grid_id: int, volume_id: int, volume: str) -> None:
    """An event per volume instance of a volume being removed: its node deletes the Docker volume."""
    found = session.execute(
        select(VolumeInstanceRow.id, VolumeInstanceRow.name, VolumeInstanceRow.node_id, NodeRow.name)
        .join(NodeRow, NodeRow.id == VolumeInstanceRow.node_id)
        .where(VolumeInstanceRow.volume_id == volume_id)
    ).tuples()
    record_events(
        session,
        *(
            NewEvent(
                grid_id,
                EventKind.VOLUME_INSTANCE_REMOVING,
                f"Docker volume {docker_name} of volume {volume} is being deleted on node {node}",
                volume=volume,
                volume_instance=row_id,
                node_id=node_id,
                node=node,
            )
            for row_id, docker_name, node_id, node in found
        ),
    )

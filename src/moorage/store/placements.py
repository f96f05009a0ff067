"""Writing a deployment's placements: instance rows and the volume instances they need, in bulk.

One query per kind to read what exists, one bulk INSERT and one bulk UPDATE per table: the cost per
placement stays flat however many there are in one go.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from moorage.model.container import PlannedContainer
from moorage.model.events import EventKind
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.model.volume import VolumeDomain, VolumeScope, VolumeTopology, follows_instance
from moorage.store.any_of import any_of
from moorage.store.bulk_insert import insert_rows
from moorage.store.events import NewEvent, record_events
from moorage.store.row_ids import ordered_ids
from moorage.store.tables import InstanceRow, VolumeInstanceRow

__all__ = [
    "InstanceWrite",
    "KnownVolumeInstance",
    "NodePlace",
    "VolumeWrite",
    "chunks",
    "mark_pending",
    "volume_instances_named",
    "write_placements",
]

T = TypeVar("T")
CHUNK = 900  # stays under every backend's limit on bound parameters


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


@dataclass(frozen=True, slots=True)
class VolumeWrite:
    """A Docker volume an instance needs on its node, recorded as a volume instance before the container."""

    volume_id: int
    volume: str  # the grid volume's name
    name: str  # the Docker volume name
    driver: str
    driver_opts: dict[str, str]
    scope: VolumeScope
    topology: VolumeTopology = VolumeTopology.NODE
    on_node_lost: str = "wait"  # the volume's policy (model.node_loss.OnNodeLost)


@dataclass(frozen=True, slots=True)
class NodePlace:
    """What the volume instances made for an instance take from its node: its zone and region
    (recorded on them), and its drivers' capability scopes (with the zone and region, what
    ``model.volume.follows_instance`` needs to say whether a volume instance re-attaches there)."""

    zone: str | None
    drivers: Mapping[str, str | None]
    region: str | None = None
    name: str | None = None  # the node's, for the events of what is made on it

    @property
    def labels(self) -> Mapping[str, str]:
        """The node's zone and region as labels: all a volume domain reads of them."""
        found = {}
        if self.zone is not None:
            found["zone"] = self.zone
        if self.region is not None:
            found["region"] = self.region
        return found


@dataclass(frozen=True, slots=True)
class InstanceWrite:
    """One instance's new desired state; ``container`` None means no container anywhere."""

    service_row_id: int
    number: int
    node_id: str | None
    container: PlannedContainer | None
    state: InstanceState
    reason: str | None = None
    volumes: tuple[VolumeWrite, ...] = ()
    place: NodePlace | None = None  # its node's, whenever it has a node and a container


def _instance_values(item: InstanceWrite, now: datetime) -> dict[str, Any]:
    container = item.container
    return {
        "node_id": item.node_id,
        "container": container.document if container is not None else None,
        "desired_hash": container.config_hash if container is not None else None,
        "host_ports": list(container.host_ports) if container is not None and container.host_ports else None,
        "memory": container.memory if container is not None else None,
        "cpus": container.cpus if container is not None else None,
        "state": item.state,
        "reason": item.reason,
        "updated_at": now,
    }


def write_placements(session: Session, grid_id: int, items: Sequence[InstanceWrite]) -> set[str]:
    """Record ``items`` (volume instances first, then instances); the nodes whose desired state changed."""
    if not items:
        return set()
    now = datetime.now(UTC)
    touched = {item.node_id for item in items if item.node_id is not None and item.container is not None}
    _write_volume_instances(
        session, grid_id, [i for i in items if i.node_id and i.container is not None], now
    )
    existing: dict[tuple[int, int], tuple[int, str | None]] = {}
    service_ids = sorted({i.service_row_id for i in items})
    for part in chunks(service_ids):
        rows = session.execute(
            select(InstanceRow.id, InstanceRow.service_id, InstanceRow.number, InstanceRow.node_id).where(
                InstanceRow.service_id.in_(part)
            )
        )
        for row_id, service_id, number, node_id in rows.tuples():
            existing[(service_id, number)] = (row_id, node_id)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for item in items:
        values = _instance_values(item, now)
        found = existing.get((item.service_row_id, item.number))
        if found is None:
            inserts.append({"service_id": item.service_row_id, "number": item.number, **values})
        else:
            row_id, old_node = found
            if old_node is not None and old_node != item.node_id:
                touched.add(old_node)
            updates.append({"id": row_id, **values})
    if inserts:
        insert_rows(session.connection(), InstanceRow, inserts)
    if updates:
        session.execute(update(InstanceRow), updates)
    return touched


def mark_pending(session: Session, items: Sequence[tuple[int, int, str | None]]) -> None:
    """Mark these instances (service row id, number, reason) ``pending`` and say why, leaving
    their node and desired container as they are: their node's desired state does not change."""
    if not items:
        return
    table = cast(Table, InstanceRow.__table__)
    now = datetime.now(UTC)
    session.connection().execute(  # Core: one UPDATE run for every item (not the ORM's by-key form)
        update(table)
        .where(table.c.service_id == bindparam("sid"), table.c.number == bindparam("num"))
        .values(state=InstanceState.PENDING, reason=bindparam("why"), updated_at=now),
        [{"sid": service_id, "num": number, "why": reason} for service_id, number, reason in items],
    )


class KnownVolumeInstance(NamedTuple):
    """A stored volume instance, as placing reads it."""

    id: str
    node_id: str
    volume_id: int | None
    state: str
    name: str  # the Docker volume name
    zone: str | None
    region: str | None
    move_id: str | None = None  # the move holding it (its instance is planned nowhere meanwhile)
    restore_job: str | None = None  # the restore of a lost node's data holding it (the same)


def volume_instances_named(
    session: Session, grid_id: int, names: Iterable[str]
) -> Iterator[KnownVolumeInstance]:
    """The grid's volume instances with these Docker names, found through the (grid, name)
    index: the cost follows the names, not the grid."""
    for part in chunks(sorted(names)):
        rows = session.execute(
            select(
                VolumeInstanceRow.id,
                VolumeInstanceRow.node_id,
                VolumeInstanceRow.volume_id,
                VolumeInstanceRow.state,
                VolumeInstanceRow.name,
                VolumeInstanceRow.zone,
                VolumeInstanceRow.region,
                VolumeInstanceRow.move_id,
                VolumeInstanceRow.restore_job,
            ).where(VolumeInstanceRow.grid_id == grid_id, any_of(session, VolumeInstanceRow.name, part))
        ).tuples()
        yield from map(KnownVolumeInstance._make, rows)


def _write_volume_instances(
    session: Session, grid_id: int, items: Iterable[InstanceWrite], now: datetime
) -> None:
    wanted: dict[tuple[str, str], tuple[VolumeWrite, NodePlace]] = {}
    for item in items:
        assert item.node_id is not None and item.place is not None, (
            "a placed instance carries its node's place"
        )
        for volume in item.volumes:
            wanted.setdefault((item.node_id, volume.name), (volume, item.place))
    if not wanted:
        return
    by_name: dict[str, list[KnownVolumeInstance]] = {}
    for found in volume_instances_named(session, grid_id, {name for _, name in wanted}):
        by_name.setdefault(found.name, []).append(found)
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    events: list[NewEvent] = []
    made: list[tuple[VolumeWrite, NodePlace]] = []
    for (node_id, name), (volume, place) in wanted.items():
        known = by_name.get(name)  # a first deployment knows none: it only inserts
        change = _change_known(known, node_id, volume, place, now) if known else None
        if change is None:
            inserts.append(_new_volume_instance(grid_id, node_id, volume, place, now))
            made.append((volume, place))
        elif change:
            updates.append(change)
            if "node_id" in change:
                events.append(_moved(grid_id, change, volume, place, now))
    if updates:
        session.execute(update(VolumeInstanceRow), updates)
    if inserts:
        for row, row_id in zip(inserts, ordered_ids(len(inserts)), strict=True):
            row["id"] = row_id
        insert_rows(session.connection(), VolumeInstanceRow, inserts)
        events += [_created(row, volume, place) for row, (volume, place) in zip(inserts, made, strict=True)]
    record_events(session, *events)  # one INSERT for the batch's events


def _created(row: dict[str, Any], volume: VolumeWrite, place: NodePlace) -> NewEvent:
    node = place.name or row["node_id"]
    return NewEvent(
        row["grid_id"],
        EventKind.VOLUME_INSTANCE_CREATED,
        f"volume instance {row['name']} of volume {volume.volume} created on node {node} "
        f"(driver {volume.driver}); its agent makes the Docker volume",
        volume=volume.volume,
        volume_instance=row["id"],
        node_id=row["node_id"],
        node=place.name,
        time=row["created_at"],
    )


def _moved(
    grid_id: int, change: dict[str, Any], volume: VolumeWrite, place: NodePlace, now: datetime
) -> NewEvent:
    node = place.name or change["node_id"]
    return NewEvent(
        grid_id,
        EventKind.VOLUME_INSTANCE_MOVED,
        f"volume instance {volume.name} of volume {volume.volume} re-attached to node {node}, "
        f"in its {volume.topology.value} domain (driver {volume.driver})",
        volume=volume.volume,
        volume_instance=change["id"],
        node_id=change["node_id"],
        node=place.name,
        time=now,
    )


def _change_known(
    known: list[KnownVolumeInstance], node_id: str, volume: VolumeWrite, place: NodePlace, now: datetime
) -> dict[str, Any] | None:
    """The UPDATE that gives ``node_id`` the volume instance it needs from those of its name that
    exist: ``{}`` when the node has it as it should, None when a new one must be inserted."""
    here = next((r for r in known if r.node_id == node_id), None)
    if here is not None:
        if here.state in (VolumeInstanceState.MISSING, VolumeInstanceState.ERROR, VolumeInstanceState.UNUSED):
            # (an unused one is used again: store/volume_use.py)
            return {
                "id": here.id,
                "state": VolumeInstanceState.PENDING,
                "error": None,
                "unused_since": None,
                "updated_at": now,
            }
        return {}
    if volume.scope is not VolumeScope.INSTANCE:
        return None
    elsewhere = next(
        (r for r in known if r.volume_id == volume.volume_id and r.state != VolumeInstanceState.REMOVING),
        None,
    )
    if elsewhere is None:
        return None
    domain = VolumeDomain(volume.topology, volume.driver, elsewhere.node_id, elsewhere.zone, elsewhere.region)
    if not follows_instance(volume.scope, domain, node_id, place.labels, place.drivers):
        return None
    # inside its domain on storage the node sees: the volume instance re-attaches to this node
    # (its zone or region, whichever bounds the domain, is the same there)
    return {
        "id": elsewhere.id,
        "node_id": node_id,
        "zone": place.zone,
        "region": place.region,
        "state": VolumeInstanceState.PENDING,
        "error": None,
        "unused_since": None,
        "updated_at": now,
    }


def _new_volume_instance(
    grid_id: int, node_id: str, volume: VolumeWrite, place: NodePlace, now: datetime
) -> dict[str, Any]:
    return {
        "grid_id": grid_id,
        "volume_id": volume.volume_id,
        "node_id": node_id,
        "name": volume.name,
        "driver": volume.driver,
        "driver_opts": volume.driver_opts,
        "zone": place.zone,
        "region": place.region,
        "state": VolumeInstanceState.PENDING,
        "error": None,
        "created_at": now,
        "updated_at": now,
    }

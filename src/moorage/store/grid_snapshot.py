"""What planning reads of a grid, as plain values: its nodes, what other services hold on them,
the current instances of the services deployed, the grid's volumes, and where the Docker volumes
those services may use already are.

    GridSnapshots.nodes      the grid's nodes as their rows say; kept between deployments while
                             no node row changes (one statement checks), read again otherwise
    held                     ports, memory and CPUs the grid's instances hold, by node
    current_instances        the deployed services' instances as stored
    volume_definitions       the grid's volumes, by name
    volume_homes             the volume instances of some Docker names: which node holds which
                             (and the zone and region recorded on it), which nodes are still
                             removing one

Each read is one statement (per 900 ids or names); the cost follows the deployment, not the
grid, except for the nodes, read only when one changed.
"""

from __future__ import annotations

from collections import OrderedDict, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func, null, or_, select, union_all
from sqlalchemy.orm import Session

from moorage.model.node import NodeStatus
from moorage.model.states import VolumeInstanceState
from moorage.model.volume import VolumeScope, VolumeTopology
from moorage.store.placements import chunks, volume_instances_named
from moorage.store.tables import GridRow, InstanceRow, NodeRow, UTCDateTime, VolumeRow

__all__ = [
    "CurrentInstance",
    "GridNodes",
    "GridSnapshots",
    "GridVolume",
    "Holding",
    "NodeFacts",
    "VolumeHome",
    "VolumeHomes",
    "current_instances",
    "held",
    "volume_definitions",
    "volume_homes",
]

Stamp = tuple[int, datetime | None]  # the number of the grid's node rows and their last change


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """One node as its row says (``online`` is the row's status, not whether its agent is connected)."""

    id: str
    name: str
    online: bool
    labels: Mapping[str, str]
    drivers: Mapping[str, str | None]  # volume driver -> capability scope (local, global, None)
    memory: int  # bytes
    cpus: int
    drained: bool = False
    last_seen_at: datetime | None = None
    lost_at: datetime | None = None  # ``moorage node declare-lost``


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class GridNodes:
    """A grid's nodes at ``stamp``. One object per snapshot: a new one whenever a node row
    changed, so what is derived from it may be kept for as long as it is alive."""

    grid_id: int
    stamp: Stamp
    nodes: Mapping[str, NodeFacts]
    up: frozenset[str]  # the nodes whose row says online


class GridSnapshots:
    """The grid snapshots of one store, owned by its deployer.

    At most ``kept`` grids (the least recently planned goes first). Every check of a grid's stamp
    also says which of the other kept grids still exist (the same statement), and a removed
    grid's snapshot goes then.
    """

    def __init__(self, kept: int = 8) -> None:
        self.kept = kept
        self._grids: OrderedDict[int, GridNodes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._grids)

    def __contains__(self, grid_id: object) -> bool:
        return grid_id in self._grids

    def nodes(self, session: Session, grid_id: int) -> GridNodes:
        stamp, existing = self._check(session, grid_id)
        for gone in [g for g in self._grids if g != grid_id and g not in existing]:
            del self._grids[gone]
        cached = self._grids.get(grid_id)
        if cached is not None and cached.stamp == stamp:
            self._grids.move_to_end(grid_id)
            return cached
        snapshot = _read_nodes(session, grid_id, stamp)
        self._grids[grid_id] = snapshot
        self._grids.move_to_end(grid_id)
        while len(self._grids) > self.kept:
            self._grids.popitem(last=False)
        return snapshot

    def _check(self, session: Session, grid_id: int) -> tuple[Stamp, set[int]]:
        """The grid's stamp, and which other kept grids still exist: one statement."""
        stamp_row = select(cast(null(), Integer), func.count(), func.max(NodeRow.updated_at)).where(
            NodeRow.grid_id == grid_id
        )
        others = [g for g in self._grids if g != grid_id]
        if not others:
            found = session.execute(stamp_row).one()
            return (int(found[1]), found[2]), set()
        kept = select(GridRow.id, cast(null(), BigInteger), cast(null(), UTCDateTime())).where(
            GridRow.id.in_(others)
        )
        stamp: Stamp = (0, None)
        existing: set[int] = set()
        for kept_id, count, changed in session.execute(union_all(stamp_row, kept)).tuples():
            if count is None:
                existing.add(int(kept_id))
            else:
                stamp = (int(count), changed)
        return stamp, existing


def _read_nodes(session: Session, grid_id: int, stamp: Stamp) -> GridNodes:
    rows = session.execute(
        select(
            NodeRow.id,
            NodeRow.name,
            NodeRow.status,
            NodeRow.labels,
            NodeRow.info,
            NodeRow.drained,
            NodeRow.last_seen_at,
            NodeRow.lost_at,
        ).where(NodeRow.grid_id == grid_id)
    ).tuples()
    nodes = {
        node_id: _facts(node_id, name, status, labels, info, drained, seen, lost)
        for node_id, name, status, labels, info, drained, seen, lost in rows
    }
    return GridNodes(grid_id, stamp, nodes, frozenset(i for i, n in nodes.items() if n.online))


def _facts(
    node_id: str,
    name: str,
    status: str,
    labels: dict[str, Any],
    info: dict[str, Any],
    drained: bool,
    last_seen_at: datetime | None = None,
    lost_at: datetime | None = None,
) -> NodeFacts:
    return NodeFacts(
        id=node_id,
        name=name,
        online=status == NodeStatus.ONLINE.value,
        labels=labels,
        drivers={d["name"]: d.get("scope") for d in info.get("drivers", [])},
        memory=int(info.get("memory") or 0),
        cpus=int(info.get("cpus") or 0),
        drained=bool(drained),
        last_seen_at=last_seen_at,
        lost_at=lost_at,
    )


@dataclass(frozen=True, slots=True)
class Holding:
    """What the instances of other services hold on one node."""

    node_id: str
    ports: frozenset[int]
    memory: int
    cpus: float


def held(session: Session, grid_id: int, skip: Collection[int]) -> tuple[Holding, ...]:
    """What the grid's instances of services not in ``skip`` hold, by node id. Only this grid's
    nodes are read (by their grid index), and of their instances only those that hold ports,
    memory or CPUs (by a partial index)."""
    ports: dict[str, set[int]] = defaultdict(set)
    memory: dict[str, int] = defaultdict(int)
    cpus: dict[str, float] = defaultdict(float)
    rows = session.execute(
        select(
            InstanceRow.service_id,
            InstanceRow.node_id,
            InstanceRow.host_ports,
            InstanceRow.memory,
            InstanceRow.cpus,
        )
        .join(NodeRow, NodeRow.id == InstanceRow.node_id)
        .where(
            NodeRow.grid_id == grid_id,
            InstanceRow.node_id.is_not(None),
            or_(
                InstanceRow.host_ports.is_not(None),
                InstanceRow.memory.is_not(None),
                InstanceRow.cpus.is_not(None),
            ),
        )
    ).tuples()
    for service_id, node_id, host_ports, mem, cpu in rows:
        if service_id in skip or node_id is None:
            continue
        ports[node_id].update(int(p) for p in host_ports or ())
        memory[node_id] += mem or 0
        cpus[node_id] += cpu or 0.0
    return tuple(
        Holding(node_id, frozenset(ports.get(node_id, ())), memory.get(node_id, 0), cpus.get(node_id, 0.0))
        for node_id in sorted(set(ports) | set(memory) | set(cpus))
    )


@dataclass(frozen=True, slots=True)
class CurrentInstance:
    """An instance as stored: where its container is meant to run, and with which config."""

    node_id: str | None
    desired_hash: str | None
    has_container: bool


def current_instances(session: Session, service_ids: Iterable[int]) -> dict[int, dict[int, CurrentInstance]]:
    """Service row id -> instance number -> the instance as stored (every id has an entry)."""
    ids = sorted(set(service_ids))
    current: dict[int, dict[int, CurrentInstance]] = {service_id: {} for service_id in ids}
    for part in chunks(ids):
        rows = session.execute(
            select(
                InstanceRow.service_id,
                InstanceRow.number,
                InstanceRow.node_id,
                InstanceRow.desired_hash,
                InstanceRow.container.is_not(None),
            ).where(InstanceRow.service_id.in_(part))
        ).tuples()
        for service_id, number, node_id, desired_hash, has_container in rows:
            current[service_id][number] = CurrentInstance(node_id, desired_hash, bool(has_container))
    return current


@dataclass(frozen=True, slots=True)
class GridVolume:
    """A volume definition of the grid."""

    id: int
    name: str
    scope: VolumeScope
    driver: str
    driver_opts: Mapping[str, str]
    topology: VolumeTopology
    on_node_lost: str = "wait"  # model.node_loss.OnNodeLost


def volume_definitions(session: Session, grid_id: int) -> dict[str, GridVolume]:
    rows = session.execute(
        select(
            VolumeRow.id,
            VolumeRow.name,
            VolumeRow.scope,
            VolumeRow.driver,
            VolumeRow.driver_opts,
            VolumeRow.topology,
            VolumeRow.on_node_lost,
        ).where(VolumeRow.grid_id == grid_id)
    ).tuples()
    return {
        name: GridVolume(
            volume_id, name, VolumeScope(scope), driver, dict(driver_opts), VolumeTopology(topology), policy
        )
        for volume_id, name, scope, driver, driver_opts, topology, policy in rows
    }


@dataclass(frozen=True, slots=True)
class VolumeHome:
    """The node holding a volume instance, and the zone and region recorded on it."""

    node_id: str
    zone: str | None = None
    region: str | None = None
    move_id: str | None = None  # a volume move holds it: its instance stays stopped meanwhile
    restore_job: str | None = None  # a restore of a lost node's data holds it (master/node_loss.py)


@dataclass(frozen=True, slots=True)
class VolumeHomes:
    """Where Docker volumes of some names are: ``held`` maps (volume id, Docker name) to where
    that volume instance is; ``removing`` maps a Docker name to the nodes still deleting a volume
    instance of that name (of a removed volume)."""

    held: Mapping[tuple[int, str], VolumeHome]
    removing: Mapping[str, frozenset[str]]


def volume_homes(session: Session, grid_id: int, names: Iterable[str]) -> VolumeHomes:
    """The grid's volume instances of these Docker names (by the (grid, name) index; no
    statement when there are no names)."""
    holders: dict[tuple[int, str], VolumeHome] = {}
    removing: dict[str, set[str]] = defaultdict(set)
    for found in volume_instances_named(session, grid_id, names):
        if found.state == VolumeInstanceState.REMOVING:
            removing[found.name].add(found.node_id)
        elif found.volume_id is not None:
            holders[(found.volume_id, found.name)] = VolumeHome(
                found.node_id, found.zone, found.region, found.move_id, found.restore_job
            )
    return VolumeHomes(holders, {name: frozenset(nodes) for name, nodes in removing.items()})

"""From stored services to placements: read the grid, build the scheduler's view, run it, and
decide what must change. Synchronous, inside one store transaction; applies nothing.

    store/grid_snapshot: nodes, what others hold, current instances, volumes, volume homes
        ──▶ NodeViews (an index kept per snapshot), InstanceRequests (with VolumeNeeds)
        ──schedule_service──▶ Placements
        ──planning_decision──▶ InstancePlan per instance:
            unchanged | start (new container) | replace (other node or config) | pending | failed
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol
from weakref import WeakKeyDictionary

from sqlalchemy.orm import Session

from moorage.master.container_specs import ContainerTemplate
from moorage.master.planning_decision import (
    InstancePlan,
    PlanKind,
    ServicePlan,
    Slot,
    decide,
    missing_volume_plans,
    removed_numbers,
)
from moorage.model.stack import DeployStrategy, MountKind, full_service_id
from moorage.model.volume import REGION_LABEL, VolumeScope, VolumeTopology, docker_volume_name
from moorage.scheduler import (
    InstanceRequest,
    NodeIndex,
    NodeView,
    Placement,
    VolumeNeed,
    daemon_plan,
    schedule_service,
)
from moorage.stackfile.stored_service import StoredService
from moorage.store.grid_snapshot import (
    CurrentInstance,
    GridNodes,
    GridSnapshots,
    GridVolume,
    Holding,
    VolumeHomes,
    current_instances,
    held,
    volume_definitions,
    volume_homes,
)
from moorage.store.placements import NodePlace, VolumeWrite
from moorage.store.services import StoredRow, stored_service

__all__ = ["RESTORING", "InstancePlan", "PlanKind", "ServicePlan", "plan_services"]

RESTORING = (
    "its node was declared lost: its volume instance {volume_instance} is being restored from its latest "
    "backup on another node (job {job}); it starts there when the restore ends"
)

_NOWHERE: frozenset[str] = frozenset()
_INDEXES_KEPT = 8  # per grid: (nodes away, what other services hold) changes with most deployments


class _Grid(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


_Usage = tuple[Holding, ...]


@dataclass(slots=True)
class _GridViews:
    """What planning makes of one grid snapshot, kept while the snapshot lives (it is dropped
    when a node row changes, or when the deployer's ``GridSnapshots`` lets the grid go): a
    deployment on a large, quiet grid neither converts every node again nor rebuilds the index
    and its pools."""

    views: dict[str, NodeView]  # online = what the row says; nothing held by other services
    up: frozenset[str]
    drained: frozenset[str]  # what the rows say
    indexes: dict[tuple[frozenset[str], frozenset[str], _Usage], NodeIndex] = field(default_factory=dict)
    places: dict[str, NodePlace] = field(default_factory=dict)  # made when first needed

    @staticmethod
    def of(snapshot: GridNodes) -> _GridViews:
        views = {
            node.id: NodeView(
                id=node.id,
                name=node.name,
                online=node.online,
                labels=node.labels,
                drivers=node.drivers,
                memory=node.memory,
                cpus=node.cpus,
                used_ports=frozenset(),
                drained=node.drained,
                last_seen=node.last_seen_at,
                lost_at=node.lost_at,
            )
            for node in snapshot.nodes.values()
        }
        return _GridViews(views, snapshot.up, frozenset(i for i, n in snapshot.nodes.items() if n.drained))

    def place(self, node_id: str) -> NodePlace | None:
        """The zone, region and drivers of a node, for the volume instances made on it."""
        found = self.places.get(node_id)
        if found is None:
            node = self.views.get(node_id)
            if node is None:
                return None
            found = self.places[node_id] = NodePlace(
                node.zone, node.drivers, node.labels.get(REGION_LABEL), name=node.name
            )
        return found

    def index(self, away: frozenset[str], usage: _Usage, drain: frozenset[str] = _NOWHERE) -> NodeIndex:
        """The nodes with ``away`` offline, ``drain`` drained and what other services hold applied;
        a fresh commit state."""
        key = (away, drain, usage)
        index = self.indexes.get(key)
        if index is None:
            views = dict(self.views)
            for node_id in away:
                views[node_id] = replace(views[node_id], online=False)
            for node_id in drain:
                if node_id in views:
                    views[node_id] = replace(views[node_id], drained=True)
            for holding in usage:
                if holding.node_id in views:  # a node added since the snapshot was read waits for the next
                    views[holding.node_id] = replace(
                        views[holding.node_id],
                        used_ports=holding.ports,
                        reserved_memory=holding.memory,
                        reserved_cpus=holding.cpus,
                    )
            if len(self.indexes) >= _INDEXES_KEPT:
                self.indexes.clear()
            index = self.indexes[key] = NodeIndex(views.values())
        return index.fresh()


_derived: WeakKeyDictionary[GridNodes, _GridViews] = WeakKeyDictionary()  # lives as long as its snapshot


def _grid_views(snapshot: GridNodes) -> _GridViews:
    found = _derived.get(snapshot)
    if found is None:
        found = _derived[snapshot] = _GridViews.of(snapshot)
    return found


def plan_services(
    session: Session,
    grid: _Grid,
    service_rows: Sequence[StoredRow],
    connected: set[str],
    snapshots: GridSnapshots,
    drain: frozenset[str] = _NOWHERE,
    lifted: Mapping[str, frozenset[str]] | None = None,
) -> list[ServicePlan]:
    """Plans for ``service_rows`` (in deploy order); later services see what earlier ones take.
    Nodes are online when their agent is connected; ``snapshots`` keeps the grid's nodes.
    ``drain``: nodes planned as drained although their rows are not (``node drain --dry-run``).
    ``lifted``: node-topology volume instances (Docker name -> the nodes that hold a Docker volume
    of that name already) planned as if their data moved with their instance: where a drain
    moves them (a preview only; never rolled out, since the data is not there yet)."""
    deploying = {row.id for row in service_rows}
    nodes = _grid_views(snapshots.nodes(session, grid.id))
    drain = frozenset(drain - nodes.drained)
    index = nodes.index(nodes.up - connected, held(session, grid.id, deploying), drain)
    drained = nodes.drained | drain
    volumes = volume_definitions(session, grid.id)
    current = current_instances(session, deploying)
    stored = {row.id: stored_service(row) for row in service_rows}
    names = _docker_names(stored, current, volumes, len(index))
    homes = volume_homes(session, grid.id, names)
    plans = []
    for row in service_rows:
        service = _ServiceInputs(
            grid.name, row.id, stored[row.id], current[row.id], volumes, homes, lifted or {}
        )
        plan, requests, placements = _plan_one(service, index, nodes, drained)
        index.commit(requests, placements)
        plans.append(plan)
    return plans


def _docker_names(
    stored: Mapping[int, StoredService],
    current: Mapping[int, Mapping[int, CurrentInstance]],
    volumes: Mapping[str, GridVolume],
    node_count: int,
) -> set[str]:
    """The Docker volume names the instances being planned can have: only those are looked up
    (by an index), so the cost follows the deployment, not the size of the grid."""
    names: set[str] = set()
    for row_id, service in stored.items():
        most = node_count if service.spec.strategy is DeployStrategy.DAEMON else service.spec.instances
        numbers = set(range(1, most + 1)) | set(current[row_id])
        for alias in _aliases(service):
            volume = volumes.get(service.volume_of(alias))
            if volume is None:
                continue
            if volume.scope is not VolumeScope.INSTANCE:
                names.add(docker_volume_name(volume.scope, volume.name, service.stack, service.spec.name, 1))
                continue
            names.update(
                docker_volume_name(VolumeScope.INSTANCE, volume.name, service.stack, service.spec.name, n)
                for n in numbers
            )
    return names


@dataclass(frozen=True, slots=True)
class _ServiceInputs:
    """What planning one service reads."""

    grid: str
    row_id: int
    stored: StoredService
    current: Mapping[int, CurrentInstance]
    volumes: Mapping[str, GridVolume]
    homes: VolumeHomes
    lifted: Mapping[str, frozenset[str]]

    @property
    def service_id(self) -> str:
        return full_service_id(self.grid, self.stored.stack, self.stored.spec.name)


class _Bindings:
    """The grid volumes one service's named mounts use, resolved once; ``of(n)`` gives instance
    n's (alias -> Docker volume name, volume bindings)."""

    def __init__(self, stored: StoredService, volumes: Mapping[str, GridVolume]) -> None:
        self.stored = stored
        self.mounts: list[tuple[str, GridVolume, dict[str, str]]] = []
        for alias in _aliases(stored):
            volume = volumes[stored.volume_of(alias)]
            self.mounts.append((alias, volume, dict(volume.driver_opts)))

    def of(self, number: int) -> tuple[dict[str, str], tuple[VolumeWrite, ...]]:
        names: dict[str, str] = {}
        bindings: list[VolumeWrite] = []
        stack, service = self.stored.stack, self.stored.spec.name
        for alias, volume, driver_opts in self.mounts:
            docker_name = docker_volume_name(volume.scope, volume.name, stack, service, number)
            names[alias] = docker_name
            bindings.append(
                VolumeWrite(
                    volume.id,
                    volume.name,
                    docker_name,
                    volume.driver,
                    driver_opts,
                    volume.scope,
                    volume.topology,
                    volume.on_node_lost,
                )
            )
        return names, tuple(bindings)


def _request(
    service: _ServiceInputs, number: int, bindings: tuple[VolumeWrite, ...], current: CurrentInstance | None
) -> InstanceRequest:
    homes, lifted = service.homes, service.lifted
    needs = tuple(_need(b, homes, lifted) for b in bindings)
    spec = service.stored.spec
    return InstanceRequest(
        service_id=service.service_id,
        instance=number,
        affinity=spec.affinity,
        ports=spec.ports,
        memory=spec.memory,
        cpus=spec.cpus,
        volumes=needs,
        current_node=current.node_id if current is not None and current.has_container else None,
    )


def _need(binding: VolumeWrite, homes: VolumeHomes, lifted: Mapping[str, frozenset[str]]) -> VolumeNeed:
    home = (
        homes.held.get((binding.volume_id, binding.name)) if binding.scope is VolumeScope.INSTANCE else None
    )
    removing = homes.removing.get(binding.name, _NOWHERE)
    taken = lifted.get(binding.name) if binding.topology is VolumeTopology.NODE else None
    if home is None or taken is not None:  # none yet, or its data would go with it (a drain's move)
        return VolumeNeed(
            binding.volume,
            binding.driver,
            binding.scope,
            binding.name,
            removing_on=removing,
            taken_on=taken or _NOWHERE,
        )
    return VolumeNeed(
        volume=binding.volume,
        driver=binding.driver,
        scope=binding.scope,
        docker_name=binding.name,
        pinned_node=home.node_id,
        removing_on=removing,
        topology=binding.topology,
        home_zone=home.zone,
        home_region=home.region,
        on_node_lost=binding.on_node_lost,
    )


def _numbers(service: _ServiceInputs, binder: _Bindings, index: NodeIndex) -> list[int]:
    """The instance numbers to plan: 1..instances, or for a daemon one per node that can take
    one, each node keeping the number of the instance it runs or whose volume instances it holds."""
    spec = service.stored.spec
    if spec.strategy is not DeployStrategy.DAEMON:
        return list(range(1, spec.instances + 1))
    template = _request(service, 1, binder.of(1)[1], None)
    anchors = {n: row.node_id for n, row in service.current.items() if row.node_id is not None}
    held_by = service.homes.held
    for number in service.current:
        for b in binder.of(number)[1]:
            if b.scope is VolumeScope.INSTANCE and (b.volume_id, b.name) in held_by:
                anchors[number] = held_by[(b.volume_id, b.name)].node_id
    return daemon_plan(index, template, anchors)


def _plan_one(
    service: _ServiceInputs, index: NodeIndex, nodes: _GridViews, drained: frozenset[str]
) -> tuple[ServicePlan, list[InstanceRequest], list[Placement]]:
    stored, current = service.stored, service.current
    plan = ServicePlan(service_row_id=service.row_id, service_id=service.service_id)
    missing = {stored.volume_of(a) for a in _aliases(stored)} - set(service.volumes)
    if missing:
        plan.instances = missing_volume_plans(
            service.row_id, service.service_id, stored.spec.instances, current, missing
        )
        return plan, [], []
    binder = _Bindings(stored, service.volumes)
    numbers = _numbers(service, binder, index)
    bound = {n: binder.of(n) for n in numbers}
    requests = [_request(service, n, bound[n][1], current.get(n)) for n in numbers]
    placements = schedule_service(index, requests, stored.spec.strategy, seed=service.service_id)
    containers = ContainerTemplate(service.grid, stored.stack, stored.spec)
    for number, request, placement in zip(numbers, requests, placements, strict=True):
        names, bindings = bound[number]
        slot = Slot(
            service_row_id=service.row_id,
            service_id=service.service_id,
            number=number,
            current=current.get(number),
            container=containers.document(number, names),
            volumes=bindings,
        )
        plan.instances.append(
            _held(slot, service.homes) or decide(slot, request, placement, nodes.place, drained)
        )
    plan.remove_numbers = removed_numbers(current, numbers)
    return plan, requests, placements


def _held(slot: Slot, homes: VolumeHomes) -> InstancePlan | None:
    """An instance whose volume instance a move (or the restore of a lost node's data) holds
    stays stopped on that volume's node, whatever else was asked: never two containers of it,
    never one mounting data being copied (the move puts it back, on the source or the target,
    when it ends; the restore starts it on the node it restored to)."""
    for binding in slot.volumes:
        home = homes.held.get((binding.volume_id, binding.name))
        if home is None:
            continue
        if home.restore_job is not None:
            reason = RESTORING.format(volume_instance=binding.name, job=home.restore_job[:12])
        elif home.move_id is not None:
            reason = (
                f"its volume instance {binding.name} is being moved (move {home.move_id[:12]}); "
                "it starts again when the move ends"
            )
        else:
            continue
        return InstancePlan(
            service_row_id=slot.service_row_id,
            service_id=slot.service_id,
            number=slot.number,
            kind="pending",
            node_id=home.node_id,
            container=None,
            reason=reason,
            had_container=slot.had_container,
        )
    return None


def _aliases(stored: StoredService) -> list[str]:
    return [m.source for m in stored.spec.mounts if m.kind is MountKind.NAMED and m.source]

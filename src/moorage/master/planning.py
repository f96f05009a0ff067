"""From stored services to placements: build the scheduler's view of the grid, run it, and say
what must change. Synchronous, inside one store transaction; applies nothing.

    nodes + instances + volume instances ──▶ NodeViews, InstanceRequests (with VolumeNeeds)
        ──schedule_service──▶ Placements ──▶ InstancePlan per instance:
            unchanged | start (new container) | replace (other node or config) | pending | failed
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from moorage.master.container_specs import ContainerTemplate
from moorage.model.container import PlannedContainer
from moorage.model.node import NodeStatus
from moorage.model.stack import DeployStrategy, MountKind, full_service_id
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.model.volume import VolumeScope, docker_volume_name
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
from moorage.store.placements import InstanceWrite, NodePlace, VolumeWrite, chunks, volume_instances_named
from moorage.store.services import stored_service
from moorage.store.tables import GridRow, InstanceRow, NodeRow, ServiceRow, VolumeRow

__all__ = ["InstancePlan", "PlanKind", "ServicePlan", "plan_services"]

PlanKind = Literal["unchanged", "start", "replace", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class InstancePlan:
    service_row_id: int
    service_id: str
    number: int
    kind: PlanKind
    node_id: str | None
    container: PlannedContainer | None
    reason: str | None = None
    volumes: tuple[VolumeWrite, ...] = ()
    had_container: bool = False  # the instance already had a container somewhere
    place: NodePlace | None = None  # the node's zone and global drivers, as planned

    def write(self, state: InstanceState) -> InstanceWrite:
        return InstanceWrite(
            service_row_id=self.service_row_id,
            number=self.number,
            node_id=self.node_id,
            container=self.container,
            state=state,
            reason=self.reason,
            volumes=self.volumes,
            place=self.place,
        )


@dataclass
class ServicePlan:
    service_row_id: int
    service_id: str
    instances: list[InstancePlan] = field(default_factory=list)
    remove_numbers: list[int] = field(default_factory=list)


_Usage = tuple[tuple[str, frozenset[int], int, float], ...]  # (node id, ports, memory, cpus) per node


@dataclass(slots=True)
class _GridNodes:
    """One grid's nodes as the scheduler sees them, kept between deployments while no node row
    changes: a deployment on a large, quiet grid neither decodes every node's JSON again nor
    rebuilds the index and its pools."""

    stamp: tuple[int, datetime | None]
    views: dict[str, NodeView]  # online = what the row says; nothing held by other services
    up: frozenset[str]  # the ids of the nodes whose row says online
    indexes: dict[tuple[frozenset[str], _Usage], NodeIndex] = field(default_factory=dict)
    places: dict[str, NodePlace] = field(default_factory=dict)  # made when first needed

    def place(self, node_id: str) -> NodePlace | None:
        """The zone and drivers of a node, for the volume instances made on it."""
        found = self.places.get(node_id)
        if found is None:
            node = self.views.get(node_id)
            if node is None:
                return None
            found = self.places[node_id] = NodePlace(node.zone, node.drivers)
        return found


_grids: dict[tuple[str, int], _GridNodes] = {}
_NOWHERE: frozenset[str] = frozenset()
_INDEXES_KEPT = 8  # per grid: (nodes away, what other services hold) changes with most deployments


def _grid_nodes(session: Session, grid_id: int) -> _GridNodes:
    key = (str(session.get_bind().engine.url), grid_id)
    version = session.execute(
        select(func.count(), func.max(NodeRow.updated_at)).where(NodeRow.grid_id == grid_id)
    ).one()
    stamp = (int(version[0]), version[1])
    cached = _grids.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached
    rows = session.execute(
        select(NodeRow.id, NodeRow.name, NodeRow.status, NodeRow.labels, NodeRow.info).where(
            NodeRow.grid_id == grid_id
        )
    ).tuples()
    views = {
        node_id: NodeView(
            id=node_id,
            name=name,
            online=status == NodeStatus.ONLINE.value,
            labels=labels,
            drivers={d["name"]: d.get("scope") for d in info.get("drivers", [])},
            memory=int(info.get("memory") or 0),
            cpus=int(info.get("cpus") or 0),
            used_ports=frozenset(),
        )
        for node_id, name, status, labels, info in rows
    }
    cached = _grids[key] = _GridNodes(stamp, views, frozenset(i for i, v in views.items() if v.online))
    return cached


def _held(session: Session, nodes: _GridNodes, skip: set[int]) -> _Usage:
    """What services outside this deployment hold on the grid's nodes (read by a partial index:
    only instances that hold ports, memory or CPUs)."""
    ports: dict[str, set[int]] = defaultdict(set)
    memory: dict[str, int] = defaultdict(int)
    cpus: dict[str, float] = defaultdict(float)
    held = session.execute(
        select(
            InstanceRow.service_id,
            InstanceRow.node_id,
            InstanceRow.host_ports,
            InstanceRow.memory,
            InstanceRow.cpus,
        ).where(
            InstanceRow.node_id.is_not(None),
            or_(
                InstanceRow.host_ports.is_not(None),
                InstanceRow.memory.is_not(None),
                InstanceRow.cpus.is_not(None),
            ),
        )
    ).tuples()
    for service_id, node_id, host_ports, mem, cpu in held:
        if service_id in skip or node_id is None or node_id not in nodes.views:
            continue
        ports[node_id].update(int(p) for p in host_ports or ())
        memory[node_id] += mem or 0
        cpus[node_id] += cpu or 0.0
    return tuple(
        (node_id, frozenset(ports.get(node_id, ())), memory.get(node_id, 0), cpus.get(node_id, 0.0))
        for node_id in sorted(set(ports) | set(memory) | set(cpus))
    )


def _node_index(
    session: Session, grid_id: int, connected: set[str], skip: set[int]
) -> tuple[NodeIndex, _GridNodes]:
    """The grid's nodes, online when their agent is connected, with what services outside this
    deployment hold on them. Costs the size of the grid only when a node changed."""
    nodes = _grid_nodes(session, grid_id)
    away = nodes.up - connected
    usage = _held(session, nodes, skip)
    key = (away, usage)
    index = nodes.indexes.get(key)
    if index is None:
        views = dict(nodes.views)
        for node_id in away:
            views[node_id] = replace(views[node_id], online=False)
        for node_id, ports, mem, cpu in usage:
            views[node_id] = replace(views[node_id], used_ports=ports, reserved_memory=mem, reserved_cpus=cpu)
        if len(nodes.indexes) >= _INDEXES_KEPT:
            nodes.indexes.clear()
        index = nodes.indexes[key] = NodeIndex(views.values())
    return index.fresh(), nodes


@dataclass(frozen=True, slots=True)
class _Current:
    """An instance as stored: where its container is meant to run, and with which config."""

    node_id: str | None
    desired_hash: str | None
    has_container: bool


def plan_services(
    session: Session, grid: GridRow, service_rows: Sequence[ServiceRow], connected: set[str]
) -> list[ServicePlan]:
    """Plans for ``service_rows`` (in deploy order); later services see what earlier ones take."""
    deploying = {row.id for row in service_rows}
    index, nodes = _node_index(session, grid.id, connected, deploying)
    volumes = {v.name: v for v in session.scalars(select(VolumeRow).where(VolumeRow.grid_id == grid.id))}
    current: dict[int, dict[int, _Current]] = defaultdict(dict)
    for part in chunks(sorted(deploying)):
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
            current[service_id][number] = _Current(node_id, desired_hash, bool(has_container))
    stored = {row.id: stored_service(row) for row in service_rows}
    homes = _volume_homes(session, grid.id, service_rows, stored, current, volumes, len(index))
    plans = []
    for service_row in service_rows:
        plan, requests, placements = _plan_one(
            grid.name,
            service_row,
            stored[service_row.id],
            index,
            nodes,
            current[service_row.id],
            volumes,
            homes,
        )
        index.commit(requests, placements)
        plans.append(plan)
    return plans


@dataclass(frozen=True, slots=True)
class _VolumeHomes:
    """Where the Docker volumes these services may use are: ``held`` maps (volume id, Docker
    name) to the node holding that instance-scope volume instance; ``removing`` maps a Docker
    name to the nodes still deleting a volume instance of that name (of a removed volume)."""

    held: dict[tuple[int, str], str]
    removing: dict[str, frozenset[str]]


def _volume_homes(
    session: Session,
    grid_id: int,
    service_rows: Sequence[ServiceRow],
    stored: dict[int, StoredService],
    current: dict[int, dict[int, _Current]],
    volumes: dict[str, VolumeRow],
    node_count: int,
) -> _VolumeHomes:
    """Only the Docker names the instances being planned can have are looked up (by an index), so
    the cost follows the deployment, not the size of the grid."""
    names: set[str] = set()
    for row in service_rows:
        service = stored[row.id]
        most = node_count if service.spec.strategy is DeployStrategy.DAEMON else service.spec.instances
        numbers = set(range(1, most + 1)) | set(current[row.id])
        for alias in _aliases(service):
            volume = volumes.get(service.volume_of(alias))
            if volume is None:
                continue
            scope = VolumeScope(volume.scope)
            if scope is not VolumeScope.INSTANCE:
                names.add(docker_volume_name(scope, volume.name, service.stack, service.spec.name, 1))
                continue
            names.update(
                docker_volume_name(VolumeScope.INSTANCE, volume.name, service.stack, service.spec.name, n)
                for n in numbers
            )
    held: dict[tuple[int, str], str] = {}
    removing: dict[str, set[str]] = defaultdict(set)
    for _, node_id, volume_id, state, name in volume_instances_named(session, grid_id, names):
        if state == VolumeInstanceState.REMOVING:
            removing[name].add(node_id)
        elif volume_id is not None:
            held[(volume_id, name)] = node_id
    return _VolumeHomes(held, {name: frozenset(nodes) for name, nodes in removing.items()})


class _Bindings:
    """The grid volumes one service's named mounts use, resolved once; ``of(n)`` gives instance
    n's (alias -> Docker volume name, volume bindings)."""

    def __init__(self, stored: StoredService, volumes: dict[str, VolumeRow]) -> None:
        self.stored = stored
        self.mounts: list[tuple[str, VolumeRow, VolumeScope, dict[str, str]]] = []
        for alias in _aliases(stored):
            volume = volumes[stored.volume_of(alias)]
            self.mounts.append((alias, volume, VolumeScope(volume.scope), dict(volume.driver_opts)))

    def of(self, number: int) -> tuple[dict[str, str], tuple[VolumeWrite, ...]]:
        names: dict[str, str] = {}
        bindings: list[VolumeWrite] = []
        stack, service = self.stored.stack, self.stored.spec.name
        for alias, volume, scope, driver_opts in self.mounts:
            docker_name = docker_volume_name(scope, volume.name, stack, service, number)
            names[alias] = docker_name
            bindings.append(
                VolumeWrite(volume.id, volume.name, docker_name, volume.driver, driver_opts, scope)
            )
        return names, tuple(bindings)


def _request(
    service_id: str,
    stored: StoredService,
    number: int,
    bindings: tuple[VolumeWrite, ...],
    homes: _VolumeHomes,
    current: _Current | None,
) -> InstanceRequest:
    needs = tuple(
        VolumeNeed(
            volume=b.volume,
            driver=b.driver,
            scope=b.scope,
            docker_name=b.name,
            pinned_node=homes.held.get((b.volume_id, b.name)) if b.scope is VolumeScope.INSTANCE else None,
            removing_on=homes.removing.get(b.name, _NOWHERE),
        )
        for b in bindings
    )
    spec = stored.spec
    return InstanceRequest(
        service_id=service_id,
        instance=number,
        affinity=spec.affinity,
        ports=spec.ports,
        memory=spec.memory,
        cpus=spec.cpus,
        volumes=needs,
        current_node=current.node_id if current is not None and current.has_container else None,
    )


def _plan_one(
    grid: str,
    service_row: ServiceRow,
    stored: StoredService,
    index: NodeIndex,
    nodes: _GridNodes,
    current: dict[int, _Current],
    volumes: dict[str, VolumeRow],
    homes: _VolumeHomes,
) -> tuple[ServicePlan, list[InstanceRequest], list[Placement]]:
    spec = stored.spec
    service_id = full_service_id(grid, stored.stack, spec.name)
    row_id = service_row.id
    plan = ServicePlan(service_row_id=row_id, service_id=service_id)
    missing = sorted({stored.volume_of(a) for a in _aliases(stored)} - set(volumes))
    if missing:
        missing_reason = f"External volume {missing[0]} not found; create it with 'moorage volume create'"
        plan.instances = [
            InstancePlan(
                row_id,
                service_id,
                n,
                "failed",
                None,
                None,
                missing_reason,
                had_container=n in current and current[n].has_container,
            )
            for n in range(1, spec.instances + 1)
        ]
        return plan, [], []

    binder = _Bindings(stored, volumes)
    if spec.strategy is DeployStrategy.DAEMON:
        _, template_bindings = binder.of(1)
        template = _request(service_id, stored, 1, template_bindings, homes, None)
        anchors: dict[int, str] = {n: row.node_id for n, row in current.items() if row.node_id is not None}
        for n in list(current):
            _, bs = binder.of(n)
            for b in bs:
                if b.scope is VolumeScope.INSTANCE and (b.volume_id, b.name) in homes.held:
                    anchors[n] = homes.held[(b.volume_id, b.name)]
        numbers = daemon_plan(index, template, anchors)
    else:
        numbers = list(range(1, spec.instances + 1))

    bound = {n: binder.of(n) for n in numbers}
    requests = [_request(service_id, stored, n, bound[n][1], homes, current.get(n)) for n in numbers]
    placements = schedule_service(index, requests, spec.strategy, seed=service_id)
    containers = ContainerTemplate(grid, stored.stack, spec)
    for number, request, placement in zip(numbers, requests, placements, strict=True):
        names, bindings = bound[number]
        container = containers.document(number, names)
        row = current.get(number)
        had = row is not None and row.has_container
        reason = "; ".join(placement.reasons) or None
        if placement.status == "placed":
            assert placement.node_id is not None
            if (
                row is not None
                and row.node_id == placement.node_id
                and row.desired_hash == container.config_hash
            ):
                kind: PlanKind = "unchanged"
            elif row is not None and row.has_container and row.node_id is not None:
                kind = "replace"
            else:
                kind = "start"
            plan.instances.append(
                InstancePlan(
                    row_id,
                    service_id,
                    number,
                    kind,
                    placement.node_id,
                    container,
                    None,
                    bindings,
                    had_container=had,
                    place=nodes.place(placement.node_id),
                )
            )
        elif placement.status == "pending":
            # Pinned to a node that is away: keep it there with the new config; its agent converges
            # when the node is back. Never move it to an empty volume elsewhere.
            pins = [need.pinned_node for need in request.pins if index.get(need.pinned_node) is not None]
            node = pins[0] if pins else None
            plan.instances.append(
                InstancePlan(
                    row_id,
                    service_id,
                    number,
                    "pending",
                    node,
                    container if node else None,
                    reason,
                    bindings,
                    had_container=had,
                    place=nodes.place(node) if node else None,
                )
            )
        else:
            plan.instances.append(
                InstancePlan(row_id, service_id, number, "failed", None, None, reason, had_container=had)
            )
    plan.remove_numbers = sorted(set(current) - set(numbers))
    return plan, requests, placements


def _aliases(stored: StoredService) -> list[str]:
    return [m.source for m in stored.spec.mounts if m.kind is MountKind.NAMED and m.source]

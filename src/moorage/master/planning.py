"""From stored services to placements: build the scheduler's view of the grid, run it, and say
what must change. Synchronous, inside one store transaction; applies nothing.

    nodes + instances + volume instances ──▶ NodeViews, InstanceRequests (with VolumeNeeds)
        ──schedule_service──▶ Placements ──▶ InstancePlan per instance:
            unchanged | start (new container) | replace (other node or config) | pending | failed
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from moorage.master.container_specs import container_spec
from moorage.model.node import NodeStatus
from moorage.model.stack import DeployStrategy, MountKind
from moorage.model.volume import VolumeScope, docker_volume_name
from moorage.protocol import ContainerSpec
from moorage.scheduler import InstanceRequest, NodeView, VolumeNeed, daemon_plan, schedule_service
from moorage.stackfile.stored_service import StoredService, load_service
from moorage.store.tables import GridRow, InstanceRow, NodeRow, ServiceRow, VolumeInstanceRow, VolumeRow

__all__ = ["InstancePlan", "PlanKind", "ServicePlan", "VolumeBinding", "plan_services"]

PlanKind = Literal["unchanged", "start", "replace", "pending", "failed"]


@dataclass(frozen=True, slots=True)
class VolumeBinding:
    """A Docker volume an instance needs on its node: recorded as a volume instance before the container."""

    volume_id: int
    volume: str  # the grid volume's name
    name: str  # the Docker volume name
    driver: str
    driver_opts: dict[str, str]
    scope: VolumeScope


@dataclass(frozen=True, slots=True)
class InstancePlan:
    service_row_id: int
    service_id: str
    number: int
    kind: PlanKind
    node_id: str | None
    container: ContainerSpec | None
    reason: str | None = None
    volumes: tuple[VolumeBinding, ...] = ()


@dataclass
class ServicePlan:
    service_row_id: int
    service_id: str
    instances: list[InstancePlan] = field(default_factory=list)
    remove_numbers: list[int] = field(default_factory=list)


@dataclass
class _Usage:
    ports: set[int] = field(default_factory=set)
    memory: int = 0
    cpus: float = 0.0


def _usage_by_node(instances: Iterable[InstanceRow], skip_services: set[int]) -> dict[str, _Usage]:
    usage: dict[str, _Usage] = defaultdict(_Usage)
    for row in instances:
        if row.service_id in skip_services or row.node_id is None or row.container is None:
            continue
        spec = row.container
        used = usage[row.node_id]
        used.ports.update(int(p["host"]) for p in spec.get("ports", []))
        used.memory += int(spec.get("memory") or 0)
        used.cpus += float(spec.get("cpus") or 0)
    return usage


def _node_views(nodes: Sequence[NodeRow], connected: set[str], usage: dict[str, _Usage]) -> list[NodeView]:
    views = []
    for node in nodes:
        used = usage.get(node.id, _Usage())
        drivers = {d["name"]: d.get("scope") for d in node.info.get("drivers", [])}
        views.append(
            NodeView(
                id=node.id,
                name=node.name,
                online=node.status == NodeStatus.ONLINE.value and node.id in connected,
                labels=dict(node.labels),
                drivers=drivers,
                memory=int(node.info.get("memory") or 0),
                cpus=int(node.info.get("cpus") or 0),
                used_ports=frozenset(used.ports),
                reserved_memory=used.memory,
                reserved_cpus=used.cpus,
            )
        )
    return views


def _with_usage(view: NodeView, container: ContainerSpec) -> NodeView:
    return replace(
        view,
        used_ports=view.used_ports | {p.host for p in container.ports},
        reserved_memory=view.reserved_memory + (container.memory or 0),
        reserved_cpus=view.reserved_cpus + (container.cpus or 0),
    )


def plan_services(
    session: Session, grid: GridRow, service_rows: Sequence[ServiceRow], connected: set[str]
) -> list[ServicePlan]:
    """Plans for ``service_rows`` (in deploy order); later services see the ports earlier ones take."""
    nodes = list(session.scalars(select(NodeRow).where(NodeRow.grid_id == grid.id).order_by(NodeRow.name)))
    all_instances = list(
        session.scalars(select(InstanceRow).join(ServiceRow).where(ServiceRow.grid_id == grid.id))
    )
    deploying = {row.id for row in service_rows}
    views = _node_views(nodes, connected, _usage_by_node(all_instances, deploying))
    volumes = {v.name: v for v in session.scalars(select(VolumeRow).where(VolumeRow.grid_id == grid.id))}
    homes: dict[tuple[int, str], str] = {}
    for vi in session.scalars(
        select(VolumeInstanceRow).where(
            VolumeInstanceRow.grid_id == grid.id, VolumeInstanceRow.state != "removing"
        )
    ):
        if vi.volume_id is not None:
            homes[(vi.volume_id, vi.name)] = vi.node_id
    by_service: dict[int, dict[int, InstanceRow]] = defaultdict(dict)
    for row in all_instances:
        by_service[row.service_id][row.number] = row

    plans = []
    for service_row in service_rows:
        stored = load_service(service_row.spec)
        plan = _plan_one(grid.name, service_row, stored, views, by_service[service_row.id], volumes, homes)
        placed = {p.node_id: p.container for p in plan.instances if p.container is not None and p.node_id}
        views = [_with_usage(v, placed[v.id]) if v.id in placed else v for v in views]
        plans.append(plan)
    return plans


def _bindings(
    stored: StoredService, number: int, volumes: dict[str, VolumeRow]
) -> tuple[dict[str, str], tuple[VolumeBinding, ...]]:
    """(alias -> Docker volume name, the volume bindings) for one instance."""
    names: dict[str, str] = {}
    bindings: list[VolumeBinding] = []
    for mount in stored.spec.mounts:
        if mount.kind is not MountKind.NAMED or mount.source is None:
            continue
        volume = volumes[stored.volume_of(mount.source)]
        scope = VolumeScope(volume.scope)
        docker_name = docker_volume_name(scope, volume.name, stored.stack, stored.spec.name, number)
        names[mount.source] = docker_name
        bindings.append(
            VolumeBinding(volume.id, volume.name, docker_name, volume.driver, dict(volume.driver_opts), scope)
        )
    return names, tuple(bindings)


def _request(
    service_id: str,
    stored: StoredService,
    number: int,
    bindings: tuple[VolumeBinding, ...],
    homes: dict[tuple[int, str], str],
    current: InstanceRow | None,
) -> InstanceRequest:
    needs = tuple(
        VolumeNeed(
            volume=b.volume,
            driver=b.driver,
            scope=b.scope,
            docker_name=b.name,
            pinned_node=homes.get((b.volume_id, b.name)) if b.scope is VolumeScope.INSTANCE else None,
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
        current_node=current.node_id if current is not None and current.container is not None else None,
    )


def _plan_one(
    grid: str,
    service_row: ServiceRow,
    stored: StoredService,
    views: list[NodeView],
    current: dict[int, InstanceRow],
    volumes: dict[str, VolumeRow],
    homes: dict[tuple[int, str], str],
) -> ServicePlan:
    spec = stored.spec
    service_id = f"{grid}/{stored.stack}/{spec.name}"
    plan = ServicePlan(service_row_id=service_row.id, service_id=service_id)
    missing = sorted({stored.volume_of(a) for a in _aliases(stored)} - set(volumes))
    if missing:
        missing_reason = f"External volume {missing[0]} not found; create it with 'moorage volume create'"
        plan.instances = [
            InstancePlan(service_row.id, service_id, n, "failed", None, None, missing_reason)
            for n in range(1, spec.instances + 1)
        ]
        return plan

    if spec.strategy is DeployStrategy.DAEMON:
        _, template_bindings = _bindings(stored, 1, volumes)
        template = _request(service_id, stored, 1, template_bindings, homes, None)
        anchors: dict[int, str] = {n: row.node_id for n, row in current.items() if row.node_id is not None}
        for n in list(current):
            _, bs = _bindings(stored, n, volumes)
            for b in bs:
                if b.scope is VolumeScope.INSTANCE and (b.volume_id, b.name) in homes:
                    anchors[n] = homes[(b.volume_id, b.name)]
        numbers = daemon_plan(views, template, anchors)
    else:
        numbers = list(range(1, spec.instances + 1))

    bound = {n: _bindings(stored, n, volumes) for n in numbers}
    requests = [_request(service_id, stored, n, bound[n][1], homes, current.get(n)) for n in numbers]
    placements = schedule_service(views, requests, spec.strategy, seed=service_id)
    node_ids = {v.id for v in views}
    for number, request, placement in zip(numbers, requests, placements, strict=True):
        names, bindings = bound[number]
        container = container_spec(grid, stored.stack, spec, number, names)
        row = current.get(number)
        reason = "; ".join(placement.reasons) or None
        if placement.status == "placed":
            assert placement.node_id is not None
            if (
                row is not None
                and row.node_id == placement.node_id
                and row.desired_hash == container.config_hash
            ):
                kind: PlanKind = "unchanged"
            elif row is not None and row.container is not None and row.node_id is not None:
                kind = "replace"
            else:
                kind = "start"
            plan.instances.append(
                InstancePlan(
                    service_row.id, service_id, number, kind, placement.node_id, container, None, bindings
                )
            )
        elif placement.status == "pending":
            # Pinned to a node that is away: keep it there with the new config; its agent converges
            # when the node is back. Never move it to an empty volume elsewhere.
            pins = [need.pinned_node for need in request.pins if need.pinned_node in node_ids]
            node = pins[0] if pins else None
            plan.instances.append(
                InstancePlan(
                    service_row.id,
                    service_id,
                    number,
                    "pending",
                    node,
                    container if node else None,
                    reason,
                    bindings,
                )
            )
        else:
            plan.instances.append(
                InstancePlan(service_row.id, service_id, number, "failed", None, None, reason)
            )
    plan.remove_numbers = sorted(set(current) - set(numbers))
    return plan


def _aliases(stored: StoredService) -> list[str]:
    return [m.source for m in stored.spec.mounts if m.kind is MountKind.NAMED and m.source]

"""What each console page shows, read from the store's views in one unit of work per page.

No SQL here: the repositories and views of ``moorage.store`` (nodes, services, volumes, the volume
map, deployments). The one rule of the console's own is how a copy of data on a node is marked
(``copy_mark``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from moorage.model.grid import Grid
from moorage.model.node import Node, NodeStatus
from moorage.model.stack import NULL_STACK
from moorage.model.states import VolumeInstanceState
from moorage.store.deployments import DeploymentSummary, recent_deployments
from moorage.store.events import EventFilter, EventView, event_page
from moorage.store.grids import get_grid_row, list_grids, show_grid
from moorage.store.nodes import list_nodes
from moorage.store.services import ServiceView, list_services
from moorage.store.volume_map import HeldVolume, held_volumes
from moorage.store.volumes import VolumeView, list_volumes

__all__ = [
    "DEPLOYMENTS_SHOWN",
    "EVENTS_SHOWN",
    "CopyOnNode",
    "GridPage",
    "NodeData",
    "StackGroup",
    "copy_mark",
    "grid_page",
    "grids_page",
]

DEPLOYMENTS_SHOWN = 10  # in progress first, then the latest finished
EVENTS_SHOWN = 25  # the newest events of the grid


@dataclass(frozen=True, slots=True)
class StackGroup:
    name: str  # NULL_STACK for stand-alone services
    services: list[ServiceView]

    @property
    def standalone(self) -> bool:
        return self.name == NULL_STACK


@dataclass(frozen=True, slots=True)
class CopyOnNode:
    """One volume instance on its node, as the map shows it."""

    held: HeldVolume
    mark: str  # in-use | unused | pending | missing | error | retired
    note: str  # the mark in words
    used_by: tuple[str, ...]  # instances on this node of services that mount its volume


@dataclass(frozen=True, slots=True)
class NodeData:
    """A node and the data it holds (``node`` None: a node the store no longer lists)."""

    name: str
    node: Node | None
    copies: list[CopyOnNode] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        return self.node is None or self.node.status == NodeStatus.OFFLINE


@dataclass(frozen=True, slots=True)
class GridPage:
    grid: Grid
    nodes: list[Node]
    stacks: list[StackGroup]
    volumes: list[VolumeView]
    data_map: list[NodeData]
    deployments: list[DeploymentSummary]
    events: list[EventView] = field(default_factory=list)  # newest first

    @property
    def in_progress(self) -> list[DeploymentSummary]:
        return [d for d in self.deployments if d.state == "running"]


def copy_mark(held: HeldVolume, used_by: tuple[str, ...]) -> tuple[str, str]:
    """How the map marks a copy of data on a node: (mark, words).

    ``retired``: its volume was removed (the agent deletes the Docker volume); ``missing``: its
    node's engine no longer has it; ``error``; ``pending``: recorded, its node has not confirmed it
    yet; else ``in-use`` when an instance placed on that node mounts its volume, ``unused`` when
    none does (the data stays; it is used again when an instance is placed there).
    """
    if held.volume is None or held.state == VolumeInstanceState.REMOVING:
        return "retired", "retired: its volume was removed, the node's agent deletes it"
    if held.state == VolumeInstanceState.MISSING:
        return "missing", "missing: the node's engine no longer has this Docker volume"
    if held.state == VolumeInstanceState.ERROR:
        return "error", f"error: {held.error or 'no reason given'}"
    if held.state == VolumeInstanceState.PENDING:
        return "pending", "pending: recorded, not yet confirmed by the node"
    if used_by:
        return "in-use", "in use by " + ", ".join(used_by)
    return "unused", "unused: no instance on this node mounts it"


def _users_by_node(
    volumes: list[VolumeView], services: Mapping[str, ServiceView]
) -> dict[tuple[str, str], tuple[str, ...]]:
    """(volume, node) -> the instances placed on that node of the services mounting the volume."""
    found: dict[tuple[str, str], list[str]] = {}
    for volume in volumes:
        for service_id in volume.services:
            service = services.get(service_id)
            if service is None:
                continue
            shown = (
                service.stored.spec.name
                if service.stack == NULL_STACK
                else f"{service.stack}/{service.stored.spec.name}"
            )
            for instance in service.instances:
                if instance.node is not None:
                    found.setdefault((volume.name, instance.node), []).append(f"{shown}-{instance.number}")
    return {key: tuple(names) for key, names in found.items()}


def _data_map(
    nodes: list[Node], held: list[HeldVolume], users: Mapping[tuple[str, str], tuple[str, ...]]
) -> list[NodeData]:
    by_node = {node.name: NodeData(name=node.name, node=node) for node in nodes}
    for copy in held:
        data = by_node.setdefault(copy.node, NodeData(name=copy.node, node=None))
        used_by = users.get((copy.volume, copy.node), ()) if copy.volume is not None else ()
        mark, note = copy_mark(copy, used_by)
        data.copies.append(CopyOnNode(held=copy, mark=mark, note=note, used_by=used_by))
    return sorted(by_node.values(), key=lambda d: d.name)


def grid_page(session: Session, grid: str) -> GridPage:
    grid_row = get_grid_row(session, grid)
    nodes = list_nodes(session, grid)
    services = list_services(session, grid_row)  # by stack, then name
    stacks: dict[str, list[ServiceView]] = {}
    for service in services:
        stacks.setdefault(service.stack, []).append(service)
    volumes = list_volumes(session, grid)
    users = _users_by_node(volumes, {s.id: s for s in services})
    return GridPage(
        grid=show_grid(session, grid),
        nodes=nodes,
        stacks=[
            StackGroup(name, group)
            for name, group in sorted(stacks.items(), key=lambda kv: (kv[0] == NULL_STACK, kv[0]))
        ],
        volumes=volumes,
        data_map=_data_map(nodes, held_volumes(session, grid_row), users),
        deployments=recent_deployments(session, grid_row, DEPLOYMENTS_SHOWN),
        events=event_page(session, grid_row.id, grid, EventFilter(), limit=EVENTS_SHOWN).events[::-1],
    )


def grids_page(session: Session) -> list[Grid]:
    return list_grids(session)

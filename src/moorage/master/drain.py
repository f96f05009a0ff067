"""``moorage node drain`` / ``undrain``: mark a node unschedulable and move its instances off.

drain(node) ──one transaction──▶ node drained (the scheduler's ``Drained`` filter: it takes no
    │                            instance until undrained), its instances read
    └─▶ the deployer deploys the services of those instances (its batches, its rules: a
        stateless instance is re-planned elsewhere, one whose volume instance re-attaches in its
        zone/region/grid goes there with it, and an instance that cannot go anywhere stays as it
        is) ─▶ ``drain_plan.plan_drain`` reads what its plans do to each instance of the node
        └─▶ an instance whose data only the node holds (a node-topology volume instance) needs
            its data moved: a volume move job (``VolumeMoves``); without one it stays, and says so

A dry run plans the same with the node drained in the plan only, and records nothing. Draining
a drained node again does the same again: what stayed may leave now.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from moorage.errors import MoorageError
from moorage.master.deploy_gate import DeployGate
from moorage.master.drain_plan import DataMove, Leaving, Staying, plan_drain
from moorage.master.planning_decision import ServicePlan
from moorage.model.events import EventKind
from moorage.model.node import Node
from moorage.store.database import Database
from moorage.store.deployments import node_names
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import grid_id
from moorage.store.nodes import Residents, residents, set_drained

__all__ = ["MOVE_NOT_AVAILABLE", "DrainReport", "VolumeMoves", "drain_node", "undrain_node"]

MOVE_NOT_AVAILABLE = (
    "volume move not available: its data is in volume instance {volume_instance} (topology node), "
    "which only {node} holds"
)


class VolumeMoves(Protocol):
    """What drain needs of volume moves: start one volume instance's move off a drained node."""

    async def start_off(self, grid: str, volume: str, volume_instance: str, node: str) -> str:
        """Start moving ``volume_instance`` of ``volume`` (and its instance) off ``node``; the job id.
        Raises ``MoorageError`` with the reason when it cannot start (no node to move it to)."""
        ...


@dataclass(frozen=True, slots=True)
class DrainReport:
    node: Node
    dry_run: bool
    deployment: str | None = None
    leaving: list[Leaving] = field(default_factory=list)
    staying: list[Staying] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # node id -> name, of the nodes named above


async def drain_node(
    db: Database,
    deployer: DeployGate,
    moves: VolumeMoves | None,
    grid: str,
    name: str,
    *,
    dry_run: bool,
    actor: str | None = None,
) -> DrainReport:
    def mark(session: Session) -> Residents:
        if not dry_run:
            node, changed = set_drained(session, grid, name, True)
            if changed:
                _record(session, grid, EventKind.NODE_DRAINED, node, actor, "it takes no new instances")
        return residents(session, grid, name)

    found = await db.run(mark)
    node = found.node
    deployment: str | None = None
    plans: Sequence[ServicePlan] = []
    if found.instances and dry_run:
        plans = await deployer.preview(grid, found.service_ids, drain=frozenset({node.id}))
    elif found.instances:
        deployment, plans = await deployer.deploy_planned(grid, found.service_ids, f"drain of node {name}")
    planned = plan_drain(node.id, found.instances, plans)
    leaving, staying = list(planned.leaving), list(planned.staying)
    for data in planned.data:
        if moves is None:
            staying.append(_cannot_move(data, node.name))
            continue
        if dry_run:  # what the move would do is the move's own dry run; here: that it would move
            leaving.append(Leaving(data.service_id, data.number, "data", None, data.volume_instance))
            continue
        try:
            job = await moves.start_off(grid, data.volume, data.volume_instance, node.name)
        except MoorageError as err:
            staying.append(Staying(data.service_id, data.number, err.message))
            continue
        leaving.append(Leaving(data.service_id, data.number, "data", None, data.volume_instance, job))
    ids = {item.node_id for item in leaving if item.node_id}
    names = await db.read(lambda session: node_names(session, ids)) if ids else {}
    return DrainReport(node, dry_run, deployment, leaving, staying, names)


def _cannot_move(data: DataMove, node: str) -> Staying:
    return Staying(
        data.service_id,
        data.number,
        MOVE_NOT_AVAILABLE.format(volume_instance=data.volume_instance, node=node),
    )


def _record(session: Session, grid: str, kind: EventKind, node: Node, actor: str | None, what: str) -> None:
    verb = "drained" if kind is EventKind.NODE_DRAINED else "undrained"
    record_events(
        session,
        NewEvent(
            grid_id(session, grid),
            kind,
            f"node {node.name} {verb}: {what}",
            actor,
            node_id=node.id,
            node=node.name,
        ),
    )


async def undrain_node(
    db: Database, deployer: DeployGate, grid: str, name: str, actor: str | None = None
) -> Node:
    """The node takes instances again; instances waiting for a node may place there now."""

    def work(session: Session) -> Node:
        node, changed = set_drained(session, grid, name, False)
        if changed:
            _record(session, grid, EventKind.NODE_UNDRAINED, node, actor, "it takes instances again")
        return node

    node = await db.run(work)
    deployer.nodes_changed()
    return node

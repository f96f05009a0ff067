"""``moorage node drain`` / ``undrain``: mark a node unschedulable and move its instances off.

drain(node) ──one transaction──▶ node drained (the scheduler's ``Drained`` filter: it takes no
    │                            instance until undrained), its instances read
    └─▶ the deployer deploys the services of those instances (its batches, its rules: a
        stateless instance is re-planned elsewhere, one whose volume instance re-attaches in its
        zone/region/grid goes there with it, and an instance that cannot go anywhere stays as it
        is) ─▶ ``drain_plan.plan_drain`` reads what its plans do to each instance of the node
        └─▶ an instance whose data only the node holds (a node-topology volume instance): its
            services planned again as if that data went with it (``plan_services(lifted=...)``:
            drivers, affinity, drained nodes, ports, memory, the strategy's spread, and no node
            that holds a Docker volume of that name already), so the scheduler picks its target
            ─▶ a volume move job there (``VolumeMoves.start_move``, which checks the target by
            the move's own rule), ``MOVES_AT_ONCE`` of the drain's moves copying at a time; a
            failed move leaves the instance running on the drained node (the job puts it back)

A dry run plans the same with the node drained in the plan only, asks each move for its plan
(the bytes it would copy), and records nothing. Draining a drained node again does the same
again: what stayed may leave now. The plans and the moves are the leader's (``DeployGate``);
another master answers 409.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from moorage.errors import MoorageError
from moorage.master.deploy_gate import DeployGate
from moorage.master.drain_plan import DataMove, DataTarget, Leaving, Staying, data_targets, plan_drain
from moorage.master.planning_decision import ServicePlan
from moorage.master.volume_moves import VolumeMoves
from moorage.model.events import EventKind
from moorage.model.node import Node
from moorage.store.database import Database
from moorage.store.deployments import node_names
from moorage.store.events import NewEvent, record_events
from moorage.store.grids import grid_id
from moorage.store.nodes import Residents, residents, set_drained
from moorage.store.volume_moves import holders

__all__ = ["MOVES_AT_ONCE", "DrainReport", "drain_node", "undrain_node"]

MOVES_AT_ONCE = 2
"""A drain's volume moves copying at a time (the others wait, phase ``queued``). They all read
the drained node's disk and pass through the master's relay: two at a time overlap one move's
fixed costs (helper containers, manifests, waiting for the stop) with another's copy; more share
the bandwidth, so each first pass takes longer and more data changes before its instance stops.
Measured by ``bench/bench_drain_moves.py`` (4 volumes of 64 MiB, 2-core testbed, load 4.7): one
at a time 19.3 s in all with 1.17 s mean downtime, two 15.3 s (0.80x) with 1.52 s (1.30x), four
14.1 s (0.73x) with 2.40 s (2.05x)."""


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
    moves: VolumeMoves,
    grid: str,
    name: str,
    *,
    dry_run: bool,
    actor: str | None = None,
) -> DrainReport:
    def mark(session: Session) -> Residents:
        if not dry_run:
            deployer.require_leading()  # before anything is recorded
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
    if planned.data:
        deployer.require_leading()  # the moves (and their sizes, read over its agents) are the leader's
        targets = await _targets(db, deployer, grid, node.id, planned.data, plans)
        names = await db.read(
            lambda session: node_names(session, {t.node_id for t in targets if isinstance(t, DataTarget)})
        )
        turns = asyncio.Semaphore(MOVES_AT_ONCE)
        for target in targets:
            if isinstance(target, Staying):
                staying.append(target)
                continue
            data, to = target.data, target.node_id
            try:
                plan, job = await moves.start_move(
                    grid, data.volume, data.volume_instance, names.get(to, to), dry_run=dry_run, turns=turns
                )
            except MoorageError as err:
                staying.append(Staying(data.service_id, data.number, err.message))
                continue
            leaving.append(
                Leaving(
                    data.service_id,
                    data.number,
                    "data",
                    to,
                    data.volume_instance,
                    job.id if job is not None else None,
                    data.volume,
                    plan.bytes,
                )
            )
    ids = {item.node_id for item in leaving if item.node_id}
    names = await db.read(lambda session: node_names(session, ids)) if ids else {}
    return DrainReport(node, dry_run, deployment, leaving, staying, names)


async def _targets(
    db: Database,
    deployer: DeployGate,
    grid: str,
    node_id: str,
    data: Sequence[DataMove],
    plans: Sequence[ServicePlan],
) -> list[DataTarget | Staying]:
    """Where each data move goes: its services planned again (recording nothing) with their
    volume instances free to go with them, except to nodes that hold a Docker volume of that name."""
    rows = {plan.service_id: plan.service_row_id for plan in plans}
    service_ids = sorted({rows[d.service_id] for d in data})
    names = [d.volume_instance for d in data]
    taken = await db.read(lambda session: holders(session, grid_id(session, grid), names))
    lifted = {name: taken.get(name, frozenset()) for name in names}
    again = await deployer.preview(grid, service_ids, drain=frozenset({node_id}), lifted=lifted)
    return data_targets(node_id, data, again)


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

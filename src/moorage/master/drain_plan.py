"""What draining a node does to each of its instances, read from the plans of its services. Pure:
the services are planned with the node drained (the scheduler's ``Drained`` filter), and this
only sorts out what those plans mean for the instances that were on the node.

    placed on another node (replace or start) ........... leaves: re-planned there, or, when it
                                                          mounts an instance-scope volume of
                                                          topology zone/region/grid, re-attaching
                                                          its volume instance there (the store
                                                          moves the row: ``store/placements``)
    stays, mounting one node-topology instance-scope
      volume instance (only that node has its data) ..... its data must move: planned again as
                                                          if its data went with it, the node the
                                                          scheduler picks is its move's target
                                                          (``data_targets``); ``master/drain.py``
                                                          starts the volume move job there
    no longer planned (a daemon runs one instance per
      node that takes instances) ........................ stops
    anything else (the scheduler found no node) ......... stays, with the scheduler's reason
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Literal

from moorage.master.planning_decision import InstancePlan, ServicePlan
from moorage.model.volume import VolumeScope, VolumeTopology
from moorage.store.placements import VolumeWrite

__all__ = [
    "DataMove",
    "DataTarget",
    "DrainPlan",
    "Leaving",
    "LeavingHow",
    "Staying",
    "data_targets",
    "plan_drain",
]

LeavingHow = Literal["replan", "reattach", "data", "stop"]

SEVERAL_NODE_VOLUMES = (
    "its data is in several volume instances that only this node holds ({names}); a volume move "
    "takes an instance with one instance-scope volume instance only, so it stays"
)


@dataclass(frozen=True, slots=True)
class Leaving:
    """An instance that leaves the node: to ``node_id`` (None: it stops), and how."""

    service_id: str
    number: int
    how: LeavingHow
    node_id: str | None = None
    volume_instance: str | None = None  # the one whose data moves (how == "data"), or re-attaches
    job: str | None = None  # the volume move job (how == "data")
    volume: str | None = None  # the grid volume of ``volume_instance`` (how == "data")
    bytes: int | None = None  # what its move copies, as planned (how == "data")


@dataclass(frozen=True, slots=True)
class Staying:
    service_id: str
    number: int
    reason: str


@dataclass(frozen=True, slots=True)
class DataMove:
    """An instance whose one node-topology volume instance must be copied for it to leave."""

    service_id: str
    number: int
    volume: str  # the grid volume
    volume_instance: str  # its Docker volume name
    reason: str  # why the scheduler keeps it here (its data is here only)


@dataclass(frozen=True, slots=True)
class DataTarget:
    """Where a data move goes: the node the scheduler picks for its instance, its data with it."""

    data: DataMove
    node_id: str


@dataclass(frozen=True, slots=True)
class DrainPlan:
    leaving: list[Leaving] = field(default_factory=list)
    staying: list[Staying] = field(default_factory=list)
    data: list[DataMove] = field(default_factory=list)


def _node_bound(volumes: Sequence[VolumeWrite]) -> list[VolumeWrite]:
    return [v for v in volumes if v.scope is VolumeScope.INSTANCE and v.topology is VolumeTopology.NODE]


def _reattaching(volumes: Sequence[VolumeWrite]) -> VolumeWrite | None:
    return next(
        (v for v in volumes if v.scope is VolumeScope.INSTANCE and v.topology is not VolumeTopology.NODE),
        None,
    )


def _one(node_id: str, item: InstancePlan) -> Leaving | Staying | DataMove:
    if item.kind in ("replace", "start") and item.node_id is not None and item.node_id != node_id:
        follows = _reattaching(item.volumes)
        if follows is not None:
            return Leaving(item.service_id, item.number, "reattach", item.node_id, follows.name)
        return Leaving(item.service_id, item.number, "replan", item.node_id)
    reason = item.reason or f"planned on the drained node ({item.kind})"
    bound = _node_bound(item.volumes)
    if item.kind == "failed" and len(bound) == 1:
        return DataMove(item.service_id, item.number, bound[0].volume, bound[0].name, reason)
    if item.kind == "failed" and len(bound) > 1:
        names = ", ".join(sorted(v.name for v in bound))
        return Staying(item.service_id, item.number, SEVERAL_NODE_VOLUMES.format(names=names))
    return Staying(item.service_id, item.number, reason)


def plan_drain(
    node_id: str, residents: Collection[tuple[int, int]], plans: Sequence[ServicePlan]
) -> DrainPlan:
    """What happens to each of the node's ``residents`` ((service row id, number)), in the order
    of ``plans``, planned with node ``node_id`` drained."""
    drain = DrainPlan()
    wanted = set(residents)
    for plan in plans:
        for item in plan.instances:
            if (plan.service_row_id, item.number) not in wanted:
                continue
            found = _one(node_id, item)
            if isinstance(found, Leaving):
                drain.leaving.append(found)
            elif isinstance(found, DataMove):
                drain.data.append(found)
            else:
                drain.staying.append(found)
        drain.leaving.extend(
            Leaving(plan.service_id, number, "stop")
            for number in plan.remove_numbers
            if (plan.service_row_id, number) in wanted
        )
    return drain


def data_targets(
    node_id: str, data: Sequence[DataMove], plans: Sequence[ServicePlan]
) -> list[DataTarget | Staying]:
    """For each of ``data`` (in its order): its target, or why it stays, from ``plans`` made with
    node ``node_id`` drained and ``data``'s volume instances free to go with their instances
    (``planning.plan_services(lifted=...)``): the scheduler's rules and spread pick the node."""
    items = {(plan.service_id, item.number): item for plan in plans for item in plan.instances}
    found: list[DataTarget | Staying] = []
    for move in data:
        item = items.get((move.service_id, move.number))
        if item is None:
            found.append(Staying(move.service_id, move.number, f"{move.reason} (no longer planned)"))
        elif item.kind in ("replace", "start") and item.node_id is not None and item.node_id != node_id:
            found.append(DataTarget(move, item.node_id))
        else:
            reason = item.reason or move.reason
            found.append(
                Staying(move.service_id, move.number, f"no node can take it with its data: {reason}")
            )
    return found

"""What draining a node does to each of its instances, read from the plans of its services. Pure:
the services are planned with the node drained (the scheduler's ``Drained`` filter), and this
only sorts out what those plans mean for the instances that were on the node.

    placed on another node (replace or start) ........... leaves: re-planned there, or, when it
                                                          mounts an instance-scope volume of
                                                          topology zone/region/grid, re-attaching
                                                          its volume instance there (the store
                                                          moves the row: ``store/placements``)
    stays, mounting one node-topology instance-scope
      volume instance (only that node has its data) ..... its data must move: a volume move job
                                                          (``master/drain.py`` starts it, or says
                                                          it stays when moves are not available)
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

__all__ = ["DataMove", "DrainPlan", "Leaving", "LeavingHow", "Staying", "plan_drain"]

LeavingHow = Literal["replan", "reattach", "data", "stop"]

SEVERAL_NODE_VOLUMES = (
    "its data is in several volume instances that only this node holds ({names}); "
    "move them one at a time with 'moorage volume move'"
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

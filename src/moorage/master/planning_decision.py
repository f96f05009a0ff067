"""What must change for each instance, from what exists of it and where the scheduler put it.
Pure: no store, no session; planning gathers the inputs and the deployer applies the answers.

    placement placed,  the same node and config as stored      -> unchanged
                       a container elsewhere or another config -> replace (new container, then
                                                                  the old one goes)
                       no container yet                        -> start
    placement pending  (not now, without the user acting)      -> pending: kept on the node its
                       volume instance pins it to, when that node is still in the grid; else no
                       node. Never moved to an empty volume elsewhere. ``config_here`` is the
                       config of the container it has there, if any: the deployer keeps that
                       container while the node is away, and rolls it once the node is back.
    placement failed   (never, until the user changes something) -> failed, no node
    placement pending or failed, and its container is on a drained node -> failed: it stays
                       there as it was (draining moves an instance only where it can run; it
                       never stops one that has nowhere to go)
    a mounted volume that does not exist                       -> every instance failed
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Literal

from moorage.model.container import PlannedContainer
from moorage.model.states import InstanceState
from moorage.scheduler import InstanceRequest, Placement
from moorage.store.grid_snapshot import CurrentInstance
from moorage.store.placements import InstanceWrite, NodePlace, VolumeWrite

__all__ = [
    "InstancePlan",
    "PlacesOf",
    "PlanKind",
    "ServicePlan",
    "Slot",
    "decide",
    "missing_volume_plans",
    "pinned_node",
    "placed_kind",
    "removed_numbers",
]

PlanKind = Literal["unchanged", "start", "replace", "pending", "failed"]
PlacesOf = Callable[[str], NodePlace | None]
"""A node's place (zone, drivers) by its id; None when the node is not in the grid."""


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
    config_here: str | None = None  # the config hash of the container it has on ``node_id``, if any
    place: NodePlace | None = None  # the node's zone and drivers, as planned

    @property
    def older_here(self) -> bool:
        """Its container on ``node_id`` has a config other than the planned one."""
        return (
            self.config_here is not None
            and self.container is not None
            and self.config_here != self.container.config_hash
        )

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


@dataclass(frozen=True, slots=True)
class Slot:
    """One instance being planned: what is stored of it, and the container and Docker volumes
    it gets wherever it goes."""

    service_row_id: int
    service_id: str
    number: int
    current: CurrentInstance | None
    container: PlannedContainer
    volumes: tuple[VolumeWrite, ...]

    @property
    def had_container(self) -> bool:
        return self.current is not None and self.current.has_container

    def config_on(self, node_id: str) -> str | None:
        """The config hash of its container on ``node_id``, if it has one there."""
        current = self.current
        if current is None or not current.has_container or current.node_id != node_id:
            return None
        return current.desired_hash


def decide(
    slot: Slot,
    request: InstanceRequest,
    placement: Placement,
    places: PlacesOf,
    drained: Set[str] = frozenset(),
) -> InstancePlan:
    """The plan of one instance the scheduler answered for; ``drained``: the drained nodes."""
    if placement.status == "placed":
        assert placement.node_id is not None
        return _on_node(
            slot, placed_kind(slot.current, placement.node_id, slot.container), placement.node_id, places
        )
    reason = "; ".join(placement.reasons) or None
    current = slot.current
    if current is not None and current.has_container and current.node_id in drained:
        return _nowhere(slot, "failed", reason, slot.volumes)  # stays on the drained node as it is
    if placement.status == "pending":
        node_id = pinned_node(request, places)
        if node_id is not None:
            return _on_node(slot, "pending", node_id, places, reason)
        return _nowhere(slot, "pending", reason, slot.volumes)
    return _nowhere(slot, "failed", reason, ())


def placed_kind(current: CurrentInstance | None, node_id: str, container: PlannedContainer) -> PlanKind:
    """What placing an instance on ``node_id`` with ``container`` changes."""
    if current is not None and current.node_id == node_id and current.desired_hash == container.config_hash:
        return "unchanged"
    if current is not None and current.has_container and current.node_id is not None:
        return "replace"
    return "start"


def pinned_node(request: InstanceRequest, places: PlacesOf) -> str | None:
    """The node an instance that cannot be placed now stays on: the first its volume instances
    pin it to that is still in the grid."""
    return next(
        (
            need.pinned_node
            for need in request.pins
            if need.pinned_node and places(need.pinned_node) is not None
        ),
        None,
    )


def _on_node(
    slot: Slot, kind: PlanKind, node_id: str, places: PlacesOf, reason: str | None = None
) -> InstancePlan:
    return InstancePlan(
        service_row_id=slot.service_row_id,
        service_id=slot.service_id,
        number=slot.number,
        kind=kind,
        node_id=node_id,
        container=slot.container,
        reason=reason,
        volumes=slot.volumes,
        had_container=slot.had_container,
        config_here=slot.config_on(node_id),
        place=places(node_id),
    )


def _nowhere(
    slot: Slot, kind: PlanKind, reason: str | None, volumes: tuple[VolumeWrite, ...]
) -> InstancePlan:
    return InstancePlan(
        service_row_id=slot.service_row_id,
        service_id=slot.service_id,
        number=slot.number,
        kind=kind,
        node_id=None,
        container=None,
        reason=reason,
        volumes=volumes,
        had_container=slot.had_container,
    )


def missing_volume_plans(
    service_row_id: int,
    service_id: str,
    instances: int,
    current: Mapping[int, CurrentInstance],
    missing: Collection[str],
) -> list[InstancePlan]:
    """Every instance failed: a volume the service mounts does not exist (the first one named)."""
    reason = f"External volume {sorted(missing)[0]} not found; create it with 'moorage volume create'"
    return [
        InstancePlan(
            service_row_id=service_row_id,
            service_id=service_id,
            number=number,
            kind="failed",
            node_id=None,
            container=None,
            reason=reason,
            had_container=number in current and current[number].has_container,
        )
        for number in range(1, instances + 1)
    ]


def removed_numbers(current: Iterable[int], planned: Iterable[int]) -> list[int]:
    """The stored instances no longer planned (scaled down, or a daemon's node gone)."""
    return sorted(set(current) - set(planned))

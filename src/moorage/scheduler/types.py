"""What the scheduler reads and what it answers: nodes, instance requests, placements, verdicts.

Pure, frozen types. The master builds ``NodeView``s and ``InstanceRequest``s from its store; the
scheduler never looks anything up by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from moorage.model.stack import AffinityRule, PortMapping
from moorage.model.volume import VolumeDomain, VolumeScope, VolumeTopology

__all__ = [
    "InstanceRequest",
    "NodeView",
    "Placement",
    "PlacementStatus",
    "Verdict",
    "VolumeNeed",
]

_NONE: frozenset[str] = frozenset()

PlacementStatus = Literal["placed", "pending", "failed"]
"""``placed``: has a node. ``pending``: not now, may place without the user acting (a node is
offline). ``failed``: never, until the user changes something (affinity, drivers, ports...)."""


@dataclass(frozen=True, slots=True)
class NodeView:
    """One node as the scheduler sees it.

    ``used_ports``, ``reserved_memory`` and ``reserved_cpus`` describe what *other* services hold
    on the node: a pass re-places every instance of the service it schedules and counts those
    itself, so the caller leaves that service's own containers out.
    """

    id: str
    name: str
    online: bool
    labels: Mapping[str, str]
    drivers: Mapping[str, str | None]  # volume driver -> capability scope: "local", "global" (shared), None
    memory: int  # bytes
    cpus: int
    used_ports: frozenset[int]
    reserved_memory: int = 0
    reserved_cpus: float = 0
    drained: bool = False  # ``moorage node drain``: takes no instance until ``undrain``
    last_seen: datetime | None = None  # when the master last heard of it (what a pending reason says)
    lost_at: datetime | None = None  # ``moorage node declare-lost``: when (None: not declared lost)

    @property
    def zone(self) -> str | None:
        return self.labels.get("zone")


@dataclass(frozen=True, slots=True)
class VolumeNeed:
    """One named mount of an instance, resolved to the grid volume and its Docker volume name.

    ``pinned_node`` is the id of the node that already holds this instance's volume instance
    (instance scope only); None while there is none yet. ``topology`` is the volume's, and
    ``home_zone`` / ``home_region`` are recorded on that volume instance: together they say which
    other nodes may use it (``domain``, the rule of ``model.volume.VolumeDomain``).
    """

    volume: str
    driver: str
    scope: VolumeScope
    docker_name: str
    pinned_node: str | None = None
    removing_on: frozenset[str] = frozenset()  # nodes still deleting an old Docker volume of this name
    topology: VolumeTopology = VolumeTopology.NODE
    home_zone: str | None = None
    home_region: str | None = None
    taken_on: frozenset[str] = frozenset()
    """Nodes that hold a Docker volume of this name already (a copy a move retired there): data
    that moves with the instance (``node drain``) cannot be written there."""
    on_node_lost: str = "wait"  # the volume's policy (model.node_loss.OnNodeLost), for the reason
    domain: VolumeDomain | None = field(init=False, repr=False, compare=False)
    """Where the existing volume instance's data can be used from; None when this need pins nothing."""

    def __post_init__(self) -> None:
        domain = None
        if self.scope is VolumeScope.INSTANCE and self.pinned_node is not None:
            domain = VolumeDomain(
                self.topology, self.driver, self.pinned_node, self.home_zone, self.home_region
            )
        object.__setattr__(self, "domain", domain)

    @property
    def is_pin(self) -> bool:
        """True when this need ties the instance to its volume instance's domain (an existing
        instance-scope volume instance): its node, or the nodes its topology lets it re-attach to."""
        return self.domain is not None


@dataclass(frozen=True, slots=True)
class InstanceRequest:
    """One instance of a service to place. ``current_node`` is where it runs now, if anywhere."""

    service_id: str
    instance: int
    affinity: tuple[AffinityRule, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    memory: int | None = None  # bytes
    cpus: float | None = None
    volumes: tuple[VolumeNeed, ...] = ()
    current_node: str | None = None
    # derived from ``volumes`` once, read for every node a pass considers
    pins: tuple[VolumeNeed, ...] = field(init=False, repr=False, compare=False)
    """The needs that tie this instance to the node holding its volume instance."""
    drivers: frozenset[str] = field(init=False, repr=False, compare=False)
    """Every volume driver this instance needs on its node."""
    avoid: frozenset[str] = field(init=False, repr=False, compare=False)
    """The nodes still removing, or holding a retired copy of, a Docker volume named like one of
    this instance's."""

    def __post_init__(self) -> None:
        volumes = self.volumes
        if not volumes:
            pins: tuple[VolumeNeed, ...] = ()
            drivers: frozenset[str] = _NONE
            avoid: frozenset[str] = _NONE
        else:  # one of these per instance placed: lists, not generators
            pins = tuple([v for v in volumes if v.is_pin])
            drivers = frozenset([v.driver for v in volumes])
            removing = [v.removing_on | v.taken_on for v in volumes if v.removing_on or v.taken_on]
            avoid = frozenset().union(*removing) if removing else _NONE
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "drivers", drivers)
        object.__setattr__(self, "avoid", avoid)


@dataclass(frozen=True, slots=True)
class Placement:
    """The answer for one instance. ``reasons`` says why it was not placed (empty when placed)."""

    instance: int
    node_id: str | None
    reasons: tuple[str, ...]
    status: PlacementStatus


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why one node cannot take one instance.

    ``reason`` is worded to be counted across nodes (``node(s) offline``). ``fatal`` is False when
    the node may take it later without the user acting (it is offline), True otherwise.
    """

    reason: str
    fatal: bool = True

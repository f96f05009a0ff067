"""Volumes, their scopes, and the Docker volume names the scopes produce (Kontena's rules).

| scope    | Docker volumes made                 | Docker volume name                                |
|----------|-------------------------------------|---------------------------------------------------|
| instance | one per service instance            | <stack>.<service>.<volume>-<n>; null stack:        |
|          |                                     | <service>.<volume>-<n>                             |
| stack    | one per stack per node              | <stack>.<volume>; null stack: null.<volume>        |
| grid     | one per node                        | <volume>                                          |

Where a volume instance's data can be used from is its volume's **topology** (``VolumeDomain``):

| topology | the nodes that can use an instance-scope volume instance's data                         |
|----------|------------------------------------------------------------------------------------------|
| node     | the node that holds it, only                                                             |
| zone     | also any node whose ``zone=`` label is the one recorded on it, where the driver is global |
| region   | also any node whose ``region=`` label is the one recorded on it, where the driver is global |
| grid     | also any node where the driver is global                                                 |

"Global" is the capability scope a node's engine reports for the driver (shared storage): a node
where the driver is local, or does not say, never sees another node's volumes, whatever the
topology claims. The zone and region are those of the node that made the volume instance,
recorded then: a label changed later does not move the domain. Stack- and grid-scope volumes get
a volume instance on every node that uses them, so their topology moves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, TypeVar

from moorage.model.quoting import shown
from moorage.model.stack import NULL_STACK

__all__ = [
    "BUILT_IN_DRIVER_SCOPES",
    "DRIVER_MAX",
    "DRIVER_RE",
    "REGION_LABEL",
    "SHARED_DRIVER_SCOPE",
    "VOLUME_NAME_RE",
    "ZONE_LABEL",
    "DomainNode",
    "DriverCapability",
    "Reach",
    "Spread",
    "VolumeDomain",
    "VolumeScope",
    "VolumeTopology",
    "default_topology",
    "docker_volume_name",
    "driver_error",
    "follows_instance",
    "nodes_in_domain",
    "topology_error",
    "volume_definition_errors",
    "volume_drift",
    "volume_name_error",
]

VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]+$")
DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
DRIVER_MAX = 255
"""The longest driver name (the stores' column of it)."""
SHARED_DRIVER_SCOPE = "global"  # a driver's capability scope when every node sees its volumes
ZONE_LABEL = "zone"
REGION_LABEL = "region"
BUILT_IN_DRIVER_SCOPES: Mapping[str, str] = {"local": "local"}
"""Drivers whose capability is known without asking a node: Docker's built-in ``local``."""


class VolumeScope(StrEnum):
    GRID = "grid"
    STACK = "stack"
    INSTANCE = "instance"


class VolumeTopology(StrEnum):
    """Where a volume's data can be used from, narrowest first (see the module's table)."""

    NODE = "node"
    ZONE = "zone"
    REGION = "region"
    GRID = "grid"


def volume_name_error(name: str) -> str | None:
    """None when ``name`` is a valid volume name, else a sentence saying what is wrong."""
    if VOLUME_NAME_RE.fullmatch(name):
        return None
    return (
        f"Volume name '{shown(name)}' is not valid: use at least two characters, letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


def volume_definition_errors(
    name: str,
    scope: str,
    driver: str,
    driver_opts: Mapping[str, str],
    labels: Mapping[str, str],
    topology: str = VolumeTopology.NODE,
    capability: DriverCapability | None = None,
) -> dict[str, str]:
    """What is wrong with a volume definition, by field (empty when nothing is). ``capability``
    is what the grid's nodes report of the driver (nothing known when None)."""
    errors: dict[str, str] = {}
    if (problem := volume_name_error(name)) is not None:
        errors["name"] = problem
    if scope not in {s.value for s in VolumeScope}:
        errors["scope"] = f"Unknown scope '{shown(scope)}', must be one of grid, stack, instance"
    if (problem := driver_error(driver)) is not None:
        errors["driver"] = problem
    if (problem := topology_error(topology, capability or DriverCapability(driver))) is not None:
        errors["topology"] = problem
    if any(not key for key in driver_opts):
        errors["driver_opts"] = "Driver option keys must not be empty"
    if any(not key for key in labels):
        errors["labels"] = "Label keys must not be empty"
    return errors


def driver_error(driver: str) -> str | None:
    if not driver:
        return "Driver is required: name the volume driver, e.g. local"
    if len(driver) > DRIVER_MAX:
        return f"Driver '{shown(driver)}' is {len(driver)} characters long; use at most {DRIVER_MAX}"
    if ":" in driver:
        return f"Driver '{shown(driver)}' must not have a tag: use the driver's name without ':{shown(driver.partition(':')[2])}'"
    if not DRIVER_RE.fullmatch(driver):
        return f"Driver '{shown(driver)}' is not a valid driver name"
    return None


# --- topology: where a volume instance's data can be used from ------------------------------------


class Reach(StrEnum):
    """What one node is to one volume instance."""

    HOME = "home"  # the node that holds it
    SHARED = "shared"  # inside its domain, and the driver is global there: it re-attaches there
    OUTSIDE = "outside"  # outside its zone or region
    UNSHARED = "unshared"  # the data is not seen there: node topology, or the driver is not global there


Spread = tuple[str, str | None, str | None]
"""The nodes besides its own that can use a volume instance, as a key: (driver, label key, label
value); key and value None for the whole grid. Equal for every volume instance with that reach."""


class DomainNode(Protocol):
    """What a domain reads of a node (the scheduler's ``NodeView`` and the store's facts have it)."""

    @property
    def id(self) -> str: ...
    @property
    def labels(self) -> Mapping[str, str]: ...
    @property
    def drivers(self) -> Mapping[str, str | None]: ...


N = TypeVar("N", bound=DomainNode)


@dataclass(frozen=True, slots=True)
class VolumeDomain:
    """The nodes that can use one volume instance's data: the node holding it (``node_id``), and,
    as its volume's topology allows, the nodes of the zone or region recorded on it (those of the
    node that made it) or of the whole grid where its driver is global.

    The one rule for "may this instance run on that node with this data": the scheduler (which
    nodes an instance may go to), the store (whether a volume instance re-attaches to its
    instance's new node) and anything that moves instances (move, drain) ask it.
    """

    topology: VolumeTopology
    driver: str
    node_id: str
    zone: str | None = None
    region: str | None = None

    @property
    def label(self) -> tuple[str, str | None] | None:
        """The label the domain is bound to and its recorded value (zone, region); None for node
        and grid topologies."""
        if self.topology is VolumeTopology.ZONE:
            return ZONE_LABEL, self.zone
        if self.topology is VolumeTopology.REGION:
            return REGION_LABEL, self.region
        return None

    @property
    def spread(self) -> Spread | None:
        """The other nodes it reaches, as a key; None when it reaches none: node topology, or a
        zone or region topology whose node had no such label when it made the volume instance."""
        if self.topology is VolumeTopology.NODE:
            return None
        bound = self.label
        if bound is None:
            return self.driver, None, None
        key, value = bound
        return None if value is None else (self.driver, key, value)

    def reach(self, node_id: str, labels: Mapping[str, str], drivers: Mapping[str, str | None]) -> Reach:
        """What the node with ``node_id``, ``labels`` and volume ``drivers`` (name -> capability
        scope) is to this volume instance."""
        if node_id == self.node_id:
            return Reach.HOME
        spread = self.spread
        if spread is None:
            return Reach.UNSHARED
        _, key, value = spread
        if key is not None and labels.get(key) != value:
            return Reach.OUTSIDE
        if drivers.get(self.driver) != SHARED_DRIVER_SCOPE:
            return Reach.UNSHARED
        return Reach.SHARED

    def admits(self, node: DomainNode) -> bool:
        """Whether ``node`` can use the data: it holds it, or it is inside the domain and sees it."""
        return self.reach(node.id, node.labels, node.drivers) in (Reach.HOME, Reach.SHARED)


def nodes_in_domain(domain: VolumeDomain, nodes: Iterable[N]) -> list[N]:
    """The ``nodes`` (in their order) that can use ``domain``'s volume instance: its own node and
    those its data re-attaches to. Online or not, drained or not: the caller decides that."""
    return [node for node in nodes if domain.admits(node)]


def follows_instance(
    scope: VolumeScope,
    domain: VolumeDomain,
    node_id: str,
    labels: Mapping[str, str],
    drivers: Mapping[str, str | None],
) -> bool:
    """Whether a volume instance re-attaches to another node its instance was placed on: only an
    instance-scope one (stack and grid scopes have one per node), only inside its domain."""
    return scope is VolumeScope.INSTANCE and domain.reach(node_id, labels, drivers) is Reach.SHARED


# --- which topology a driver can honour, checked when a volume is created --------------------------


@dataclass(frozen=True, slots=True)
class DriverCapability:
    """What the grid's nodes report of one volume driver: the nodes (by name) where it is global,
    where it is local, and where it does not say (Docker treats those as local)."""

    driver: str
    global_on: tuple[str, ...] = ()
    local_on: tuple[str, ...] = ()
    unsaid_on: tuple[str, ...] = ()

    @staticmethod
    def of(driver: str, reports: Iterable[tuple[str, str | None]]) -> DriverCapability:
        """From (node name, capability scope) for each node that has ``driver``."""
        by_scope: dict[str | None, list[str]] = {}
        for node, scope in reports:
            by_scope.setdefault(scope if scope in ("local", SHARED_DRIVER_SCOPE) else None, []).append(node)
        return DriverCapability(
            driver,
            tuple(sorted(by_scope.get(SHARED_DRIVER_SCOPE, ()))),
            tuple(sorted(by_scope.get("local", ()))),
            tuple(sorted(by_scope.get(None, ()))),
        )

    @property
    def shares(self) -> bool | None:
        """True when some node has it global, False when it is known to be local only (reported
        so, or Docker's built-in ``local``), None when nothing is known (no node has it yet)."""
        if self.global_on:
            return True
        if self.local_on or self.unsaid_on:
            return False
        if self.driver in BUILT_IN_DRIVER_SCOPES:
            return BUILT_IN_DRIVER_SCOPES[self.driver] == SHARED_DRIVER_SCOPE
        return None


def default_topology(capability: DriverCapability) -> VolumeTopology:
    """``grid`` for a driver some node has global (today's "global lifts the pin"), ``node``
    otherwise, also when no node has the driver yet: never assume storage is shared."""
    return VolumeTopology.GRID if capability.shares else VolumeTopology.NODE


def topology_error(topology: str, capability: DriverCapability) -> str | None:
    """None when a volume of ``capability``'s driver may have ``topology``, else why not.

    Anything wider than ``node`` needs a driver whose volumes other nodes see: refused when every
    node that has the driver reports it local (or says nothing, which Docker takes as local), or
    for Docker's built-in ``local``. Accepted while no node has the driver: nothing contradicts the
    user yet, and data re-attaches only to nodes that report the driver global anyway.
    """
    if topology not in {t.value for t in VolumeTopology}:
        return f"Unknown topology '{shown(topology)}', must be one of node, zone, region, grid"
    if topology == VolumeTopology.NODE or capability.shares is not False:
        return None
    driver = capability.driver
    if capability.local_on or capability.unsaid_on:
        seen = [f"local on {_some(capability.local_on)}"] if capability.local_on else []
        if capability.unsaid_on:
            seen.append(f"of no stated scope (Docker takes it as local) on {_some(capability.unsaid_on)}")
        what = f"driver '{shown(driver)}' is {' and '.join(seen)}"
    else:
        what = f"'{shown(driver)}' is Docker's built-in driver"
    return (
        f"Topology '{shown(topology)}' needs a driver whose volumes other nodes can use (capability scope "
        f"global), but {what}: only the node that made a volume instance sees its data; "
        "use topology node, or a driver that is global"
    )


def _some(names: tuple[str, ...], most: int = 3) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


def docker_volume_name(scope: VolumeScope, volume: str, stack: str, service: str, instance: int) -> str:
    """The Docker volume name for one use of ``volume`` by instance ``instance`` of ``stack/service``."""
    if scope is VolumeScope.GRID:
        return volume
    if scope is VolumeScope.STACK:
        return f"{stack}.{volume}"
    if stack == NULL_STACK:
        return f"{service}.{volume}-{instance}"
    return f"{stack}.{service}.{volume}-{instance}"


# --- drift: what a node's engine has for a Docker volume, against the volume's definition ---------


def volume_drift(
    driver: str,
    driver_opts: Mapping[str, str],
    reported_driver: str | None,
    reported_opts: Mapping[str, str] | None,
) -> dict[str, dict[str, object]] | None:
    """How a Docker volume differs from its volume's definition, by field (``driver``,
    ``driver_opts``), each as ``{"definition": ..., "engine": ...}``; empty when it does not,
    None when its agent has not reported it. The engine cannot change a volume's options in
    place, so a definition changed later (a stack upgrade) or a volume re-created by hand shows
    here until the Docker volume is made again."""
    if reported_driver is None:
        return None
    drift: dict[str, dict[str, object]] = {}
    if reported_driver != driver:
        drift["driver"] = {"definition": driver, "engine": reported_driver}
    engine_opts = dict(reported_opts or {})
    if engine_opts != dict(driver_opts):
        drift["driver_opts"] = {"definition": dict(driver_opts), "engine": engine_opts}
    return drift

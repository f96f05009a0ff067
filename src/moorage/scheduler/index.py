"""NodeIndex: the grid's nodes prepared once, and what earlier passes committed on them.

Build one per snapshot of the nodes and reuse it across passes (and, through ``fresh``, across
deployments while the nodes do not change): lookups by id and name, the nodes where each volume
driver is global (by zone or region too: the nodes a volume instance's data may re-attach to),
and pools (nodes passing the static filters) cached by the kind of request. ``commit`` records a
pass's placements so later passes see their ports, memory and CPUs as taken; committing a service
again replaces what it held before.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

from moorage.model.volume import SHARED_DRIVER_SCOPE, Spread
from moorage.scheduler.pool import Pool
from moorage.scheduler.types import InstanceRequest, NodeView, Placement

__all__ = ["NodeIndex", "Usage"]


@dataclass(frozen=True, slots=True)
class Usage:
    """What one placed instance holds on its node."""

    node_id: str
    ports: tuple[int, ...]
    memory: int
    cpus: float


class NodeIndex:
    def __init__(self, nodes: Iterable[NodeView]) -> None:
        self.nodes: tuple[NodeView, ...] = tuple(sorted(nodes, key=lambda n: n.id))
        self._by_id = {n.id: n for n in self.nodes}
        if len(self._by_id) != len(self.nodes):
            dupes = sorted(i for i, c in Counter(n.id for n in self.nodes).items() if c > 1)
            raise ValueError(f"node ids must be unique, got {dupes} more than once")
        self._by_name: dict[str, list[NodeView]] = {}
        self._global: dict[str, set[str]] = {}
        for node in self.nodes:
            self._by_name.setdefault(node.name, []).append(node)
            for driver, scope in node.drivers.items():
                if scope == SHARED_DRIVER_SCOPE:
                    self._global.setdefault(driver, set()).add(node.id)
        self.online: tuple[NodeView, ...] = tuple(n for n in self.nodes if n.online)
        self._pools: dict[Hashable, Pool] = {}
        self._spread: dict[Spread, frozenset[str]] = {}
        self._committed: dict[str, tuple[Usage, ...]] = {}
        self._ports: dict[str, Counter[int]] = {}
        self._memory: dict[str, int] = {}
        self._cpus: dict[str, float] = {}

    def fresh(self) -> NodeIndex:
        """The same nodes with nothing committed: for the next deployment over an unchanged grid.

        Shares the lookups and the pools already made (they depend only on the nodes, which
        are frozen), so a deployment does not pay again for the size of the grid.
        """
        clone = object.__new__(NodeIndex)
        clone.nodes = self.nodes
        clone._by_id = self._by_id
        clone._by_name = self._by_name
        clone._global = self._global
        clone.online = self.online
        clone._pools = self._pools
        clone._spread = self._spread
        clone._committed = {}
        clone._ports = {}
        clone._memory = {}
        clone._cpus = {}
        return clone

    def __len__(self) -> int:
        return len(self.nodes)

    def get(self, node_id: str | None) -> NodeView | None:
        return None if node_id is None else self._by_id.get(node_id)

    def named(self, name: str) -> Sequence[NodeView]:
        return self._by_name.get(name, ())

    def reached_by_all(self, spreads: Iterable[Spread]) -> list[NodeView]:
        """Nodes that every one of ``spreads`` reaches (``VolumeDomain.spread``: the driver global
        there, and the zone or region label equal, when the spread has one), by id."""
        sets = [self._reached(spread) for spread in spreads]
        if not sets:
            return []
        ids = frozenset.intersection(*sets)
        return [self._by_id[i] for i in sorted(ids)]

    def _reached(self, spread: Spread) -> frozenset[str]:
        found = self._spread.get(spread)
        if found is None:
            driver, key, value = spread
            shared = self._global.get(driver, set())
            found = self._spread[spread] = frozenset(
                i for i in shared if key is None or self._by_id[i].labels.get(key) == value
            )
        return found

    def pool(self, key: Hashable, make: Callable[[], Pool]) -> Pool:
        """The pool cached under ``key``, made once."""
        found = self._pools.get(key)
        if found is None:
            found = self._pools[key] = make()
        return found

    # --- what passes committed ------------------------------------------------------------------

    def commit(self, requests: Sequence[InstanceRequest], placements: Sequence[Placement]) -> None:
        """Record the placed instances of one service; replaces what that service held before."""
        by_instance = {r.instance: r for r in requests}
        services = {r.service_id for r in requests}
        if len(services) > 1:
            raise ValueError(f"commit takes one service at a time, got {sorted(services)}")
        for service_id in services:
            self._release(service_id)
            usage = tuple(
                Usage(
                    node_id=p.node_id,
                    ports=tuple(m.host_port for m in by_instance[p.instance].ports),
                    memory=by_instance[p.instance].memory or 0,
                    cpus=by_instance[p.instance].cpus or 0.0,
                )
                for p in placements
                if p.node_id is not None
            )
            self._committed[service_id] = usage
            self._add(usage, +1)

    def committed(self, service_id: str) -> tuple[Usage, ...]:
        return self._committed.get(service_id, ())

    def held_ports(self, node_id: str) -> Counter[int] | None:
        return self._ports.get(node_id)

    def held_memory(self, node_id: str) -> int:
        return self._memory.get(node_id, 0)

    def held_cpus(self, node_id: str) -> float:
        return self._cpus.get(node_id, 0.0)

    def _release(self, service_id: str) -> None:
        self._add(self._committed.pop(service_id, ()), -1)

    def _add(self, usage: Iterable[Usage], sign: int) -> None:
        for u in usage:
            ports = self._ports.setdefault(u.node_id, Counter())
            for port in u.ports:
                ports[port] += sign
            self._memory[u.node_id] = self._memory.get(u.node_id, 0) + sign * u.memory
            self._cpus[u.node_id] = self._cpus.get(u.node_id, 0.0) + sign * u.cpus

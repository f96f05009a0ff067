"""PassContext: what one pass over one service knows besides the nodes.

It counts the service's instances per node and per zone as the pass places them, and the ports,
memory and CPUs they take. Ports and resources held on a node are the node's own figures, plus
what other services committed to the :class:`NodeIndex`, plus what this pass placed.
"""

from __future__ import annotations

import random
from collections import Counter

from moorage.scheduler.index import NodeIndex
from moorage.scheduler.shuffle import seeded_rng
from moorage.scheduler.types import InstanceRequest, NodeView

__all__ = ["PassContext"]

_CPU_SLACK = 1e-9  # CPUs are floats; 0.1 * 3 must fit in 0.3


class PassContext:
    def __init__(self, index: NodeIndex, service_id: str, seed: str) -> None:
        self.index = index
        self.service_id = service_id
        self.seed = seed
        self.placed = 0  # placements made so far in this pass; grows only
        self._node_count: dict[str, int] = {}
        self._zone_count: dict[str | None, int] = {}
        self._ports: dict[str, set[int]] = {}
        self._memory: dict[str, int] = {}
        self._cpus: dict[str, float] = {}
        # What this very service committed earlier: the pass re-places it, so it does not count.
        self._own_ports: dict[str, Counter[int]] = {}
        self._own_memory: dict[str, int] = {}
        self._own_cpus: dict[str, float] = {}
        for u in index.committed(service_id):
            self._own_ports.setdefault(u.node_id, Counter()).update(u.ports)
            self._own_memory[u.node_id] = self._own_memory.get(u.node_id, 0) + u.memory
            self._own_cpus[u.node_id] = self._own_cpus.get(u.node_id, 0.0) + u.cpus

    def rng(self, *parts: object) -> random.Random:
        """A generator for one ordering of this pass, from the seed and the service id."""
        return seeded_rng(self.seed, self.service_id, *parts)

    def node_count(self, node_id: str) -> int:
        """Instances of this service placed on the node in this pass."""
        return self._node_count.get(node_id, 0)

    def zone_count(self, zone: str | None) -> int:
        """Instances of this service placed in the zone in this pass (None: nodes without a zone)."""
        return self._zone_count.get(zone, 0)

    def port_in_use(self, node: NodeView, port: int) -> bool:
        if port in node.used_ports:
            return True
        taken = self._ports.get(node.id)
        if taken is not None and port in taken:
            return True
        held = self.index.held_ports(node.id)
        if held is None or held[port] <= 0:
            return False
        own = self._own_ports.get(node.id)
        return held[port] - (own[port] if own is not None else 0) > 0

    def has_memory(self, node: NodeView, memory: int) -> bool:
        held = self.index.held_memory(node.id) - self._own_memory.get(node.id, 0)
        free = node.memory - node.reserved_memory - held - self._memory.get(node.id, 0)
        return memory <= free

    def has_cpus(self, node: NodeView, cpus: float) -> bool:
        held = self.index.held_cpus(node.id) - self._own_cpus.get(node.id, 0.0)
        free = node.cpus - node.reserved_cpus - held - self._cpus.get(node.id, 0.0)
        return cpus <= free + _CPU_SLACK

    def record(self, node: NodeView, request: InstanceRequest) -> None:
        """Count an instance placed on ``node`` and take what it needs there."""
        self.placed += 1
        self._node_count[node.id] = self._node_count.get(node.id, 0) + 1
        zone = node.zone
        self._zone_count[zone] = self._zone_count.get(zone, 0) + 1
        if request.ports:
            self._ports.setdefault(node.id, set()).update(p.host_port for p in request.ports)
        if request.memory:
            self._memory[node.id] = self._memory.get(node.id, 0) + request.memory
        if request.cpus:
            self._cpus[node.id] = self._cpus.get(node.id, 0.0) + request.cpus

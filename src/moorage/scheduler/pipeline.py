"""The scheduler, top to bottom.

``build_pipeline`` stacks the stages; ``schedule_service`` runs them once per instance of one
service, each instance seeing what the ones before it took. See README.md for the diagram.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace

from moorage.model.stack import DeployStrategy
from moorage.scheduler.context import PassContext
from moorage.scheduler.explain import explain
from moorage.scheduler.filters import (
    Affinity,
    Drained,
    Lost,
    Online,
    Ports,
    Resources,
    VolumeDrivers,
    VolumePin,
    VolumeRemoval,
)
from moorage.scheduler.index import NodeIndex
from moorage.scheduler.pool import Pool, make_pool
from moorage.scheduler.stage import Filter, Strategy
from moorage.scheduler.strategies import Daemon, HighAvailability, Random
from moorage.scheduler.types import InstanceRequest, NodeView, Placement, PlacementStatus, Verdict

__all__ = ["Pipeline", "build_pipeline", "daemon_plan", "schedule_service"]

STRATEGIES: Mapping[DeployStrategy, Callable[[], Strategy]] = {
    DeployStrategy.HA: HighAvailability,
    DeployStrategy.DAEMON: Daemon,
    DeployStrategy.RANDOM: Random,
}


@dataclass(frozen=True, slots=True)
class Pipeline:
    filters: tuple[Filter, ...]  # in the order a node's first failing reason is reported
    strategy: Strategy


def build_pipeline(strategy: DeployStrategy) -> Pipeline:
    chosen = STRATEGIES[strategy]()
    return Pipeline(
        filters=(
            Online(),  # ............ node(s) offline                              (static, not fatal)
            Drained(),  # ........... node(s) drained                              (static)
            Lost(),  # .............. node(s) declared lost                        (static, not fatal)
            VolumePin(),  # ......... node(s) don't hold volume instance X            (static)
            #                         node(s) outside zone a of volume instance X
            Affinity(),  # .......... node(s) didn't match affinity label==zone=c     (static)
            VolumeDrivers(),  # ..... node(s) missing volume driver(s) [d1, d2]       (static)
            VolumeRemoval(),  # ..... node(s) still removing the Docker volume X ...  (dynamic, not fatal)
            #                         node(s) already hold a Docker volume X (a retired copy ...)
            Ports(),  # ............. node(s) had port 8080 in use                    (dynamic)
            Resources(),  # ......... node(s) had too little memory / CPU             (dynamic)
            *chosen.filters,  # ..... daemon: node(s) already run an instance         (dynamic)
        ),
        strategy=chosen,  # ......... ranks what is left: ha | daemon | random
    )


def schedule_service(
    nodes: Sequence[NodeView] | NodeIndex,
    requests: Sequence[InstanceRequest],
    strategy: DeployStrategy,
    seed: str,
) -> list[Placement]:
    """One placement per request, in request order. All requests are instances of one service.

    Pass a :class:`NodeIndex` instead of the nodes to reuse its caches across services (and
    ``index.commit(...)`` the result so the next service sees what this one took).
    """
    if not requests:
        return []
    service_id = _one_service(requests)
    return _Pass(build_pipeline(strategy), _as_index(nodes), service_id, seed).run(requests)


def daemon_plan(
    nodes: Sequence[NodeView] | NodeIndex,
    template: InstanceRequest,
    anchors: Mapping[int, str] | None = None,
) -> list[int]:
    """The instance numbers a ``daemon`` service should run: one per node that can take one.

    ``template`` is any instance of the service (its volume pins are ignored). ``anchors`` maps
    an instance number to the node it belongs to (where it runs, or where its instance-scope
    volume instances live). An anchored instance keeps its number while its node can take it; a
    node without one gets the lowest number not anchored anywhere, so a node that comes back
    finds its own instance, and its data, again.
    """
    anchors = anchors or {}
    loose = replace(
        template,
        volumes=tuple(
            replace(v, pinned_node=None, removing_on=frozenset(), taken_on=frozenset())
            for v in template.volumes
        ),
        current_node=None,
    )
    run = _Pass(build_pipeline(DeployStrategy.DAEMON), _as_index(nodes), template.service_id, "daemon-plan")
    able = [node.id for node in run.pool(loose).nodes if run.feasible_now(node, loose)]
    able_ids = set(able)
    numbers: dict[str, int] = {}  # node id -> instance number it runs
    for number in sorted(anchors):
        if anchors[number] in able_ids:
            numbers.setdefault(anchors[number], number)
    unanchored = (n for n in itertools.count(1) if n not in anchors)
    for node_id in able:
        if node_id not in numbers:
            numbers[node_id] = next(unanchored)
    return sorted(numbers.values())


class _Pass:
    """One run of the pipeline over the instances of one service."""

    def __init__(self, pipeline: Pipeline, index: NodeIndex, service_id: str, seed: str) -> None:
        self.ctx = PassContext(index, service_id, seed)
        self.filters = pipeline.filters
        self.static = tuple(f for f in pipeline.filters if not f.dynamic)
        self.dynamic = tuple(f for f in pipeline.filters if f.dynamic)
        self._static_names = tuple(f.name for f in self.static)
        # The selector gets a callable of its own, not a bound method of the pass: no reference
        # cycle, so a pass is freed as soon as it ends instead of waiting for the cyclic GC.
        self.selector = pipeline.strategy.begin(self.ctx, _DynamicCheck(self.dynamic, self.ctx))
        self._explained: dict[Hashable, tuple[str, PlacementStatus]] = {}

    def run(self, requests: Sequence[InstanceRequest]) -> list[Placement]:
        done: dict[int, Placement] = {}
        # 1. Sticky: an instance its current node can still take stays there, and counts first.
        movers: list[int] = []
        for pos, request in enumerate(requests):
            node = self.ctx.index.get(request.current_node)
            if node is not None and self.verdict(node, request) is None:
                done[pos] = self._place(node, request)
            else:
                movers.append(pos)
        # 2. The most constrained next: instances tied to a volume instance, then the others. A
        #    tied one goes back to the node holding its volume instance when that node can take it;
        #    only otherwise does it re-attach elsewhere in the volume instance's domain.
        movers.sort(key=lambda pos: not requests[pos].pins)
        for pos in movers:
            request = requests[pos]
            node = self._home(request) or self.selector.pick(request, self.pool(request))
            done[pos] = self._place(node, request) if node is not None else self._unplaced(request)
        return [done[pos] for pos in range(len(requests))]

    def _home(self, request: InstanceRequest) -> NodeView | None:
        """The first node holding one of the request's volume instances that can take it now."""
        for need in request.pins:
            node = self.ctx.index.get(need.pinned_node)
            if node is not None and self.verdict(node, request) is None:
                return node
        return None

    # --- filters ---------------------------------------------------------------------------------

    def verdict(self, node: NodeView, request: InstanceRequest) -> Verdict | None:
        """The first filter that rejects ``node``, or None when it can take ``request``."""
        return _first_verdict(self.filters, self.ctx, node, request)

    def feasible_now(self, node: NodeView, request: InstanceRequest) -> bool:
        """For a node that passed the static filters: do the dynamic ones pass, now?"""
        return _first_verdict(self.dynamic, self.ctx, node, request) is None

    def _static_ok(self, node: NodeView, request: InstanceRequest) -> bool:
        return _first_verdict(self.static, self.ctx, node, request) is None

    # --- candidates ------------------------------------------------------------------------------

    def pool(self, request: InstanceRequest) -> Pool:
        """The nodes passing the static filters for ``request``; cached in the index when shared."""
        index = self.ctx.index
        shape = (self._static_names, request.affinity, request.drivers)
        pins = request.pins
        if not pins:
            key: Hashable = ("free", shape)
            return index.pool(key, lambda: self._static_pool(key, self._first_guess(request), request))
        # Pinned: the nodes holding its volume instances, and those every pin's domain reaches
        # (none when one of them can be used on its own node only).
        spreads = [p.domain.spread if p.domain is not None else None for p in pins]
        reached = frozenset(s for s in spreads if s is not None) if None not in spreads else None
        shared_key = ("shared", shape, reached)
        shared = index.pool(
            shared_key,
            lambda: self._static_pool(
                shared_key, index.reached_by_all(reached) if reached is not None else (), request
            ),
        )
        holders = {
            node.id: node
            for node in (index.get(p.pinned_node) for p in pins)
            if node is not None and node.id not in shared.ids and self._static_ok(node, request)
        }
        if not holders:
            return shared
        return make_pool((shared_key, frozenset(holders)), [*shared.nodes, *holders.values()])

    def _static_pool(self, key: Hashable, nodes: Sequence[NodeView], request: InstanceRequest) -> Pool:
        return make_pool(key, (n for n in nodes if self._static_ok(n, request)))

    def _first_guess(self, request: InstanceRequest) -> Sequence[NodeView]:
        """A superset of the static pool, cheap to get: the node an affinity names, or the online ones."""
        for rule in request.affinity:
            if rule.subject == "node" and rule.equal:
                return self.ctx.index.named(rule.value)
        return self.ctx.index.online

    # --- outcomes --------------------------------------------------------------------------------

    def _place(self, node: NodeView, request: InstanceRequest) -> Placement:
        self.ctx.record(node, request)
        return Placement(instance=request.instance, node_id=node.id, reasons=(), status="placed")

    def _unplaced(self, request: InstanceRequest) -> Placement:
        # Same shape, same placements so far: same answer. Volumes only matter by their drivers,
        # unless one pins the instance (then the words name its volume instance).
        volumes: Hashable = request.volumes if request.pins else request.drivers
        key = (
            request.affinity,
            request.ports,
            request.memory,
            request.cpus,
            volumes,
            request.avoid,
            self.ctx.placed,
        )
        found = self._explained.get(key)
        if found is None:
            found = self._explained[key] = explain(
                self.ctx.index, lambda node: self.verdict(node, request), request
            )
        reason, status = found
        return Placement(instance=request.instance, node_id=None, reasons=(reason,), status=status)


class _DynamicCheck:
    """``Feasible`` for a pass: do the dynamic filters pass for this node and request, now?"""

    __slots__ = ("ctx", "filters")

    def __init__(self, filters: Sequence[Filter], ctx: PassContext) -> None:
        self.filters = filters
        self.ctx = ctx

    def __call__(self, node: NodeView, request: InstanceRequest) -> bool:
        return _first_verdict(self.filters, self.ctx, node, request) is None


def _first_verdict(
    filters: Sequence[Filter], ctx: PassContext, node: NodeView, request: InstanceRequest
) -> Verdict | None:
    for f in filters:
        found = f.check(ctx, node, request)
        if found is not None:
            return found
    return None


def _as_index(nodes: Sequence[NodeView] | NodeIndex) -> NodeIndex:
    return nodes if isinstance(nodes, NodeIndex) else NodeIndex(nodes)


def _one_service(requests: Sequence[InstanceRequest]) -> str:
    services = {r.service_id for r in requests}
    if len(services) != 1:
        raise ValueError(f"schedule_service places one service at a time, got {sorted(services)}")
    numbers = [r.instance for r in requests]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"instance numbers must be unique, got {sorted(numbers)}")
    return services.pop()

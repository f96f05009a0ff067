"""The gauges and the deployment histogram, read from the store when Prometheus scrapes.

Nothing is counted by hand where things change: every figure is a ``GROUP BY`` of the store
(``moorage.store.tallies``) in one unit of work per scrape, so the figures agree with what the API
shows, survive a master restart, and count the changes another master process made on the same store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from moorage.model.node import NodeStatus
from moorage.model.states import InstanceState, VolumeInstanceState
from moorage.store.database import Database
from moorage.store.services import shown_state
from moorage.store.tallies import (
    deployment_durations,
    deployment_states,
    grid_names,
    instance_states,
    node_states,
    volume_instance_states,
)

__all__ = ["DEPLOYMENT_BUCKETS", "DEPLOYMENT_STATES", "StoreCollector"]

DEPLOYMENT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DEPLOYMENT_STATES = ("running", "success", "error")  # see moorage.store.deployments


def _gauge(
    name: str, doc: str, grids: Iterable[str], states: Iterable[str], counts: Mapping[tuple[str, str], int]
) -> GaugeMetricFamily:
    """Every (grid, state) pair: the known states at 0 too, so an alert on ``state="online"`` sees 0."""
    family = GaugeMetricFamily(name, doc, labels=["grid", "state"])
    known = list(states)
    pairs = {(g, s) for g in grids for s in known} | set(counts)
    for grid, state in sorted(pairs):
        family.add_metric([grid, state], counts.get((grid, state), 0))
    return family


class StoreCollector:
    """A prometheus_client collector (``collect``) over the store and the hub's open sockets."""

    def __init__(self, db: Database, agent_connections: Callable[[], Mapping[str, int]]) -> None:
        self.db = db
        self.agent_connections = agent_connections

    def collect(self) -> Iterable[Metric]:
        with self.db.session() as session:
            grids = grid_names(session)
            nodes = {(g, s): n for g, s, n in node_states(session)}
            instances: dict[tuple[str, str], int] = {}
            for grid, stored, node_status, count in instance_states(session):
                shown, _ = shown_state(stored, None, node_status)
                instances[(grid, shown)] = instances.get((grid, shown), 0) + count
            volume_instances = {(g, s): n for g, s, n in volume_instance_states(session)}
            deployments = {(g, s): n for g, s, n in deployment_states(session)}
            durations = deployment_durations(session, DEPLOYMENT_BUCKETS)
        yield _gauge("moorage_nodes", "Nodes by status", grids, list(NodeStatus), nodes)
        yield _gauge(
            "moorage_instances",
            "Service instances by state, as the API shows them (unknown: last reported by a node now offline)",
            grids,
            list(InstanceState),
            instances,
        )
        yield _gauge(
            "moorage_volume_instances",
            "Volume instances (Docker volumes Moorage made on a node) by state",
            grids,
            list(VolumeInstanceState),
            volume_instances,
        )
        yield _gauge(
            "moorage_deployments",
            "Deployments the store holds, by state (running: in progress)",
            grids,
            DEPLOYMENT_STATES,
            deployments,
        )
        histogram = HistogramMetricFamily(
            "moorage_deployment_duration_seconds",
            "Finished deployments: seconds from created to finished",
            labels=["grid", "state"],
        )
        for tally in durations:
            buckets = [(_bound(b), n) for b, n in zip(DEPLOYMENT_BUCKETS, tally.at_most, strict=True)]
            buckets.append(("+Inf", tally.count))
            histogram.add_metric([tally.grid, tally.state], buckets, tally.total_seconds)
        yield histogram
        connections = GaugeMetricFamily(
            "moorage_agent_connections", "Agents connected to this master now", labels=["grid"]
        )
        open_now = self.agent_connections()
        for grid in sorted(set(grids) | set(open_now)):
            connections.add_metric([grid], open_now.get(grid, 0))
        yield connections


def _bound(seconds: float) -> str:
    return f"{seconds:g}" if seconds != int(seconds) else f"{seconds:.1f}"

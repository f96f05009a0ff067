"""What one master exposes to Prometheus, all under ``moorage_``.

From the store, read at scrape time by ``StoreCollector`` (one query per family):

    moorage_nodes{grid,state}                      gauge      nodes by status (online, offline)
    moorage_instances{grid,state}                  gauge      service instances by state, as shown
    moorage_volume_instances{grid,state}           gauge      Docker volumes Moorage made, by state
    moorage_deployments{grid,state}                gauge      deployments recorded (running = in progress)
    moorage_deployment_duration_seconds{grid,state} histogram finished deployments, created to finished

From the running master:

    moorage_agent_connections{grid}                gauge      agent sockets open now
    moorage_api_request_duration_seconds{method,route,status}  histogram  every HTTP request
    moorage_process_*                              the master process (CPU, memory, open files)

A registry of its own per master (not prometheus_client's global one), so two masters in one
process (tests) do not share figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest

from moorage.master.hub import AgentHub
from moorage.master.metrics.store_collector import StoreCollector
from moorage.store.database import Database

__all__ = ["REQUEST_BUCKETS", "MasterMetrics"]

REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Seconds; the API answers most requests within a few milliseconds."""


@dataclass
class MasterMetrics:
    registry: CollectorRegistry
    request_seconds: Histogram

    @classmethod
    def create(cls, db: Database, hub: AgentHub) -> MasterMetrics:
        registry = CollectorRegistry(auto_describe=False)

        def agent_connections() -> Counter[str]:
            # list() of a dict's values runs in C under the GIL: safe from the scrape's worker thread
            return Counter(conn.grid for conn in list(hub.connections.values()))

        registry.register(StoreCollector(db, agent_connections))
        ProcessCollector(namespace="moorage", registry=registry)
        request_seconds = Histogram(
            "moorage_api_request_duration_seconds",
            "HTTP requests to the master, from the first byte of the request to the last of the answer",
            ["method", "route", "status"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        return cls(registry=registry, request_seconds=request_seconds)

    def exposition(self) -> bytes:
        """The text format; reads the store, so call it on a worker thread."""
        return generate_latest(self.registry)

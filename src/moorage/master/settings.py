"""A master's settings: how often agents beat, when a silent node is offline, who may read /metrics, how long a moved volume's source copy is kept,
how long the leader's lease lasts (several masters on PostgreSQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

__all__ = ["MasterSettings"]


@dataclass(frozen=True, slots=True)
class MasterSettings:
    heartbeat_interval: float = 5.0
    missed_heartbeats: int = 3  # a node is offline after this many intervals without a word
    metrics_need_token: bool = True  # GET /metrics takes an admin token (--metrics-without-token: not)
    retired_retention: timedelta = timedelta(days=7)  # a move's source copy is purged after this
    lease_ttl: float = 5.0  # a leader that stopped renewing (paused) is replaced after this long
    lease_tick: float = 1.0  # how often each master says it lives and looks at the lease
    tls_chain: Path | None = None  # the certificate chain it serves; trusted for peer masters too

    @property
    def node_timeout(self) -> float:
        return self.heartbeat_interval * self.missed_heartbeats

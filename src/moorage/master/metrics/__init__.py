"""``GET /metrics``: the master in the Prometheus text format (see ``MasterMetrics``)."""

from moorage.master.metrics.registry import MasterMetrics
from moorage.master.metrics.request_timing import RequestTiming

__all__ = ["MasterMetrics", "RequestTiming"]

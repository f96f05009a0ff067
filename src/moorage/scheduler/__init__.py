"""The scheduler: which node runs each instance of a service. Pure: no I/O, no database, no Docker.

    schedule_service(nodes, requests, strategy, seed) -> [Placement]   one pass over one service
    daemon_plan(nodes, template, anchors) -> [instance numbers]         how many a daemon runs
    NodeIndex(nodes)                                                    reuse across passes; commit()

See README.md for the pipeline and its vocabulary; ``moorage.scheduler.reasons`` for every
sentence it says.
"""

from moorage.scheduler.explain import SchedulerBug
from moorage.scheduler.index import NodeIndex
from moorage.scheduler.pipeline import Pipeline, build_pipeline, daemon_plan, schedule_service
from moorage.scheduler.types import (
    InstanceRequest,
    NodeView,
    Placement,
    PlacementStatus,
    Verdict,
    VolumeNeed,
)

__all__ = [
    "InstanceRequest",
    "NodeIndex",
    "NodeView",
    "Pipeline",
    "Placement",
    "PlacementStatus",
    "SchedulerBug",
    "Verdict",
    "VolumeNeed",
    "build_pipeline",
    "daemon_plan",
    "schedule_service",
]

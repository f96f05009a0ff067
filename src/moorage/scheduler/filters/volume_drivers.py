"""The node must have every volume driver the instance's named mounts use (Kontena 1.2)."""

from __future__ import annotations

from moorage.scheduler.context import PassContext
from moorage.scheduler.reasons import MISSING_DRIVERS, driver_list
from moorage.scheduler.types import InstanceRequest, NodeView, Verdict

__all__ = ["VolumeDrivers"]


class VolumeDrivers:
    name = "volume_drivers"
    dynamic = False

    def check(self, ctx: PassContext, node: NodeView, request: InstanceRequest) -> Verdict | None:
        drivers = node.drivers
        for need in request.volumes:
            if need.driver not in drivers:
                missing = {v.driver for v in request.volumes if v.driver not in drivers}
                return Verdict(MISSING_DRIVERS.format(drivers=driver_list(missing)))
        return None

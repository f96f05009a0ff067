"""One module per filter: each answers, for one node and one instance, "can it go here?"."""

from moorage.scheduler.filters.affinity import Affinity
from moorage.scheduler.filters.drained import Drained
from moorage.scheduler.filters.lost import Lost
from moorage.scheduler.filters.one_per_node import OnePerNode
from moorage.scheduler.filters.online import Online
from moorage.scheduler.filters.ports import Ports
from moorage.scheduler.filters.resources import Resources
from moorage.scheduler.filters.volume_drivers import VolumeDrivers
from moorage.scheduler.filters.volume_pin import VolumePin
from moorage.scheduler.filters.volume_removal import VolumeRemoval

__all__ = [
    "Affinity",
    "Drained",
    "Lost",
    "OnePerNode",
    "Online",
    "Ports",
    "Resources",
    "VolumeDrivers",
    "VolumePin",
    "VolumeRemoval",
]

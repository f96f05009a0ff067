"""One module per deploy strategy: how to choose among the nodes that passed the filters."""

from moorage.scheduler.strategies.daemon import Daemon
from moorage.scheduler.strategies.ha import HighAvailability
from moorage.scheduler.strategies.random import Random

__all__ = ["Daemon", "HighAvailability", "Random"]

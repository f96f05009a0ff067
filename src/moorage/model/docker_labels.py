"""The Docker labels Moorage puts on what it creates: the one spelling of their keys.

The master writes them (``master/container_specs.py`` on containers, ``master/desired.py`` on
volumes) and the agent reads them (``agent/converge.py``): an agent only touches containers of
its grid that carry them, recreates a container whose config hash differs, and removes a Docker
volume only when it carries that volume instance's id. Those rules hold only while both sides
spell the keys the same, so both import them from here.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BACKUP_JOB",
    "CONFIG_HASH",
    "GRID",
    "HELPER",
    "INSTANCE",
    "MOVE",
    "SERVICE",
    "SERVICE_ID",
    "STACK",
    "VOLUME",
    "VOLUME_INSTANCE",
]

# On containers and volumes: the grid that made them.
GRID: Final = "io.moorage.grid"
# On containers.
STACK: Final = "io.moorage.stack"
SERVICE: Final = "io.moorage.service"
SERVICE_ID: Final = "io.moorage.service-id"
INSTANCE: Final = "io.moorage.instance"
CONFIG_HASH: Final = "io.moorage.config-hash"
# On volumes: the grid volume (``grid/volume``) and the volume instance they were made for.
VOLUME: Final = "io.moorage.volume-id"
VOLUME_INSTANCE: Final = "io.moorage.volume-instance-id"
# On helper containers that mount a Docker volume to read or write its data (agent/volume_data.py):
# never a grid's container, so convergence leaves them alone; an agent removes its own leftovers.
HELPER: Final = "io.moorage.helper"
# On a Docker volume a move made on its target node: the move's id (only that move removes it).
MOVE: Final = "io.moorage.move-id"
# On helper containers of backup jobs (agent/backups.py): the job's id. Never a grid's container.
BACKUP_JOB: Final = "io.moorage.backup-job"

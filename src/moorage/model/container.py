"""A planned container: what one instance should run, as the master records it for its node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["PlannedContainer"]


@dataclass(frozen=True, slots=True)
class PlannedContainer:
    """The document the instance's agent receives (a ``protocol.ContainerSpec`` as JSON), and what
    the scheduler and the store need from it without reading the document again."""

    document: dict[str, Any]
    config_hash: str
    host_ports: tuple[int, ...]
    memory: int | None
    cpus: float | None

"""A planned container: what one instance should run, as the master records it for its node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from moorage.model.stack import NULL_STACK

__all__ = ["PlannedContainer", "container_name"]


def container_name(stack: str, service: str, instance: int) -> str:
    """Kontena's names: ``<stack>.<service>-<n>``, or ``<service>-<n>`` in the null stack."""
    if stack == NULL_STACK:
        return f"{service}-{instance}"
    return f"{stack}.{service}-{instance}"


@dataclass(frozen=True, slots=True)
class PlannedContainer:
    """The document the instance's agent receives (a ``protocol.ContainerSpec`` as JSON), and what
    the scheduler and the store need from it without reading the document again."""

    document: dict[str, Any]
    config_hash: str
    host_ports: tuple[int, ...]
    memory: int | None
    cpus: float | None

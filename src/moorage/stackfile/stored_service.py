"""How a service is stored: as a one-service stack document, read back through the stack pipeline.

A stored service is ``stack_to_dict`` of a stack holding just that service and the top-level
volumes it mounts, so the same validation guards stack files, API calls and what the store holds.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

from pydantic_core import from_json, to_json

from moorage.model.stack import MountKind, ServiceSpec, StackSpec
from moorage.stackfile import stack_from_dict, stack_to_dict

__all__ = ["StoredService", "load_service", "service_document"]


@dataclass(frozen=True, slots=True)
class StoredService:
    stack: str
    spec: ServiceSpec
    volumes: dict[str, str]  # mount alias -> grid volume name

    def volume_of(self, alias: str) -> str:
        return self.volumes.get(alias, alias)

    @property
    def grid_volumes(self) -> list[str]:
        """The grid volumes this service's named mounts refer to, in mount order."""
        names = [self.volume_of(m.source) for m in self.spec.mounts if m.kind is MountKind.NAMED and m.source]
        return list(dict.fromkeys(names))


def service_document(stack: StackSpec, service: ServiceSpec) -> dict[str, Any]:
    aliases = {m.source for m in service.mounts if m.kind is MountKind.NAMED}
    single = StackSpec(
        name=stack.name,
        services=(service,),
        volumes=tuple(v for v in stack.volumes if v.alias in aliases),
    )
    return stack_to_dict(single)


_loaded: dict[Hashable, tuple[dict[str, Any], StoredService]] = {}
_LOADED_KEPT = 4096


def load_service(document: dict[str, Any], key: Hashable | None = None) -> StoredService:
    """The service a stored document holds (the document runs through the stack pipeline).

    With ``key`` (a service row's id), the answer is kept and given again while the document is
    equal to the one it came from: deployment polls and plans read services that rarely change.
    """
    if key is not None:
        found = _loaded.get(key)
        if found is not None and found[0] == document:
            return found[1]
    stack = stack_from_dict(document)
    stored = StoredService(
        stack=stack.name,
        spec=stack.services[0],
        volumes={decl.alias: decl.grid_volume(stack.name) for decl in stack.volumes},
    )
    if key is not None:
        if len(_loaded) >= _LOADED_KEPT:
            _loaded.clear()
        _loaded[key] = (from_json(to_json(document)), stored)  # a deep copy, made in Rust
    return stored

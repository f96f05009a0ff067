"""The stack file after validation: every key known, every value of the right type.

Strings with a syntax of their own (mount specs, ports, affinity rules, memory sizes, names) are
still text here; ``normalize`` parses them. Values that later steps may report on keep the path
they came from (``At``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["At", "ServiceDoc", "StackDoc", "VolumeDoc"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class At(Generic[T]):
    """A value from the stack file and the path where it was."""

    path: str
    value: T


@dataclass(frozen=True, slots=True)
class VolumeDoc:
    """A top-level ``volumes:`` entry; all of them are external."""

    alias: At[str]  # at volumes.<alias>
    external_name: At[str] | None  # at .external or .external.name; None when invalid (reported)


@dataclass(frozen=True, slots=True)
class ServiceDoc:
    """A service; one whose entry was unusable keeps only its name, so others may still name it."""

    name: At[str]  # at services.<name>
    image: str = ""  # "" when missing (already reported)
    command: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    instances: int = 1
    volumes: tuple[At[str], ...] = ()
    ports: tuple[At[str], ...] = ()
    affinity: tuple[At[str], ...] = ()
    strategy: At[str] | None = None
    depends_on: tuple[At[str], ...] = ()
    mem_limit: At[str | int] | None = None
    cpus: float | None = None


@dataclass(frozen=True, slots=True)
class StackDoc:
    stack: At[str] | None  # None when missing or not a string (already reported)
    version: str | None
    description: str | None
    services: tuple[ServiceDoc, ...]
    volumes: tuple[VolumeDoc, ...]

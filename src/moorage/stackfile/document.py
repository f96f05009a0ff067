"""The stack file after validation: every key known, every value of the right type.

Strings with a syntax of their own (mount specs, ports, affinity rules, memory sizes, names) are
still text here; ``normalize`` parses them. Values that later steps may report on keep the path
they came from (``At``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["At", "ExternalDoc", "OwnedDoc", "ServiceDoc", "StackDoc", "VolumeDoc"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class At(Generic[T]):
    """A value from the stack file and the path where it was."""

    path: str
    value: T


@dataclass(frozen=True, slots=True)
class ExternalDoc:
    """``external: true`` or ``external: {name:, scope:, driver:}``: a grid volume made elsewhere."""

    name: At[str]  # at .external or .external.name
    scope: At[str] | None = None  # what the stack expects of it
    driver: At[str] | None = None


@dataclass(frozen=True, slots=True)
class OwnedDoc:
    """An entry without ``external`` (or ``external: false``): a volume the stack owns."""

    path: str  # volumes.<alias>
    scope: At[str] | None = None  # None: not given (the default applies)
    driver: At[str] | None = None
    driver_opts: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    topology: At[str] | None = None
    backup_schedule: At[str] | None = None  # backup: {schedule: CRON, keep: daily=7 | {daily: 7}}
    backup_keep: At[str] | None = None  # as the text KEY=N,KEY=N whichever way the file wrote it
    on_node_lost: At[str] | None = None


@dataclass(frozen=True, slots=True)
class VolumeDoc:
    """A top-level ``volumes:`` entry: external or owned; neither when it was unusable (reported)."""

    alias: At[str]  # at volumes.<alias>
    external: ExternalDoc | None = None
    owned: OwnedDoc | None = None


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

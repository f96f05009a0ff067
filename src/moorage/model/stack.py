"""Stacks and services as the rest of Moorage sees them once a stack file or a CLI call is parsed.

Pure, immutable types: no I/O. ``moorage.stackfile`` builds these from YAML; the master stores them;
the scheduler and the deployer read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "NULL_STACK",
    "AffinityRule",
    "DeployStrategy",
    "Mount",
    "MountKind",
    "PortMapping",
    "ServiceSpec",
    "StackSpec",
    "StackVolume",
    "VolumeDecl",
    "full_service_id",
    "instance_label",
    "stack_volume_name",
]

NULL_STACK = "null"
"""The stack that holds services created outside any stack file (``grid/null/service``)."""


def full_service_id(grid: str, stack: str, service: str) -> str:
    """A service's id across the API, the labels and the deployments: ``grid/stack/service``."""
    return f"{grid}/{stack}/{service}"


def instance_label(service_id: str, number: int) -> str:
    """``stack/service-n``, or ``service-n`` in the null stack: as the CLI names an instance of
    the service ``grid/stack/service``."""
    _, stack, service = service_id.split("/", 2)
    return f"{service}-{number}" if stack == NULL_STACK else f"{stack}/{service}-{number}"


class DeployStrategy(StrEnum):
    HA = "ha"
    DAEMON = "daemon"
    RANDOM = "random"


class MountKind(StrEnum):
    NAMED = "named"  # name:/path[:flags]  -> a grid volume (through the stack's top-level volumes:)
    BIND = "bind"  # /host:/path[:flags]
    ANONYMOUS = "anonymous"  # /path


@dataclass(frozen=True, slots=True)
class Mount:
    kind: MountKind
    target: str
    source: str | None = None  # volume alias (named) or host path (bind); None for anonymous
    flags: str | None = None  # e.g. "ro"

    def spec(self) -> str:
        """The mount written back as a spec string, as a user would type it."""
        parts = [p for p in (self.source, self.target, self.flags) if p]
        return ":".join(parts)


@dataclass(frozen=True, slots=True)
class PortMapping:
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def spec(self) -> str:
        suffix = "" if self.protocol == "tcp" else f"/{self.protocol}"
        return f"{self.host_port}:{self.container_port}{suffix}"


@dataclass(frozen=True, slots=True)
class AffinityRule:
    """Kontena affinity: ``node==node-1``, ``node!=x``, ``label==zone=a``, ``label!=k=v``."""

    subject: str  # "node" | "label"
    equal: bool  # True for ==, False for !=
    value: str  # a node name, or "key=value" / "key" for labels

    def spec(self) -> str:
        return f"{self.subject}{'==' if self.equal else '!='}{self.value}"


def stack_volume_name(stack: str, alias: str) -> str:
    """The grid volume a stack declares as its own under ``volumes: {alias: ...}``: ``a_data``.

    A stack name has no ``_``, so the name says which stack it belongs to, and two installs of
    one file under two names (``--name a``, ``--name b``) get two volumes.
    """
    return f"{stack}_{alias}"


@dataclass(frozen=True, slots=True)
class StackVolume:
    """The definition of a volume the stack owns (a ``volumes:`` entry without ``external``).

    Checked like ``moorage volume create``'s fields (``model.volume.volume_definition_errors``);
    ``topology`` None: the driver's default, decided when the volume is created.
    """

    scope: str
    driver: str
    driver_opts: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    topology: str | None = None
    backup_schedule: str | None = None  # cron (UTC), as ``volume create --backup-schedule``
    backup_keep: str | None = None  # ``daily=7,weekly=4``, as ``--backup-keep``
    on_node_lost: str | None = None  # wait | restore | recreate (None: wait), as ``--on-node-lost``


@dataclass(frozen=True, slots=True)
class VolumeDecl:
    """A stack file's top-level ``volumes:`` entry: the alias used in mounts and the grid volume.

    External (``external_name`` set): a grid volume made by ``moorage volume create``; the stack
    may state the scope and driver it expects of it. Owned (``owned`` set): the stack declares
    it, and installing the stack creates it as ``stack_volume_name(stack, alias)``.
    """

    alias: str
    external_name: str | None = None
    owned: StackVolume | None = None
    expected_scope: str | None = None  # external only: what the stack expects of the volume
    expected_driver: str | None = None

    def grid_volume(self, stack: str) -> str:
        """The grid volume this entry stands for in stack ``stack``."""
        if self.external_name is not None:
            return self.external_name
        return stack_volume_name(stack, self.alias)


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    name: str
    image: str
    command: str | None = None
    environment: tuple[tuple[str, str], ...] = ()
    instances: int = 1
    mounts: tuple[Mount, ...] = ()
    ports: tuple[PortMapping, ...] = ()
    affinity: tuple[AffinityRule, ...] = ()
    strategy: DeployStrategy = DeployStrategy.HA
    depends_on: tuple[str, ...] = ()
    memory: int | None = None  # bytes the service asks for per instance
    cpus: float | None = None  # CPUs the service asks for per instance


@dataclass(frozen=True, slots=True)
class StackSpec:
    name: str
    services: tuple[ServiceSpec, ...]
    version: str | None = None
    description: str | None = None
    volumes: tuple[VolumeDecl, ...] = field(default=())

    def volume(self, alias: str) -> VolumeDecl | None:
        return next((v for v in self.volumes if v.alias == alias), None)

"""The container an instance runs, as its agent will create it, and the hash that decides recreation.

Names follow Kontena: ``<stack>.<service>-<n>``, or ``<service>-<n>`` in the null stack. Labels
identify the grid, stack, service, instance and config hash; the agent only ever touches
containers that carry them.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Mapping

from moorage.model.stack import NULL_STACK, MountKind, ServiceSpec
from moorage.protocol import ContainerSpec, MountWire, PortWire

__all__ = ["LABEL_PREFIX", "ContainerTemplate", "Labels", "container_name", "container_spec"]

LABEL_PREFIX = "io.moorage."


class Labels:
    GRID = "io.moorage.grid"
    STACK = "io.moorage.stack"
    SERVICE = "io.moorage.service"
    SERVICE_ID = "io.moorage.service-id"
    INSTANCE = "io.moorage.instance"
    CONFIG_HASH = "io.moorage.config-hash"


def container_name(stack: str, service: str, instance: int) -> str:
    if stack == NULL_STACK:
        return f"{service}-{instance}"
    return f"{stack}.{service}-{instance}"


def _read_only(flags: str | None) -> bool:
    return "ro" in (flags or "").split(",")


class ContainerTemplate:
    """What every instance of one service shares; ``spec(n, volume_names)`` makes instance n's container.

    Built once per service per deployment: only the name, the instance label, the volume names
    and the hash differ between instances.
    """

    def __init__(self, grid: str, stack: str, service: ServiceSpec) -> None:
        self.stack = stack
        self.service = service
        self.service_id = f"{grid}/{stack}/{service.name}"
        self.command = shlex.split(service.command) if service.command else None
        self.env = [f"{k}={v}" for k, v in service.environment]
        self.ports = [
            PortWire.model_construct(host=p.host_port, container=p.container_port, protocol=p.protocol)
            for p in service.ports
        ]
        self.labels = {
            Labels.GRID: grid,
            Labels.STACK: stack,
            Labels.SERVICE: service.name,
            Labels.SERVICE_ID: self.service_id,
        }

    def _mounts(self, volume_names: Mapping[str, str]) -> list[MountWire]:
        mounts: list[MountWire] = []
        for mount in self.service.mounts:
            read_only = _read_only(mount.flags)
            if mount.kind is MountKind.NAMED:
                assert mount.source is not None
                wire = MountWire.model_construct(
                    kind="volume", target=mount.target, source=volume_names[mount.source], read_only=read_only
                )
            elif mount.kind is MountKind.BIND:
                wire = MountWire.model_construct(
                    kind="bind", target=mount.target, source=mount.source, read_only=read_only
                )
            else:
                wire = MountWire.model_construct(
                    kind="anonymous", target=mount.target, source=None, read_only=False
                )
            mounts.append(wire)
        return mounts

    def spec(self, instance: int, volume_names: Mapping[str, str]) -> ContainerSpec:
        """``volume_names`` maps each named mount's alias to the Docker volume name for this instance."""
        name = container_name(self.stack, self.service.name, instance)
        labels = {**self.labels, Labels.INSTANCE: str(instance)}
        mounts = self._mounts(volume_names)
        body = {
            "name": name,
            "service_id": self.service_id,
            "instance": instance,
            "image": self.service.image,
            "command": self.command,
            "env": self.env,
            "ports": [[p.host, p.container, p.protocol] for p in self.ports],
            "mounts": [[m.kind, m.target, m.source, m.read_only] for m in mounts],
            "memory": self.service.memory,
            "cpus": self.service.cpus,
            "labels": labels,
        }
        digest = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[
            :16
        ]
        # Everything here comes from a validated ServiceSpec: build it without validating again.
        return ContainerSpec.model_construct(
            name=name,
            service_id=self.service_id,
            instance=instance,
            image=self.service.image,
            command=self.command,
            env=self.env,
            ports=self.ports,
            mounts=mounts,
            labels={**labels, Labels.CONFIG_HASH: digest},
            memory=self.service.memory,
            cpus=self.service.cpus,
            config_hash=digest,
        )


def container_spec(
    grid: str, stack: str, service: ServiceSpec, instance: int, volume_names: Mapping[str, str]
) -> ContainerSpec:
    """Instance ``instance``'s container (see ``ContainerTemplate`` to make many)."""
    return ContainerTemplate(grid, stack, service).spec(instance, volume_names)

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

__all__ = ["LABEL_PREFIX", "Labels", "container_name", "container_spec"]

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


def container_spec(
    grid: str, stack: str, service: ServiceSpec, instance: int, volume_names: Mapping[str, str]
) -> ContainerSpec:
    """``volume_names`` maps each named mount's alias to the Docker volume name for this instance."""
    mounts: list[MountWire] = []
    for mount in service.mounts:
        if mount.kind is MountKind.NAMED:
            assert mount.source is not None
            mounts.append(
                MountWire(
                    kind="volume",
                    source=volume_names[mount.source],
                    target=mount.target,
                    read_only=_read_only(mount.flags),
                )
            )
        elif mount.kind is MountKind.BIND:
            mounts.append(
                MountWire(
                    kind="bind", source=mount.source, target=mount.target, read_only=_read_only(mount.flags)
                )
            )
        else:
            mounts.append(MountWire(kind="anonymous", target=mount.target))
    service_id = f"{grid}/{stack}/{service.name}"
    body = {
        "name": container_name(stack, service.name, instance),
        "service_id": service_id,
        "instance": instance,
        "image": service.image,
        "command": shlex.split(service.command) if service.command else None,
        "env": [f"{k}={v}" for k, v in service.environment],
        "ports": [
            PortWire(host=p.host_port, container=p.container_port, protocol=p.protocol) for p in service.ports
        ],
        "mounts": mounts,
        "memory": service.memory,
        "cpus": service.cpus,
        "labels": {
            Labels.GRID: grid,
            Labels.STACK: stack,
            Labels.SERVICE: service.name,
            Labels.SERVICE_ID: service_id,
            Labels.INSTANCE: str(instance),
        },
    }
    draft = ContainerSpec.model_validate({**body, "config_hash": ""})
    digest = hashlib.sha256(
        json.dumps(draft.model_dump(mode="json", exclude={"config_hash"}), sort_keys=True).encode()
    ).hexdigest()[:16]
    labels = {**draft.labels, Labels.CONFIG_HASH: digest}
    return draft.model_copy(update={"config_hash": digest, "labels": labels})

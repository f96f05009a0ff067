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
from dataclasses import dataclass
from typing import Any

from moorage.model import docker_labels
from moorage.model.container import PlannedContainer, container_name
from moorage.model.stack import Mount, MountKind, ServiceSpec, full_service_id

__all__ = [
    "ContainerTemplate",
    "canonical_json",
    "config_body",
    "container_name",
]

_HOLE = "\x00"  # stands for the instance number while the labels' JSON is rendered once


def canonical_json(value: Any) -> str:
    """The JSON the config hash is taken over: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def config_body(document: Mapping[str, Any]) -> dict[str, Any]:
    """What decides whether a container must be recreated: everything but the hash itself.

    The hash is ``sha256(canonical_json(config_body(document)))[:16]``; ``ContainerTemplate``
    renders the same string from pieces it prepares once per service.
    """
    labels = {k: v for k, v in document["labels"].items() if k != docker_labels.CONFIG_HASH}
    return {
        "name": document["name"],
        "service_id": document["service_id"],
        "instance": document["instance"],
        "image": document["image"],
        "command": document["command"],
        "env": document["env"],
        "ports": [[p["host"], p["container"], p["protocol"]] for p in document["ports"]],
        "mounts": [[m["kind"], m["target"], m["source"], m["read_only"]] for m in document["mounts"]],
        "memory": document["memory"],
        "cpus": document["cpus"],
        "labels": labels,
    }


def _read_only(flags: str | None) -> bool:
    return "ro" in (flags or "").split(",")


@dataclass(frozen=True, slots=True)
class _MountPiece:
    """One mount of a service, prepared once: its document and its part of the hashed JSON.
    A named mount's source is the instance's Docker volume: it goes between ``before`` and
    ``after`` (the whole part is ``before`` for the others)."""

    document: dict[str, Any]
    alias: str | None
    before: str
    after: str

    @staticmethod
    def of(mount: Mount) -> _MountPiece:
        read_only = _read_only(mount.flags)
        if mount.kind is MountKind.NAMED:
            assert mount.source is not None
            document = {"kind": "volume", "target": mount.target, "source": None, "read_only": read_only}
            before = f'["volume",{canonical_json(mount.target)},'
            return _MountPiece(document, mount.source, before, f",{canonical_json(read_only)}]")
        if mount.kind is MountKind.BIND:
            wire = ["bind", mount.target, mount.source, read_only]
        else:
            wire = ["anonymous", mount.target, None, False]
        document = dict(zip(("kind", "target", "source", "read_only"), wire, strict=True))
        return _MountPiece(document, None, canonical_json(wire), "")


class ContainerTemplate:
    """What every instance of one service shares; ``document(n, volume_names)`` makes instance n's container.

    Built once per service per deployment: only the name, the instance label, the volume names
    and the hash differ between instances, so the rest of the hashed JSON is rendered here once.
    """

    def __init__(self, grid: str, stack: str, service: ServiceSpec) -> None:
        self.stack = stack
        self.service = service
        self.service_id = full_service_id(grid, stack, service.name)
        self.command = shlex.split(service.command) if service.command else None
        self.env = [f"{k}={v}" for k, v in service.environment]
        self.ports = [
            {"host": p.host_port, "container": p.container_port, "protocol": p.protocol}
            for p in service.ports
        ]
        self.host_ports = tuple(p.host_port for p in service.ports)
        self.labels = {
            docker_labels.GRID: grid,
            docker_labels.STACK: stack,
            docker_labels.SERVICE: service.name,
            docker_labels.SERVICE_ID: self.service_id,
        }
        # The hashed JSON, canonical_json(config_body(...)), rendered once up to what differs
        # between instances: config_body's keys in sorted order are command cpus env image |
        # instance labels | memory | mounts name | ports service_id.
        self._head = (
            f'{{"command":{canonical_json(self.command)},"cpus":{canonical_json(service.cpus)},'
            f'"env":{canonical_json(self.env)},"image":{canonical_json(service.image)},"instance":'
        )
        probe = canonical_json({**self.labels, docker_labels.INSTANCE: _HOLE})
        labels_head, _, labels_tail = probe.partition(canonical_json(_HOLE))
        self._labels_head = f',"labels":{labels_head}"'
        self._labels_tail = f'"{labels_tail},"memory":{canonical_json(service.memory)},"mounts":['
        ports = [[p["host"], p["container"], p["protocol"]] for p in self.ports]
        self._tail = f'"ports":{canonical_json(ports)},"service_id":{canonical_json(self.service_id)}}}'
        self._mounts = [_MountPiece.of(mount) for mount in service.mounts]

    def document(self, instance: int, volume_names: Mapping[str, str]) -> PlannedContainer:
        """Instance ``instance``'s container as its agent receives it (``ContainerSpec`` as JSON).

        ``volume_names`` maps each named mount's alias to the Docker volume name for this
        instance. Built straight from the validated service: nothing is validated or dumped again.
        """
        name = container_name(self.stack, self.service.name, instance)
        mounts: list[dict[str, Any]] = []
        hashed: list[str] = []
        for piece in self._mounts:
            if piece.alias is None:
                mounts.append(piece.document)
                hashed.append(piece.before)
            else:
                source = volume_names[piece.alias]
                mounts.append({**piece.document, "source": source})
                hashed.append(f"{piece.before}{json.dumps(source)}{piece.after}")
        canonical = (
            f"{self._head}{instance}{self._labels_head}{instance}{self._labels_tail}"
            f'{",".join(hashed)}],"name":{json.dumps(name)},{self._tail}'
        )
        digest = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        labels = {**self.labels, docker_labels.INSTANCE: str(instance), docker_labels.CONFIG_HASH: digest}
        document = {
            "name": name,
            "service_id": self.service_id,
            "instance": instance,
            "image": self.service.image,
            "command": self.command,
            "env": self.env,
            "ports": self.ports,
            "mounts": mounts,
            "labels": labels,
            "memory": self.service.memory,
            "cpus": self.service.cpus,
            "config_hash": digest,
        }
        return PlannedContainer(document, digest, self.host_ports, self.service.memory, self.service.cpus)

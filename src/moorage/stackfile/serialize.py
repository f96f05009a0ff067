"""A ``StackSpec`` as plain data in the stack file's own format, and back.

``stack_to_dict`` writes the normalized stack: every default made explicit (``instances``,
``deploy.strategy``), memory as ``256m``, environment as a mapping, variables already
interpolated. The result is YAML- and JSON-ready; ``moorage stack validate`` prints it and the
master stores revisions as it. ``stack_from_dict`` (in ``pipeline``) reads it back through the
same validation as a stack file, without interpolation, so a stored ``$`` stays a ``$``.
"""

from __future__ import annotations

from moorage.model.stack import ServiceSpec, StackSpec, VolumeDecl
from moorage.stackfile.formats import format_memory

__all__ = ["stack_to_dict"]


def stack_to_dict(spec: StackSpec) -> dict[str, object]:
    data: dict[str, object] = {"stack": spec.name}
    if spec.version is not None:
        data["version"] = spec.version
    if spec.description is not None:
        data["description"] = spec.description
    data["services"] = {service.name: _service_to_dict(service) for service in spec.services}
    if spec.volumes:
        data["volumes"] = {decl.alias: _volume_to_dict(decl) for decl in spec.volumes}
    return data


def _service_to_dict(service: ServiceSpec) -> dict[str, object]:
    data: dict[str, object] = {"image": service.image}
    if service.command is not None:
        data["command"] = service.command
    if service.environment:
        data["environment"] = dict(service.environment)
    data["instances"] = service.instances
    if service.mounts:
        data["volumes"] = [mount.spec() for mount in service.mounts]
    if service.ports:
        data["ports"] = [port.spec() for port in service.ports]
    if service.affinity:
        data["affinity"] = [rule.spec() for rule in service.affinity]
    data["deploy"] = {"strategy": service.strategy.value}
    if service.depends_on:
        data["depends_on"] = list(service.depends_on)
    if service.memory is not None:
        data["mem_limit"] = format_memory(service.memory)
    if service.cpus is not None:
        data["cpus"] = service.cpus
    return data


def _volume_to_dict(decl: VolumeDecl) -> dict[str, object]:
    owned = decl.owned
    if owned is not None:
        data: dict[str, object] = {"scope": owned.scope, "driver": owned.driver}
        if owned.driver_opts:
            data["driver_opts"] = dict(owned.driver_opts)
        if owned.labels:
            data["labels"] = dict(owned.labels)
        if owned.topology is not None:
            data["topology"] = owned.topology
        if owned.on_node_lost is not None:
            data["on_node_lost"] = owned.on_node_lost
        if owned.backup_schedule is not None:
            backup = {"schedule": owned.backup_schedule}
            if owned.backup_keep is not None:
                backup["keep"] = owned.backup_keep
            data["backup"] = backup
        return data
    stated = {
        key: value
        for key, value in (("scope", decl.expected_scope), ("driver", decl.expected_driver))
        if value is not None
    }
    if decl.external_name == decl.alias and not stated:
        return {"external": True}
    return {"external": {"name": decl.external_name, **stated}}

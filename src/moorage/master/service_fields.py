"""The fields of ``POST /v1/services/{grid}`` as a stand-alone service: a one-service stack in the
null stack, checked by the same pipeline as stack files.

The API names some fields differently from the stack file (``cmd``, ``env``, ``strategy``,
``memory``); this module maps them to the stack file's keys, and the paths of the pipeline's
problems back to the API's, so a client reads every error under the field it sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from moorage.errors import InvalidInput
from moorage.model.mount import MountSpecError, parse_mount
from moorage.model.stack import NULL_STACK, MountKind, StackSpec
from moorage.stackfile import StackFileError, stack_from_dict
from moorage.store.grids import get_grid_row
from moorage.store.services import ServiceView, add_service, service_exists, service_view
from moorage.store.volumes import missing_volumes

__all__ = ["create_service", "service_stack_document"]

# API field -> the stack file's key for it, where they differ
_STACK_KEYS = {
    "cmd": "command",
    "env": "environment",
    "volumes": "volumes",
    "ports": "ports",
    "affinity": "affinity",
}
# the stack file's path -> the API field, for the problems the pipeline reports
_API_FIELDS = {"command": "cmd", "environment": "env", "deploy.strategy": "strategy", "mem_limit": "memory"}


def service_stack_document(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The one-service null-stack document the API's fields describe (not validated yet); each
    named mount's volume is declared external, as ``service create`` only uses existing volumes."""
    service: dict[str, Any] = {"image": fields["image"], "instances": fields.get("instances", 1)}
    for key, target in _STACK_KEYS.items():
        if fields.get(key):
            service[target] = fields[key]
    if fields.get("strategy"):
        service["deploy"] = {"strategy": fields["strategy"]}
    if fields.get("memory") is not None:
        service["mem_limit"] = fields["memory"]
    if fields.get("cpus") is not None:
        service["cpus"] = fields["cpus"]
    document: dict[str, Any] = {"stack": NULL_STACK, "services": {str(fields["name"]): service}}
    aliases = _named_mounts(fields)
    if aliases:
        document["volumes"] = {alias: {"external": True} for alias in aliases}
    return document


def _named_mounts(fields: Mapping[str, Any]) -> dict[str, int]:
    """Each named mount's volume -> the index of its first mount in ``volumes``."""
    aliases: dict[str, int] = {}
    for index, spec in enumerate(fields.get("volumes") or []):
        try:
            mount = parse_mount(spec)
        except MountSpecError:
            continue  # the pipeline reports it with its path
        if mount.kind is MountKind.NAMED and mount.source:
            aliases.setdefault(mount.source, index)
    return aliases


def _api_field(path: str, name: str) -> str:
    """The API field a problem at the stack file's ``path`` is about."""
    prefix = f"services.{name}"
    if path == prefix or not path.startswith(prefix):
        return "name" if path.startswith("services") else path or "body"
    rest = path[len(prefix) + 1 :]
    for key, field in _API_FIELDS.items():
        if rest.startswith(key):
            return field + rest[len(key) :]
    return rest


def create_service(session: Session, grid: str, fields: Mapping[str, Any]) -> tuple[int, ServiceView]:
    """A stand-alone service in the null stack from the API's fields: its row id and its view.
    Every problem found (the pipeline's, external volumes that do not exist, a name in use) is
    raised at once, in one ``InvalidInput``."""
    grid_row = get_grid_row(session, grid)
    name = str(fields["name"])
    document = service_stack_document(fields)
    errors: dict[str, str] = {}
    stack: StackSpec | None = None
    try:
        stack = stack_from_dict(document)
    except StackFileError as err:
        errors.update({_api_field(issue.path, name): issue.message for issue in err.issues})
    aliases = _named_mounts(fields)
    for missing in missing_volumes(session, grid_row, list(aliases)):
        errors.setdefault(
            f"volumes[{aliases[missing]}]",
            f"External volume {missing} not found; create it first with "
            f"'moorage volume create --scope SCOPE --driver DRIVER {missing}'",
        )
    if service_exists(session, grid_row, NULL_STACK, name):
        errors.setdefault(
            "name", f"Service {name} already exists; use 'moorage service scale' or remove it first"
        )
    if errors or stack is None:
        raise InvalidInput(errors)
    row = add_service(session, grid_row, stack)
    return row.id, service_view(session, grid_row, row)

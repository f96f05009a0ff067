"""Volumes, their scopes, and the Docker volume names the scopes produce (Kontena's rules).

| scope    | Docker volumes made                 | Docker volume name                                |
|----------|-------------------------------------|---------------------------------------------------|
| instance | one per service instance            | <stack>.<service>.<volume>-<n>; null stack:        |
|          |                                     | <service>.<volume>-<n>                             |
| stack    | one per stack per node              | <stack>.<volume>; null stack: null.<volume>        |
| grid     | one per node                        | <volume>                                          |
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum

from moorage.model.stack import NULL_STACK

__all__ = [
    "DRIVER_MAX",
    "DRIVER_RE",
    "SHARED_DRIVER_SCOPE",
    "VOLUME_NAME_RE",
    "VolumeScope",
    "docker_volume_name",
    "volume_definition_errors",
    "volume_follows_instance",
    "volume_name_error",
]

VOLUME_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]+$")
DRIVER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-/]*$")
DRIVER_MAX = 255
"""The longest driver name (the stores' column of it)."""
SHARED_DRIVER_SCOPE = "global"  # a driver's capability scope when every node sees its volumes


class VolumeScope(StrEnum):
    GRID = "grid"
    STACK = "stack"
    INSTANCE = "instance"


def volume_name_error(name: str) -> str | None:
    """None when ``name`` is a valid volume name, else a sentence saying what is wrong."""
    if VOLUME_NAME_RE.fullmatch(name):
        return None
    return (
        f"Volume name '{name}' is not valid: use at least two characters, letters, digits, '_' or '-', "
        "starting with a letter or digit"
    )


def volume_definition_errors(
    name: str, scope: str, driver: str, driver_opts: Mapping[str, str], labels: Mapping[str, str]
) -> dict[str, str]:
    """What is wrong with a volume definition, by field (empty when nothing is)."""
    errors: dict[str, str] = {}
    if (problem := volume_name_error(name)) is not None:
        errors["name"] = problem
    if scope not in {s.value for s in VolumeScope}:
        errors["scope"] = f"Unknown scope '{scope}', must be one of grid, stack, instance"
    if (problem := _driver_error(driver)) is not None:
        errors["driver"] = problem
    if any(not key for key in driver_opts):
        errors["driver_opts"] = "Driver option keys must not be empty"
    if any(not key for key in labels):
        errors["labels"] = "Label keys must not be empty"
    return errors


def _driver_error(driver: str) -> str | None:
    if not driver:
        return "Driver is required: name the volume driver, e.g. local"
    if len(driver) > DRIVER_MAX:
        return f"Driver '{driver[:80]}…' is {len(driver)} characters long; use at most {DRIVER_MAX}"
    if ":" in driver:
        return f"Driver '{driver}' must not have a tag: use the driver's name without ':{driver.partition(':')[2]}'"
    if not DRIVER_RE.fullmatch(driver):
        return f"Driver '{driver}' is not a valid driver name"
    return None


def volume_follows_instance(scope: VolumeScope, driver_scope: str | None) -> bool:
    """Whether an instance's Docker volume goes with it to a node where the volume's driver has
    capability scope ``driver_scope``: only an instance-scope volume, only when its driver is
    global there (shared storage). Otherwise an existing volume instance stays on its node and
    pins its instance there."""
    return scope is VolumeScope.INSTANCE and driver_scope == SHARED_DRIVER_SCOPE


def docker_volume_name(scope: VolumeScope, volume: str, stack: str, service: str, instance: int) -> str:
    """The Docker volume name for one use of ``volume`` by instance ``instance`` of ``stack/service``."""
    if scope is VolumeScope.GRID:
        return volume
    if scope is VolumeScope.STACK:
        return f"{stack}.{volume}"
    if stack == NULL_STACK:
        return f"{service}.{volume}-{instance}"
    return f"{stack}.{service}.{volume}-{instance}"

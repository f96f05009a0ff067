"""The volume rules of ``model/volume.py``: what a valid definition is, and when a volume
instance follows its instance to another node."""

from __future__ import annotations

from typing import Any

import pytest

from moorage.model.volume import VolumeScope, volume_definition_errors, volume_follows_instance


@pytest.mark.parametrize(
    ("scope", "driver_scope", "follows"),
    [
        pytest.param(VolumeScope.INSTANCE, "global", True, id="instance-on-shared-storage-follows"),
        pytest.param(VolumeScope.INSTANCE, "local", False, id="instance-on-local-driver-pins"),
        pytest.param(VolumeScope.INSTANCE, None, False, id="instance-driver-scope-unknown-pins"),
        pytest.param(VolumeScope.STACK, "global", False, id="stack-scope-never-moves"),
        pytest.param(VolumeScope.GRID, "global", False, id="grid-scope-never-moves"),
    ],
)
def test_a_volume_instance_follows_only_on_shared_storage(
    scope: VolumeScope, driver_scope: str | None, follows: bool
) -> None:
    assert volume_follows_instance(scope, driver_scope) is follows


GOOD: dict[str, Any] = {
    "name": "data",
    "scope": "instance",
    "driver": "local",
    "driver_opts": {},
    "labels": {},
}


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        pytest.param({}, {}, id="valid"),
        pytest.param({"driver": "rexray/ebs"}, {}, id="driver-with-a-slash"),
        pytest.param(
            {"name": "x"},
            {
                "name": "Volume name 'x' is not valid: use at least two characters, letters, digits, "
                "'_' or '-', starting with a letter or digit"
            },
            id="name-too-short",
        ),
        pytest.param(
            {"scope": "node"},
            {"scope": "Unknown scope 'node', must be one of grid, stack, instance"},
            id="scope",
        ),
        pytest.param(
            {"driver": ""},
            {"driver": "Driver is required: name the volume driver, e.g. local"},
            id="no-driver",
        ),
        pytest.param(
            {"driver": "dirvol:1.0"},
            {"driver": "Driver 'dirvol:1.0' must not have a tag: use the driver's name without ':1.0'"},
            id="driver-tag",
        ),
        pytest.param(
            {"driver": "-bad"}, {"driver": "Driver '-bad' is not a valid driver name"}, id="driver-name"
        ),
        pytest.param({"driver": "d" * 255}, {}, id="driver-of-255"),
        pytest.param(
            {"driver": "d" * 256},
            {"driver": f"Driver '{'d' * 80}…' is 256 characters long; use at most 255"},
            id="driver-too-long",
        ),
        pytest.param(
            {"driver_opts": {"": "x"}},
            {"driver_opts": "Driver option keys must not be empty"},
            id="option-key",
        ),
        pytest.param({"labels": {"": "x"}}, {"labels": "Label keys must not be empty"}, id="label-key"),
    ],
)
def test_volume_definition_errors(change: dict[str, Any], errors: dict[str, str]) -> None:
    assert volume_definition_errors(**{**GOOD, **change}) == errors

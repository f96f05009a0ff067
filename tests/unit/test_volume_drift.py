"""Drift (issue 15): the agent reports every Docker volume of Moorage's with the driver and options
the engine has for it (an in-memory engine here), and a volume instance whose driver or options
differ from its volume's definition says how, with both values."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moorage.agent.converge import Converger
from moorage.model import docker_labels
from moorage.model.volume import volume_drift
from moorage.protocol import Desired, DockerVolumeWire, VolumeSpec
from tests.support.fake_engine import FakeEngine

GRID = "g"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(images=())


@pytest.fixture
def converger(engine: FakeEngine) -> Iterator[Converger]:
    converger = Converger(engine, GRID, parallel=2)
    yield converger
    converger.close()


def _labels(vi: str) -> dict[str, str]:
    return {docker_labels.GRID: GRID, docker_labels.VOLUME: f"{GRID}/data", docker_labels.VOLUME_INSTANCE: vi}


def test_the_agent_reports_moorages_docker_volumes_as_the_engine_has_them(
    engine: FakeEngine, converger: Converger
) -> None:
    engine.add_volume("s.db.data-1", labels=_labels("vi-1"), options={"type": "tmpfs", "device": "tmpfs"})
    engine.add_volume("s.db.data-2", labels=_labels("vi-2"))  # unused: not desired, still ours
    engine.add_volume("adopted", driver="local")  # made by hand before Moorage adopted it
    engine.add_volume("somebody-elses", options={"o": "bind"})  # not ours: never reported
    desired = Desired(
        volumes=[
            VolumeSpec(name="adopted", volume_instance_id="vi-3", driver="local", labels=_labels("vi-3"))
        ]
    )
    status = converger.converge(desired)
    assert status.docker_volumes == [
        DockerVolumeWire(name="adopted", driver="local"),
        DockerVolumeWire(
            name="s.db.data-1",
            driver="local",
            options={"type": "tmpfs", "device": "tmpfs"},
            labels=_labels("vi-1"),
        ),
        DockerVolumeWire(name="s.db.data-2", driver="local", labels=_labels("vi-2")),
    ]
    # a volume just removed is no longer reported
    removal = VolumeSpec(name="s.db.data-2", volume_instance_id="vi-2", driver="local")
    status = converger.converge(Desired(remove_volumes=[removal]))
    assert [v.name for v in status.docker_volumes or []] == ["s.db.data-1"]


@pytest.mark.parametrize(
    ("reported", "drift"),
    [
        pytest.param((None, None), None, id="not-reported"),
        pytest.param(("local", {"type": "tmpfs"}), {}, id="as-defined"),
        pytest.param(
            ("local", {"type": "nfs"}),
            {"driver_opts": {"definition": {"type": "tmpfs"}, "engine": {"type": "nfs"}}},
            id="options-changed-by-hand",
        ),
        pytest.param(
            ("local", None),
            {"driver_opts": {"definition": {"type": "tmpfs"}, "engine": {}}},
            id="options-gone",
        ),
        pytest.param(
            ("dirvol", {"type": "tmpfs"}),
            {"driver": {"definition": "local", "engine": "dirvol"}},
            id="driver",
        ),
    ],
)
def test_drift_names_each_field_that_differs_with_both_values(
    reported: tuple[str | None, dict[str, str] | None], drift: object
) -> None:
    assert volume_drift("local", {"type": "tmpfs"}, *reported) == drift

"""The agent's convergence rules, against an in-memory engine: volumes are created, adopted or
refused; containers are recreated when their config hash changes and started when stopped;
containers and volumes without Moorage's labels are never touched; a volume is removed only when
it is ours, and only once no container uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from moorage.agent.converge import Converger
from moorage.model import docker_labels
from moorage.protocol import ContainerSpec, Desired, MountWire, StatusMsg, VolumeSpec
from tests.support.fake_engine import FakeEngine

GRID = "g"
IMAGE = "busybox:local"


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine(images=(IMAGE,))


@pytest.fixture
def converger(engine: FakeEngine) -> Iterator[Converger]:
    converger = Converger(engine, GRID, parallel=2)
    yield converger
    converger.close()


def _volume(name: str, vi: str | None = None, driver: str = "local", create: bool = True) -> VolumeSpec:
    vi = vi or f"vi-{name}"
    labels = {
        docker_labels.GRID: GRID,
        docker_labels.VOLUME: f"{GRID}/data",
        docker_labels.VOLUME_INSTANCE: vi,
    }
    return VolumeSpec(name=name, volume_instance_id=vi, driver=driver, labels=labels, create=create)


def _labels(name: str, number: int, config_hash: str, grid: str = GRID) -> dict[str, str]:
    return {
        docker_labels.GRID: grid,
        docker_labels.STACK: "s",
        docker_labels.SERVICE: name,
        docker_labels.SERVICE_ID: f"{grid}/s/{name}",
        docker_labels.INSTANCE: str(number),
        docker_labels.CONFIG_HASH: config_hash,
    }


def _container(
    name: str = "web", number: int = 1, config_hash: str = "h1", volume: str | None = None
) -> ContainerSpec:
    mounts = [MountWire(kind="volume", target="/data", source=volume)] if volume else []
    return ContainerSpec(
        name=f"s.{name}-{number}",
        service_id=f"{GRID}/s/{name}",
        instance=number,
        image=IMAGE,
        command=["sleep", "3600"],
        mounts=mounts,
        labels=_labels(name, number, config_hash),
        config_hash=config_hash,
    )


def _states(status: StatusMsg) -> dict[str, tuple[str, str | None]]:
    return {f"{i.service_id}-{i.instance}": (i.state, i.config_hash) for i in status.instances}


def _volume_states(status: StatusMsg) -> dict[str, tuple[str, str | None]]:
    return {v.name: (v.state, v.error) for v in status.volumes}


# -- volumes -----------------------------------------------------------------------------------


def test_a_wanted_volume_is_created_with_its_labels_before_the_container_that_mounts_it(
    engine: FakeEngine, converger: Converger
) -> None:
    volume = _volume("s.web.data-1")
    status = converger.converge(Desired(containers=[_container(volume=volume.name)], volumes=[volume]))
    assert _volume_states(status) == {volume.name: ("present", None)}
    assert engine.volume_rows[volume.name].labels == volume.labels
    assert engine.calls.index(("create_volume", volume.name)) < engine.calls.index(("create", "s.web-1"))
    assert _states(status) == {"g/s/web-1": ("running", "h1")}


def test_a_same_named_volume_of_the_same_driver_is_adopted_as_it_is(
    engine: FakeEngine, converger: Converger
) -> None:
    engine.add_volume("s.web.data-1", "local", labels={"made-by": "hand"})
    status = converger.converge(Desired(volumes=[_volume("s.web.data-1")]))
    assert _volume_states(status) == {"s.web.data-1": ("present", None)}
    assert ("create_volume", "s.web.data-1") not in engine.calls
    assert engine.volume_rows["s.web.data-1"].labels == {"made-by": "hand"}


def test_a_same_named_volume_of_another_driver_is_refused_and_its_container_not_created(
    engine: FakeEngine, converger: Converger
) -> None:
    engine.add_volume("s.web.data-1", "local")
    volume = _volume("s.web.data-1", driver="dirvol")
    status = converger.converge(Desired(containers=[_container(volume=volume.name)], volumes=[volume]))
    state, error = _volume_states(status)["s.web.data-1"]
    assert state == "error" and error == (
        "Volume driver not as expected. Expected dirvol, existing volume has local"
    )
    assert _states(status) == {"g/s/web-1": ("error", "h1")}
    assert engine.named("s.web-1") is None
    assert engine.volume_rows["s.web.data-1"].driver == "local", "the user's volume stays as it was"


def test_a_volume_that_must_not_be_created_is_reported_missing(
    engine: FakeEngine, converger: Converger
) -> None:
    volume = _volume("s.web.data-1", create=False)
    status = converger.converge(Desired(containers=[_container(volume=volume.name)], volumes=[volume]))
    assert _volume_states(status)["s.web.data-1"][0] == "missing"
    assert "s.web.data-1" not in engine.volume_rows, "not even through Docker's create-on-mount"
    assert engine.named("s.web-1") is None


# -- containers --------------------------------------------------------------------------------


def test_a_container_whose_config_hash_changed_is_recreated(engine: FakeEngine, converger: Converger) -> None:
    old = engine.add_container("s.web-1", _labels("web", 1, "h1"))
    status = converger.converge(Desired(containers=[_container(config_hash="h2")]))
    new = engine.named("s.web-1")
    assert new is not None and new.id != old.id and new.labels[docker_labels.CONFIG_HASH] == "h2"
    assert _states(status) == {"g/s/web-1": ("running", "h2")}


def test_a_running_container_with_its_config_is_left_as_it_is(
    engine: FakeEngine, converger: Converger
) -> None:
    desired = Desired(containers=[_container()])
    converger.converge(desired)
    before = list(engine.calls)
    status = converger.converge(desired)
    assert engine.calls == before, "a second pass over the same desired state changes nothing"
    assert _states(status) == {"g/s/web-1": ("running", "h1")}


def test_a_stopped_container_is_started_not_recreated(engine: FakeEngine, converger: Converger) -> None:
    converger.converge(Desired(containers=[_container()]))
    first = engine.named("s.web-1")
    assert first is not None
    engine.exit("s.web-1", 1)
    status = converger.converge(Desired(containers=[_container()]))
    again = engine.named("s.web-1")
    assert again is not None and again.id == first.id and again.status == "running" and again.starts == 2
    assert _states(status) == {"g/s/web-1": ("running", "h1")}


def test_a_container_no_longer_desired_is_removed(engine: FakeEngine, converger: Converger) -> None:
    converger.converge(Desired(containers=[_container(number=1), _container(number=2)]))
    converger.converge(Desired(containers=[_container(number=1)]))
    assert engine.named("s.web-1") is not None and engine.named("s.web-2") is None


def test_containers_without_our_labels_or_of_another_grid_are_never_touched(
    engine: FakeEngine, converger: Converger
) -> None:
    mine = engine.add_container("postgres", labels={"com.example": "x"}, status="exited")
    other_grid = engine.add_container("s.web-9", _labels("web", 9, "h1", grid="other"), status="exited")
    squatter = engine.add_container("s.web-1", labels={})  # a user's container has the wanted name
    status = converger.converge(Desired(containers=[_container()]))
    for container in (mine, other_grid, squatter):
        assert engine.by_id[container.id] == container, "left exactly as it was"
    assert {name for call, name in engine.calls if call in ("remove", "start")} == set()
    state, _ = _states(status)["g/s/web-1"]
    assert state == "error", "the name is taken: an error to report, not a container to remove"


# -- volume removal ----------------------------------------------------------------------------


def test_only_a_volume_carrying_this_volume_instances_label_is_removed(
    engine: FakeEngine, converger: Converger
) -> None:
    ours = _volume("s.web.data-1")
    converger.converge(Desired(volumes=[ours]))
    engine.add_volume("s.web.data-2", "local", labels={})  # same name scheme, made by someone else
    engine.add_volume("s.web.data-3", "local", labels={docker_labels.VOLUME_INSTANCE: "another-instance"})
    status = converger.converge(
        Desired(remove_volumes=[ours, _volume("s.web.data-2"), _volume("s.web.data-3")])
    )
    assert _volume_states(status) == {
        "s.web.data-1": ("removed", None),
        "s.web.data-2": ("removed", "left in place: not created by Moorage"),
        "s.web.data-3": ("removed", "left in place: not created by Moorage"),
    }
    assert set(engine.volume_rows) == {"s.web.data-2", "s.web.data-3"}


def test_a_volume_is_removed_only_once_no_container_uses_it(engine: FakeEngine, converger: Converger) -> None:
    volume = _volume("s.web.data-1")
    converger.converge(Desired(containers=[_container(volume=volume.name)], volumes=[volume]))
    user = engine.add_container("backup", labels={}, volumes=(volume.name,))  # not ours, uses it

    # our container goes in the same pass (before the removal); the other one still uses the volume
    status = converger.converge(Desired(remove_volumes=[volume]))
    state, error = _volume_states(status)[volume.name]
    assert state == "error" and error is not None and "in use" in error
    assert volume.name in engine.volume_rows and engine.named("s.web-1") is None
    assert engine.by_id[user.id] == user

    engine.remove(user.id)  # the user removes their container; the next pass removes the volume
    status = converger.converge(Desired(remove_volumes=[volume]))
    assert _volume_states(status) == {volume.name: ("removed", None)}
    assert volume.name not in engine.volume_rows


def test_a_volume_already_gone_is_reported_removed(engine: FakeEngine, converger: Converger) -> None:
    status = converger.converge(Desired(remove_volumes=[_volume("s.web.data-1")]))
    assert _volume_states(status) == {"s.web.data-1": ("removed", None)}
    assert engine.calls == []


def test_docker_never_restarts_our_containers_the_agent_does(engine: FakeEngine) -> None:
    """A container an older agent made (Docker's own restart policy) is switched to ``no`` once,
    the first time an agent process sees it; one this agent made is never asked again; after a
    power cut, what starts is what the desired state says (a container not desired is removed)."""
    old = Converger(engine, GRID)
    old.converge(Desired(containers=[_container(number=1), _container(number=2)]))
    assert ("no_restart", "s.web-1") not in engine.calls, "made with restart policy no already"
    fresh = Converger(engine, GRID)  # the agent started again (a new process)
    try:
        fresh.converge(Desired(containers=[_container(number=1)]))
        assert ("no_restart", "s.web-1") in engine.calls and engine.named("s.web-2") is None
        asked = engine.calls.count(("no_restart", "s.web-1"))
        fresh.converge(Desired(containers=[_container(number=1)]))
        assert engine.calls.count(("no_restart", "s.web-1")) == asked, "once per container and process"
    finally:
        old.close()
        fresh.close()

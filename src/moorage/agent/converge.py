"""Converge one engine to its desired state, and say what it has.

Level-triggered and idempotent: compare what the master wants (``Desired``) with what the engine has
(by labels), act on the difference, report. Run after every new ``Desired`` and on a timer.

    volumes:    create what is wanted (or adopt a same-named volume of the same driver);
                a same-named volume of another driver is an error
    containers: remove Moorage containers of this grid no longer wanted; recreate those whose
                config hash changed; create and start missing ones (after their volumes);
                start stopped ones; never touch a container without Moorage's labels. Docker
                never restarts them by itself (restart policy ``no``): the agent does, so a
                node back from a power cut runs only what its master wants now
    removals:   remove the volumes the master says were removed (after the containers that
                mounted them are gone), but only those carrying this volume instance's label
    report:     the containers and volumes wanted, and every Docker volume of Moorage's on the
                engine with its driver, options and labels (the master shows drift from them)

What the engine has is read with one list call for volumes and one for containers. A container's
full state (for the report) is inspected after the agent acted on it, and otherwise only when
its listing changed since it was last inspected. Independent engine calls run in parallel.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Container
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from moorage.agent.engine import ContainerEngine, ContainerState, ContainerSummary, EngineError, VolumeState
from moorage.model.docker_labels import CONFIG_HASH as HASH_LABEL
from moorage.model.docker_labels import GRID as GRID_LABEL
from moorage.model.docker_labels import VOLUME_INSTANCE as VOLUME_INSTANCE_LABEL
from moorage.protocol import (
    ContainerSpec,
    Desired,
    DockerVolumeWire,
    InstanceStatus,
    StatusMsg,
    VolumeSpec,
    VolumeStatus,
)

__all__ = ["PARALLEL", "Converger"]

log = logging.getLogger("moorage.agent.converge")

PARALLEL = 8

_STATES = {"running": "running", "restarting": "restarting", "created": "created", "paused": "running"}


def _status(spec: ContainerSpec, state: ContainerState) -> InstanceStatus:
    mapped = _STATES.get(state.status, "exited")
    return InstanceStatus(
        service_id=spec.service_id,
        instance=spec.instance,
        state=mapped,
        config_hash=state.labels.get(HASH_LABEL),
        exit_code=state.exit_code if mapped == "exited" else None,
        error=state.error,
        started_at=state.started_at,
    )


def _error(spec: ContainerSpec, message: str) -> InstanceStatus:
    return InstanceStatus(
        service_id=spec.service_id,
        instance=spec.instance,
        state="error",
        config_hash=spec.config_hash,
        error=message,
    )


class _Images:
    """Each image is checked (and pulled if missing) once per convergence, whatever the thread."""

    def __init__(self, engine: ContainerEngine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.checked: dict[str, Future[None]] = {}

    def ensure(self, image: str) -> None:
        with self.lock:
            future = self.checked.get(image)
            owner = future is None
            if future is None:
                future = self.checked[image] = Future()
        if owner:
            try:
                self.engine.ensure_image(image)
            except EngineError as err:
                future.set_exception(err)
            else:
                future.set_result(None)
        future.result()  # raises the EngineError of the check, for every container of the image


def _docker_volumes(
    volumes: dict[str, VolumeState], desired: Desired, removals: list[VolumeStatus]
) -> list[DockerVolumeWire]:
    """Moorage's Docker volumes on the engine as it listed them (for drift, ``protocol``): those
    labelled as a volume instance, and those the desired state names; not those just removed."""
    named = {spec.name for spec in desired.volumes}
    gone = {status.name for status in removals if status.state == "removed" and status.error is None}
    return [
        DockerVolumeWire(name=found.name, driver=found.driver, options=found.options, labels=found.labels)
        for name, found in sorted(volumes.items())
        if (VOLUME_INSTANCE_LABEL in found.labels or name in named) and name not in gone
    ]


class Converger:
    def __init__(
        self,
        containers: ContainerEngine,
        grid: str,
        parallel: int = PARALLEL,
        held: Container[str] = frozenset(),
    ) -> None:
        self.engine = containers
        self.grid = grid
        self.held = held  # names a backup job stopped for a while: left as they are (agent/backups.py)
        self.pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="converge")
        # container id -> (its listing's state and status when inspected, what the inspect said)
        self._inspected: dict[str, tuple[tuple[str, str], ContainerState]] = {}
        # the containers whose restart policy is ``no`` (made so, or by an agent of before 0015)
        self._no_restart: set[str] = set()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def converge(self, desired: Desired) -> StatusMsg:
        volumes = self.engine.volumes()
        volume_statuses = list(self.pool.map(lambda v: self._volume(v, volumes.get(v.name)), desired.volumes))
        broken = {s.name: s for s in volume_statuses if s.state in ("error", "missing")}
        existing = {c.name: c for c in self.engine.containers(f"{GRID_LABEL}={self.grid}")}
        ids = {c.id for c in existing.values()}
        self._inspected = {k: v for k, v in self._inspected.items() if k in ids}
        wanted = {spec.name for spec in desired.containers}
        unwanted = [c for name, c in existing.items() if name not in wanted]
        list(self.pool.map(self._remove_unwanted, unwanted))
        self._no_restart &= ids
        older = [c for name, c in existing.items() if name in wanted and c.id not in self._no_restart]
        list(self.pool.map(self._disown_restart, older))
        images = _Images(self.engine)
        instances = list(
            self.pool.map(
                lambda spec: self._container(spec, existing.get(spec.name), broken, images),
                desired.containers,
            )
        )
        removals = list(
            self.pool.map(lambda v: self._remove_volume(v, volumes.get(v.name)), desired.remove_volumes)
        )
        return StatusMsg(
            instances=instances,
            volumes=volume_statuses + removals,
            docker_volumes=_docker_volumes(volumes, desired, removals),
        )

    # -- volumes ------------------------------------------------------------------------------

    def _volume(self, spec: VolumeSpec, found: VolumeState | None) -> VolumeStatus:
        def status(state: str, error: str | None = None) -> VolumeStatus:
            return VolumeStatus(
                volume_instance_id=spec.volume_instance_id, name=spec.name, state=state, error=error
            )

        if found is not None:
            if found.driver != spec.driver:
                return status(
                    "error",
                    f"Volume driver not as expected. Expected {spec.driver}, existing volume has {found.driver}",
                )
            return status("present")
        if not spec.create:
            return status(
                "missing",
                f"Docker volume {spec.name} is missing on this node; deploy again to recreate it",
            )
        try:
            self.engine.create_volume(spec.name, spec.driver, spec.driver_opts, spec.labels)
        except EngineError as err:
            return status("error", err.message)
        log.info("created volume %s (driver %s)", spec.name, spec.driver)
        return status("present")

    def _remove_volume(self, spec: VolumeSpec, found: VolumeState | None) -> VolumeStatus:
        def status(state: str, error: str | None = None) -> VolumeStatus:
            return VolumeStatus(
                volume_instance_id=spec.volume_instance_id, name=spec.name, state=state, error=error
            )

        if found is None:
            return status("removed")
        if found.labels.get(VOLUME_INSTANCE_LABEL) != spec.volume_instance_id:
            log.info("leaving volume %s alone: Moorage did not create it", spec.name)
            return status("removed", "left in place: not created by Moorage")
        try:
            self.engine.remove_volume(spec.name)
        except EngineError as err:
            log.info("volume %s not removed yet: %s", spec.name, err.message)
            return status("error", err.message)
        log.info("removed volume %s", spec.name)
        return status("removed")

    # -- containers ---------------------------------------------------------------------------

    def _disown_restart(self, container: ContainerSummary) -> None:
        """Containers an older agent made restart by Docker's own policy: from now on only the
        agent starts them (once per container and agent process)."""
        try:
            self.engine.no_restart(container.id)
            self._no_restart.add(container.id)
        except EngineError as err:
            log.warning("could not turn off Docker's restarts of %s: %s", container.name, err.message)

    def _remove_unwanted(self, container: ContainerSummary) -> None:
        log.info("removing container %s: no longer desired", container.name)
        try:
            self.engine.remove(container.id)
        except EngineError as err:
            log.warning("could not remove %s: %s", container.name, err.message)

    def _state(self, current: ContainerSummary) -> ContainerState | None:
        """The full state of a container the agent left alone: inspected again only if its listing changed."""
        key = (current.state, current.status)
        cached = self._inspected.get(current.id)
        if cached is not None and cached[0] == key:
            return cached[1]
        state = self.engine.inspect(current.id)
        if state is not None:
            self._inspected[current.id] = (key, state)
        return state

    def _container(
        self,
        spec: ContainerSpec,
        current: ContainerSummary | None,
        broken: dict[str, VolumeStatus],
        images: _Images,
    ) -> InstanceStatus:
        try:
            for mount in spec.mounts:
                if mount.kind == "volume" and mount.source in broken:
                    problem = broken[mount.source]
                    if current is not None and current.labels.get(HASH_LABEL) != spec.config_hash:
                        self.engine.remove(current.id)
                    return _error(spec, problem.error or f"volume {mount.source} is not usable")
            if current is not None and current.labels.get(HASH_LABEL) != spec.config_hash:
                log.info("recreating %s: config changed", spec.name)
                self.engine.remove(current.id)
                current = None
            if current is None:
                images.ensure(spec.image)
                container_id = self.engine.create(
                    spec.name,
                    spec.image,
                    spec.command,
                    spec.env,
                    spec.labels,
                    [(p.host, p.container, p.protocol) for p in spec.ports],
                    [self._mount(m) for m in spec.mounts],
                    spec.memory,
                    spec.cpus,
                )
                self._no_restart.add(container_id)
                self.engine.start(container_id)
                log.info("started %s", spec.name)
                state = self.engine.inspect(container_id)
            elif current.state in ("created", "exited", "dead") and spec.name not in self.held:
                self.engine.start(current.id)
                log.info("started stopped container %s", spec.name)
                state = self.engine.inspect(current.id)
            else:
                state = self._state(current)
            if state is None:
                return _error(spec, "container disappeared right after it was started")
            return _status(spec, state)
        except EngineError as err:
            log.warning("%s: %s", spec.name, err.message)
            return _error(spec, err.message)

    @staticmethod
    def _mount(mount: Any) -> dict[str, Any]:
        if mount.kind == "anonymous":
            return {"target": mount.target, "source": None, "type": "volume"}
        return {
            "target": mount.target,
            "source": mount.source,
            "type": mount.kind,
            "read_only": mount.read_only,
        }

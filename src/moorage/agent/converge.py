"""Converge one engine to its desired state, and say what it has.

Level-triggered and idempotent: compare what the master wants (``Desired``) with what the engine has
(by labels), act on the difference, report. Run after every new ``Desired`` and on a timer.

    volumes:    create what is wanted (or adopt a same-named volume of the same driver);
                a same-named volume of another driver is an error; remove what the master says
                was removed, but only if it carries this volume instance's label
    containers: remove Moorage containers of this grid no longer wanted; recreate those whose
                config hash changed; create and start missing ones (after their volumes);
                start stopped ones; never touch a container without Moorage's labels
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moorage.agent.engine import Containers, ContainerState, EngineError
from moorage.protocol import ContainerSpec, Desired, InstanceStatus, StatusMsg, VolumeSpec, VolumeStatus

__all__ = ["GRID_LABEL", "HASH_LABEL", "VOLUME_INSTANCE_LABEL", "Converger"]

log = logging.getLogger("moorage.agent.converge")

GRID_LABEL = "io.moorage.grid"
HASH_LABEL = "io.moorage.config-hash"
VOLUME_INSTANCE_LABEL = "io.moorage.volume-instance-id"
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


class Converger:
    def __init__(self, containers: Containers, grid: str) -> None:
        self.engine = containers
        self.grid = grid
        self.pool = ThreadPoolExecutor(max_workers=PARALLEL, thread_name_prefix="converge")

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def converge(self, desired: Desired) -> StatusMsg:
        volume_statuses = [self._volume(v) for v in desired.volumes]
        volume_statuses += [self._remove_volume(v) for v in desired.remove_volumes]
        broken = {s.name: s for s in volume_statuses if s.state in ("error", "missing")}
        existing = {c.name: c for c in self.engine.containers(f"{GRID_LABEL}={self.grid}")}
        wanted = {spec.name for spec in desired.containers}
        for name, container in existing.items():
            if name not in wanted:
                log.info("removing container %s: no longer desired", name)
                try:
                    self.engine.remove(container.id)
                except EngineError as err:
                    log.warning("could not remove %s: %s", name, err.message)
        instances = list(
            self.pool.map(
                lambda spec: self._container(spec, existing.get(spec.name), broken), desired.containers
            )
        )
        return StatusMsg(instances=instances, volumes=volume_statuses)

    # -- volumes ------------------------------------------------------------------------------

    def _volume(self, spec: VolumeSpec) -> VolumeStatus:
        def status(state: str, error: str | None = None) -> VolumeStatus:
            return VolumeStatus(
                volume_instance_id=spec.volume_instance_id, name=spec.name, state=state, error=error
            )

        try:
            found = self.engine.volume(spec.name)
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
            self.engine.create_volume(spec.name, spec.driver, spec.driver_opts, spec.labels)
            log.info("created volume %s (driver %s)", spec.name, spec.driver)
            return status("present")
        except EngineError as err:
            return status("error", err.message)

    def _remove_volume(self, spec: VolumeSpec) -> VolumeStatus:
        def status(state: str, error: str | None = None) -> VolumeStatus:
            return VolumeStatus(
                volume_instance_id=spec.volume_instance_id, name=spec.name, state=state, error=error
            )

        try:
            found = self.engine.volume(spec.name)
            if found is None:
                return status("removed")
            if found.labels.get(VOLUME_INSTANCE_LABEL) != spec.volume_instance_id:
                log.info("leaving volume %s alone: Moorage did not create it", spec.name)
                return status("removed", "left in place: not created by Moorage")
            self.engine.remove_volume(spec.name)
            log.info("removed volume %s", spec.name)
            return status("removed")
        except EngineError as err:
            log.info("volume %s not removed yet: %s", spec.name, err.message)
            return status("error", err.message)

    # -- containers ---------------------------------------------------------------------------

    def _container(
        self, spec: ContainerSpec, current: ContainerState | None, broken: dict[str, VolumeStatus]
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
                self.engine.ensure_image(spec.image)
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
                self.engine.start(container_id)
                log.info("started %s", spec.name)
            elif current.status in ("created", "exited", "dead"):
                self.engine.start(current.id)
                log.info("started stopped container %s", spec.name)
            state = self.engine.inspect(spec.name)
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

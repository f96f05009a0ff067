"""An in-memory Docker Engine for unit tests of the agent's convergence (``ContainerEngine``).

It keeps the engine's rules that convergence relies on: a container name is taken until the
container is removed; creating a container that mounts a volume the engine lacks makes a
``local`` one (as Docker does); creating a volume that exists is fine with the same driver and
refused with another; a volume in use by any container cannot be removed. ``calls`` logs every
call that changes something, so a test can say what was left alone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from moorage.agent.engine import ContainerState, ContainerSummary, EngineError, VolumeState

__all__ = ["FakeContainer", "FakeEngine"]


@dataclass
class FakeContainer:
    id: str
    name: str
    image: str
    labels: dict[str, str]
    mounts: list[dict[str, Any]] = field(default_factory=list)
    command: list[str] | None = None
    env: list[str] = field(default_factory=list)
    status: str = "created"  # created | running | exited
    exit_code: int = 0
    started_at: str | None = None
    starts: int = 0

    def volume_names(self) -> set[str]:
        return {str(m["source"]) for m in self.mounts if m.get("type") == "volume" and m.get("source")}


class FakeEngine:
    def __init__(self, images: tuple[str, ...] = ()) -> None:
        self.images: set[str] = set(images)
        self.pulled: list[str] = []
        self.by_id: dict[str, FakeContainer] = {}
        self.volume_rows: dict[str, VolumeState] = {}
        self.calls: list[tuple[str, str]] = []  # (call, container name or volume name)
        self._ids = itertools.count(1)

    # -- set-up and checks for tests ------------------------------------------------------------

    def add_container(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        status: str = "running",
        volumes: tuple[str, ...] = (),
        image: str = "busybox:local",
    ) -> FakeContainer:
        """A container that is already there (made by Moorage before, or by someone else)."""
        mounts = [{"type": "volume", "source": v, "target": f"/{v}"} for v in volumes]
        for volume in volumes:
            self.volume_rows.setdefault(volume, VolumeState(volume, "local", {}))
        container = FakeContainer(
            f"c{next(self._ids):04d}", name, image, dict(labels or {}), mounts, status=status
        )
        self.by_id[container.id] = container
        return container

    def add_volume(self, name: str, driver: str = "local", labels: dict[str, str] | None = None) -> None:
        self.volume_rows[name] = VolumeState(name, driver, dict(labels or {}))

    def named(self, name: str) -> FakeContainer | None:
        return next((c for c in self.by_id.values() if c.name == name), None)

    def exit(self, name: str, code: int) -> None:
        """The container's process ends."""
        container = self.named(name)
        assert container is not None, name
        container.status, container.exit_code = "exited", code

    # -- ContainerEngine --------------------------------------------------------------------------

    def containers(self, label: str) -> list[ContainerSummary]:
        key, sep, value = label.partition("=")
        return [
            ContainerSummary(c.id, c.name, dict(c.labels), c.status, f"{c.status} (starts {c.starts})")
            for c in self.by_id.values()
            if key in c.labels and (not sep or c.labels[key] == value)
        ]

    def inspect(self, name: str) -> ContainerState | None:
        container = self.by_id.get(name) or self.named(name)
        if container is None:
            return None
        return ContainerState(
            id=container.id,
            name=container.name,
            labels=dict(container.labels),
            status=container.status,
            exit_code=container.exit_code,
            started_at=container.started_at,
            error=None,
        )

    def ensure_image(self, image: str) -> None:
        if image not in self.images:
            self.calls.append(("pull", image))
            self.pulled.append(image)
            self.images.add(image)

    def create(
        self,
        name: str,
        image: str,
        command: list[str] | None,
        env: list[str],
        labels: dict[str, str],
        ports: list[tuple[int, int, str]],
        mounts: list[dict[str, Any]],
        memory: int | None,
        cpus: float | None,
    ) -> str:
        self.calls.append(("create", name))
        taken = self.named(name)
        if taken is not None:
            raise EngineError(
                f'Conflict. The container name "/{name}" is already in use by container "{taken.id}"'
            )
        if image not in self.images:
            raise EngineError(f"No such image: {image}")
        for mount in mounts:
            if mount.get("type") == "volume" and mount.get("source"):
                self.volume_rows.setdefault(mount["source"], VolumeState(mount["source"], "local", {}))
        container = FakeContainer(
            f"c{next(self._ids):04d}", name, image, dict(labels), list(mounts), command, env
        )
        self.by_id[container.id] = container
        return container.id

    def start(self, container_id: str) -> None:
        container = self.by_id.get(container_id)
        if container is None:
            raise EngineError(f"No such container: {container_id}")
        self.calls.append(("start", container.name))
        container.status, container.exit_code = "running", 0
        container.starts += 1
        container.started_at = f"2024-01-01T00:00:{container.starts:02d}Z"

    def remove(self, container_id: str) -> None:
        container = self.by_id.pop(container_id, None)
        if container is not None:
            self.calls.append(("remove", container.name))

    def volumes(self) -> dict[str, VolumeState]:
        return dict(self.volume_rows)

    def create_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None:
        self.calls.append(("create_volume", name))
        found = self.volume_rows.get(name)
        if found is not None:
            if found.driver != driver:
                raise EngineError(f"create {name}: volume name must be unique")
            return
        self.volume_rows[name] = VolumeState(name, driver, dict(labels))

    def remove_volume(self, name: str) -> None:
        if name not in self.volume_rows:
            return
        users = sorted(c.id for c in self.by_id.values() if name in c.volume_names())
        if users:
            raise EngineError(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self.calls.append(("remove_volume", name))
        del self.volume_rows[name]

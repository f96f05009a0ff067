"""The agent's view of its Docker Engine. The only module of Moorage that imports ``docker``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import docker
import docker.errors
import docker.types
from docker.errors import DockerException

from moorage.errors import MoorageError

__all__ = [
    "ContainerEngine",
    "ContainerState",
    "ContainerSummary",
    "Containers",
    "Engine",
    "EngineError",
    "EngineFacts",
    "ManagedPlugin",
    "VolumeState",
]

VOLUME_DRIVER_TYPE = "docker.volumedriver/1.0"


class EngineError(MoorageError):
    """The Docker Engine refused or could not be reached; the message is the engine's."""


@dataclass(frozen=True, slots=True)
class ManagedPlugin:
    name: str  # as used with `docker volume create -d NAME` (":latest" dropped)
    version: str | None  # the plugin's tag


@dataclass(frozen=True, slots=True)
class EngineFacts:
    version: str | None
    cpus: int
    memory: int
    volume_drivers: tuple[str, ...]  # docker info → Plugins → Volume
    managed_volume_plugins: tuple[ManagedPlugin, ...]


MAX_POOL_SIZE = 32  # engine connections kept open: enough for the converger's threads and the rest


class Engine:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url
        try:
            if base_url:
                self.client = docker.DockerClient(base_url=base_url, timeout=60, max_pool_size=MAX_POOL_SIZE)
            else:
                self.client = docker.from_env(timeout=60, max_pool_size=MAX_POOL_SIZE)
        except DockerException as err:
            raise EngineError(
                f"Cannot reach the Docker Engine at {base_url or 'DOCKER_HOST'}: {err}"
            ) from err

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except DockerException:
            return False

    def facts(self) -> EngineFacts:
        try:
            info: dict[str, Any] = self.client.info()
            plugins = self.client.plugins.list()
        except DockerException as err:
            raise EngineError(f"Docker Engine did not answer: {err}") from err
        managed: list[ManagedPlugin] = []
        for plugin in plugins:
            attrs: dict[str, Any] = plugin.attrs
            types = attrs.get("Config", {}).get("Interface", {}).get("Types", []) or []
            kinds = {f"{t.get('Prefix')}.{t.get('Capability')}/{t.get('Version')}" for t in types}
            if not attrs.get("Enabled") or VOLUME_DRIVER_TYPE not in kinds:
                continue
            name, _, tag = str(attrs.get("Name", "")).partition(":")
            managed.append(
                ManagedPlugin(name=name if tag in ("", "latest") else f"{name}:{tag}", version=tag or None)
            )
        volume = (info.get("Plugins") or {}).get("Volume") or []
        return EngineFacts(
            version=info.get("ServerVersion"),
            cpus=int(info.get("NCPU") or 0),
            memory=int(info.get("MemTotal") or 0),
            volume_drivers=tuple(str(v) for v in volume),
            managed_volume_plugins=tuple(managed),
        )

    def close(self) -> None:
        self.client.close()


@dataclass(frozen=True, slots=True)
class ContainerState:
    id: str
    name: str
    labels: dict[str, str]
    status: str  # created | running | restarting | exited | paused | dead | removing
    exit_code: int | None
    started_at: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class ContainerSummary:
    """What one ``GET /containers/json`` entry says: enough to decide, not all a status report needs."""

    id: str
    name: str
    labels: dict[str, str]
    state: str  # created | running | restarting | exited | paused | dead | removing
    status: str  # "Up 3 minutes", "Exited (1) 2 seconds ago": changes whenever the state details do


@dataclass(frozen=True, slots=True)
class VolumeState:
    name: str
    driver: str
    labels: dict[str, str]


def _container_state(attrs: dict[str, Any]) -> ContainerState:
    state = attrs.get("State") or {}
    config = attrs.get("Config") or {}
    return ContainerState(
        id=str(attrs.get("Id", "")),
        name=str(attrs.get("Name", "")).lstrip("/"),
        labels=dict(config.get("Labels") or {}),
        status=str(state.get("Status", "unknown")),
        exit_code=state.get("ExitCode"),
        started_at=state.get("StartedAt"),
        error=state.get("Error") or None,
    )


class ContainerEngine(Protocol):
    """What the agent's convergence needs of an engine. ``Containers`` is the Docker Engine's;
    ``tests/support/fake_engine.FakeEngine`` an in-memory one for unit tests. Every call raises
    ``EngineError`` with the engine's message when the engine refuses."""

    def containers(self, label: str) -> list[ContainerSummary]:
        """Every container, running or not, with this label (``key`` or ``key=value``)."""
        ...

    def inspect(self, name: str) -> ContainerState | None:
        """A container's full state by name or id; None if there is none."""
        ...

    def ensure_image(self, image: str) -> None:
        """Pull the image unless the engine has it."""
        ...

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
        """Create (not start) a container; returns its id. ``mounts``: docker.types.Mount's keywords."""
        ...

    def start(self, container_id: str) -> None: ...

    def remove(self, container_id: str) -> None:
        """Remove a container, running or not (never its volumes); gone already is fine."""
        ...

    def volumes(self) -> dict[str, VolumeState]:
        """Every volume the engine has, by name."""
        ...

    def create_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None: ...

    def remove_volume(self, name: str) -> None:
        """Remove a volume; gone already is fine, in use by any container is an ``EngineError``."""
        ...


class Containers:
    """The Docker Engine's ``ContainerEngine``: the calls convergence needs, with the engine's errors kept."""

    def __init__(self, engine: Engine) -> None:
        self.client = engine.client
        self.api = engine.client.api

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except docker.errors.APIError as err:
            raise EngineError(str(err.explanation or err)) from err
        except DockerException as err:
            raise EngineError(f"{what}: {err}") from err

    def containers(self, label: str) -> list[ContainerSummary]:
        """Every container (running or not) with this label, from one list call (no inspect)."""
        summaries = self._call("list containers", self.api.containers, all=True, filters={"label": label})
        out = []
        for summary in summaries:
            names = summary.get("Names") or []
            out.append(
                ContainerSummary(
                    id=str(summary.get("Id", "")),
                    name=str(names[0]).lstrip("/") if names else "",
                    labels=dict(summary.get("Labels") or {}),
                    state=str(summary.get("State", "unknown")),
                    status=str(summary.get("Status", "")),
                )
            )
        return out

    def inspect(self, name: str) -> ContainerState | None:
        try:
            return _container_state(self.api.inspect_container(name))
        except docker.errors.NotFound:
            return None
        except DockerException as err:
            raise EngineError(f"inspect container {name}: {err}") from err

    def ensure_image(self, image: str) -> None:
        try:
            self.api.inspect_image(image)
            return
        except docker.errors.ImageNotFound:
            pass
        except DockerException as err:
            raise EngineError(f"inspect image {image}: {err}") from err
        repository, _, tag = (
            image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "latest")
        )
        self._call(f"pull {image}", self.api.pull, repository, tag=tag or "latest")

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
        host_config = self.api.create_host_config(
            port_bindings={f"{c}/{proto}": h for h, c, proto in ports},
            mounts=[docker.types.Mount(**m) for m in mounts],
            restart_policy={"Name": "unless-stopped"},
            mem_limit=memory,
            nano_cpus=int(cpus * 1e9) if cpus else None,
        )
        created = self._call(
            f"create container {name}",
            self.api.create_container,
            image=image,
            command=command,
            name=name,
            environment=env,
            labels=labels,
            ports=[(c, proto) for _, c, proto in ports],
            host_config=host_config,
        )
        return str(created["Id"])

    def start(self, container_id: str) -> None:
        self._call("start container", self.api.start, container_id)

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True, v=False)
        except docker.errors.NotFound:
            return
        except DockerException as err:
            raise EngineError(f"remove container: {err}") from err

    def volumes(self) -> dict[str, VolumeState]:
        """Every volume the engine has, by name, from one list call."""
        listed = self._call("list volumes", self.api.volumes)
        return {
            str(v["Name"]): VolumeState(
                name=str(v["Name"]), driver=str(v.get("Driver", "")), labels=dict(v.get("Labels") or {})
            )
            for v in (listed or {}).get("Volumes") or []
        }

    def create_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None:
        self._call(
            f"create volume {name}",
            self.api.create_volume,
            name=name,
            driver=driver,
            driver_opts=driver_opts,
            labels=labels,
        )

    def remove_volume(self, name: str) -> None:
        try:
            self.api.remove_volume(name)
        except docker.errors.NotFound:
            return
        except docker.errors.APIError as err:
            raise EngineError(str(err.explanation or err)) from err

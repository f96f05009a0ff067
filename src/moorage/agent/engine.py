"""The agent's view of its Docker Engine. The only module of Moorage that imports ``docker``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import DockerException

from moorage.errors import MoorageError

__all__ = ["Engine", "EngineError", "EngineFacts", "ManagedPlugin"]

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


class Engine:
    def __init__(self, base_url: str | None = None) -> None:
        self.base_url = base_url
        try:
            if base_url:
                self.client = docker.DockerClient(base_url=base_url, timeout=60)
            else:
                self.client = docker.from_env(timeout=60)
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

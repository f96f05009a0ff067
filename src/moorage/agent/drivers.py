"""Which volume drivers a node has, with version and capability scope where known.

Three sources, merged by name:
- ``docker info`` → Plugins → Volume (built-in ``local`` and legacy plugins already activated),
- enabled managed plugins of type ``docker.volumedriver/1.0`` (version = their tag),
- legacy plugin sockets in the engine's plugin folder (``/run/docker/plugins/NAME.sock``): each is
  asked ``/Plugin.Activate`` and ``/VolumeDriver.Capabilities``, so a plugin added later shows up
  before anything used it, and its scope (``local``/``global``) is known.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from moorage.agent.engine import EngineFacts
from moorage.protocol import DriverWire

__all__ = ["probe_socket", "volume_drivers"]

PLUGIN_CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
PROBE_TIMEOUT = 1.0


def probe_socket(socket: Path) -> tuple[bool, str | None]:
    """(is a volume driver, its scope) for a legacy plugin socket; (False, None) if it does not answer."""
    try:
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, base_url="http://plugin", timeout=PROBE_TIMEOUT) as client:
            headers = {"Accept": PLUGIN_CONTENT_TYPE}
            implements = client.post("/Plugin.Activate", headers=headers).json().get("Implements") or []
            if "VolumeDriver" not in implements:
                return False, None
            caps = client.post("/VolumeDriver.Capabilities", headers=headers, json={}).json()
    except (httpx.HTTPError, ValueError, AttributeError):
        return False, None
    scope = (caps.get("Capabilities") or {}).get("Scope") if isinstance(caps, dict) else None
    return True, scope if scope in ("local", "global") else None


def volume_drivers(facts: EngineFacts, plugin_dir: Path | None) -> list[DriverWire]:
    drivers: dict[str, DriverWire] = {}
    for name in facts.volume_drivers:
        if name == "local":
            drivers[name] = DriverWire(name=name, version=facts.version, scope="local")
        else:
            drivers[name] = DriverWire(name=name)
    for plugin in facts.managed_volume_plugins:
        drivers[plugin.name] = DriverWire(name=plugin.name, version=plugin.version)
    if plugin_dir is not None and plugin_dir.is_dir():
        for socket in sorted(plugin_dir.glob("*.sock")):
            is_driver, scope = probe_socket(socket)
            if is_driver:
                known = drivers.get(socket.stem)
                drivers[socket.stem] = DriverWire(
                    name=socket.stem, version=known.version if known else None, scope=scope
                )
    return [drivers[name] for name in sorted(drivers)]

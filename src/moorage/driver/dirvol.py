"""``dirvol``: a Docker volume plugin whose volumes are plain directories under one root.

It speaks the legacy volume plugin protocol (https://docs.docker.com/engine/extend/plugins_volume/):
JSON over HTTP POST on a unix socket that Docker finds in ``/run/docker/plugins/``. It exists so
that Moorage's tests and demos have a real third-party driver, with a ``local`` or ``global``
capability scope, on chosen nodes only.

    POST /Plugin.Activate                       -> {"Implements": ["VolumeDriver"]}
    POST /VolumeDriver.Create       {Name, Opts} -> {"Err": ""}
    POST /VolumeDriver.Remove       {Name}       -> {"Err": ""}    (refused while mounted)
    POST /VolumeDriver.Mount        {Name, ID}   -> {"Mountpoint", "Err"}
    POST /VolumeDriver.Unmount      {Name, ID}   -> {"Err": ""}
    POST /VolumeDriver.Path         {Name}       -> {"Mountpoint", "Err"}
    POST /VolumeDriver.Get          {Name}       -> {"Volume": {Name, Mountpoint, CreatedAt, Status}, "Err"}
    POST /VolumeDriver.List                      -> {"Volumes": [{Name, Mountpoint}], "Err"}
    POST /VolumeDriver.Capabilities              -> {"Capabilities": {"Scope": "local"|"global"}}

Protocol decisions:

- Every answer is JSON with content type ``application/vnd.docker.plugins.v1.2+json``. A request
  that fails (bad input, unknown volume, volume in use, file system error) is answered HTTP 200
  with ``{"Err": "<message>"}``, which Docker shows to the user. Only an unknown path (404) or a
  method other than POST (405) gets another status, still with an ``Err`` body.
- A volume's mountpoint is ``<root>/<name>/data``; its metadata lives beside it in
  ``<root>/<name>/volume.json`` and never shows inside a container (see
  :mod:`moorage.driver.dirvol_store`). ``Path``, ``Get`` and ``List`` always report that path,
  mounted or not: the directory is always there on the host.
- ``Create`` of an existing volume succeeds and keeps the first options. Options are free-form
  strings, stored and shown in ``Get``'s ``Status``.
- ``Mount`` counts callers by ``ID``: the same ID twice counts once. ``Unmount`` of an ID that holds
  no mount succeeds (counts are in memory, so that is normal after a plugin restart). A request
  without ``ID`` (Docker before 1.12) counts as the caller ``""``.
- ``Remove`` while any caller has the volume mounted is refused; otherwise the folder is renamed
  away at once and then deleted.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from moorage.driver.dirvol_store import Volume, VolumeStore, volume_name_error
from moorage.driver.plugin_socket import plugin_socket
from moorage.errors import InvalidInput, MoorageError

__all__ = ["CONTENT_TYPE", "DEFAULT_SOCKET", "SCOPES", "DirvolPlugin", "build_app", "serve"]

CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"
DEFAULT_SOCKET = Path("/run/docker/plugins/dirvol.sock")
SCOPES = ("local", "global")
MAX_BODY_BYTES = 1 << 20

log = logging.getLogger("moorage.driver.dirvol")

Body = Mapping[str, object]
Reply = dict[str, object]
Handler = Callable[[Body], Awaitable[Reply]]


class PluginResponse(JSONResponse):
    media_type = CONTENT_TYPE


class DirvolPlugin:
    """The protocol's endpoints over one :class:`VolumeStore`; each takes the parsed request body."""

    def __init__(self, store: VolumeStore, scope: str = "local") -> None:
        _check_scope(scope)
        self.store = store
        self.scope = scope

    def routes(self) -> dict[str, Handler]:
        """Each endpoint path and its handler."""
        return {
            "/Plugin.Activate": self.activate,
            "/VolumeDriver.Create": self.create,
            "/VolumeDriver.Remove": self.remove,
            "/VolumeDriver.Mount": self.mount,
            "/VolumeDriver.Unmount": self.unmount,
            "/VolumeDriver.Path": self.path,
            "/VolumeDriver.Get": self.get,
            "/VolumeDriver.List": self.list_volumes,
            "/VolumeDriver.Capabilities": self.capabilities,
        }

    async def activate(self, body: Body) -> Reply:
        return {"Implements": ["VolumeDriver"]}

    async def capabilities(self, body: Body) -> Reply:
        return {"Capabilities": {"Scope": self.scope}}

    async def create(self, body: Body) -> Reply:
        volume = self.store.create(_name(body), _opts(body))
        log.info("created volume %s at %s", volume.name, volume.mountpoint)
        return {"Err": ""}

    async def remove(self, body: Body) -> Reply:
        name = _name(body)
        trash = self.store.detach(name)
        await run_in_threadpool(_delete_tree, trash)
        log.info("removed volume %s", name)
        return {"Err": ""}

    async def mount(self, body: Body) -> Reply:
        name = _name(body)
        mountpoint = self.store.mount(name, _caller(body))
        return {"Mountpoint": str(mountpoint), "Err": ""}

    async def unmount(self, body: Body) -> Reply:
        self.store.unmount(_name(body), _caller(body))
        return {"Err": ""}

    async def path(self, body: Body) -> Reply:
        return {"Mountpoint": str(self.store.get(_name(body)).mountpoint), "Err": ""}

    async def get(self, body: Body) -> Reply:
        volume = self.store.get(_name(body))
        status = {"mounts": self.store.mount_count(volume.name), "opts": dict(volume.opts)}
        return {"Volume": {**_summary(volume), "CreatedAt": _rfc3339(volume), "Status": status}, "Err": ""}

    async def list_volumes(self, body: Body) -> Reply:
        return {"Volumes": [_summary(volume) for volume in self.store.volumes()], "Err": ""}


def build_app(root: Path, scope: str = "local") -> Starlette:
    """The plugin as an ASGI app serving the volumes under ``root`` with capability ``scope``."""
    _check_scope(scope)
    store = VolumeStore(root)
    store.purge_trash()
    plugin = DirvolPlugin(store, scope)
    routes = [Route(path, _endpoint(handler), methods=["POST"]) for path, handler in plugin.routes().items()]
    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
    )


def serve(root: Path, socket: Path, scope: str = "local") -> None:
    """Serve the plugin on the unix socket ``socket`` until SIGTERM or SIGINT, then remove the socket.

    Raises InvalidInput for an unknown scope and Conflict when the socket is another live plugin's.
    """
    _check_scope(scope)
    server: uvicorn.Server | None = None
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        if server is not None:
            server.should_exit = True

    # uvicorn handles these signals while it runs and raises them again once it has stopped;
    # with these handlers in place that second delivery is harmless and serve() returns normally.
    in_main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGINT) if in_main_thread else ()
    previous = [(sig, signal.signal(sig, stop)) for sig in signals]
    try:
        with plugin_socket(socket) as sock:
            app = build_app(root, scope)
            config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_graceful_shutdown=5)
            server = uvicorn.Server(config)
            server.should_exit = stopping
            log.info("dirvol serving %s on %s (scope %s)", root, socket, scope)
            server.run(sockets=[sock])
    finally:
        for sig, handler in previous:
            signal.signal(sig, handler)
    log.info("dirvol stopped")


def _check_scope(scope: str) -> None:
    if scope not in SCOPES:
        raise InvalidInput.one("scope", f"unknown scope {scope!r}, must be one of {', '.join(SCOPES)}")


# -- the HTTP edge -----------------------------------------------------------------------------


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            reply = await handler(_parse_body(await _read_body(request)))
        except MoorageError as exc:
            return PluginResponse({"Err": exc.message})
        except OSError as exc:
            log.warning("%s failed: %s", request.url.path, exc)
            return PluginResponse({"Err": f"{request.url.path.lstrip('/')} failed: {exc}"})
        return PluginResponse(reply)

    return endpoint


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise InvalidInput.one("body", f"request body is larger than {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _parse_body(raw: bytes) -> Body:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput.one("body", f"request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise InvalidInput.one("body", "request body must be a JSON object")
    return body


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 400
    detail = exc.detail if isinstance(exc, HTTPException) else str(exc)
    return PluginResponse({"Err": f"{request.method} {request.url.path}: {detail}"}, status_code=status)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("%s crashed", request.url.path, exc_info=exc)
    return PluginResponse({"Err": f"internal error in dirvol: {exc}"}, status_code=500)


# -- request fields ----------------------------------------------------------------------------


def _name(body: Body) -> str:
    name = body.get("Name")
    problem = volume_name_error(name)
    if problem is not None or not isinstance(name, str):
        raise InvalidInput.one("Name", problem or "a volume name is required")
    return name


def _caller(body: Body) -> str:
    caller = body.get("ID", "")
    if not isinstance(caller, str):
        raise InvalidInput.one("ID", "the mount ID must be a string")
    return caller


def _opts(body: Body) -> dict[str, str]:
    opts = body.get("Opts")
    if opts is None:
        return {}
    if not isinstance(opts, dict) or not all(isinstance(v, str) for v in opts.values()):
        raise InvalidInput.one("Opts", "options must be an object of string values")
    return {str(k): v for k, v in opts.items()}


# -- replies -----------------------------------------------------------------------------------


def _summary(volume: Volume) -> dict[str, object]:
    return {"Name": volume.name, "Mountpoint": str(volume.mountpoint)}


def _rfc3339(volume: Volume) -> str:
    return volume.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _delete_tree(folder: Path) -> None:
    try:
        shutil.rmtree(folder)
    except OSError as exc:
        log.warning("could not delete %s (%s); it is deleted at the next start", folder, exc)


# -- python -m moorage.driver.dirvol -----------------------------------------------------------


def _main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m moorage.driver.dirvol", description="Serve the dirvol Docker volume plugin."
    )
    parser.add_argument("--root", type=Path, required=True, help="folder that holds the volumes")
    parser.add_argument("--socket", type=Path, default=DEFAULT_SOCKET, help=f"default {DEFAULT_SOCKET}")
    parser.add_argument("--scope", choices=SCOPES, default="local", help="capability scope (default local)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s dirvol %(levelname)s %(message)s")
    try:
        serve(args.root, args.socket, args.scope)
    except (MoorageError, OSError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main())

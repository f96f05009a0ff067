"""The agent's view of its Docker Engine. The only module of Moorage that imports ``docker``."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import docker
import docker.errors
import docker.types
import docker.utils.socket
from docker.errors import DockerException

from moorage.errors import MoorageError

__all__ = [
    "ContainerEngine",
    "ContainerIO",
    "ContainerState",
    "ContainerSummary",
    "Containers",
    "DockerHelpers",
    "DockerIO",
    "DockerJobs",
    "Engine",
    "EngineError",
    "EngineFacts",
    "ExecSession",
    "HelperEngine",
    "ManagedPlugin",
    "OutputSource",
    "VolumeState",
    "exec_output",
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
    options: dict[str, str] = field(default_factory=dict)  # the driver options it was created with


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

    def no_restart(self, container_id: str) -> None:
        """Docker itself never starts the container again (restart policy ``no``): the agent does,
        once its master says so (an engine that starts again after a power cut starts none)."""
        ...

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
            # Docker never starts it by itself (at an engine's start after a power cut, say): the
            # agent starts what its master's desired state says, so a node declared lost that comes
            # back never runs an instance that runs elsewhere now (master/node_loss.py)
            restart_policy={"Name": "no"},
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

    def no_restart(self, container_id: str) -> None:
        self._call("update container", self.api.update_container, container_id, restart_policy={"Name": "no"})

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
                name=str(v["Name"]),
                driver=str(v.get("Driver", "")),
                labels=dict(v.get("Labels") or {}),
                options={str(k): str(o) for k, o in (v.get("Options") or {}).items()},
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


# -- logs and exec -------------------------------------------------------------------------------

STDOUT, STDERR = 1, 2
_READ_BYTES = 32 * 1024
_ARCHIVE_BYTES = 1024 * 1024  # pieces of an archive read from the engine
_EXIT_WAIT = 5.0  # seconds the engine may take to mark an exec finished once its output ended


class OutputSource(Protocol):
    """A container's output as the engine streams it, read by one thread. ``close`` may be called
    from any thread, at any time, more than once: a blocked ``read`` then returns None."""

    def read(self) -> tuple[int, bytes] | None:
        """The next piece of output as (STDOUT or STDERR, bytes); None at the end."""
        ...

    def close(self) -> None: ...


class ExecSession(OutputSource, Protocol):
    """A command running in a container (``docker exec``): its output, its stdin, its exit code."""

    def write(self, data: bytes) -> None:
        """Give the command these bytes on its stdin (blocks while it does not read)."""
        ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    def exit_code(self) -> int | None:
        """Once ``read`` returned None: the command's exit status (None if the engine cannot tell)."""
        ...


class ContainerIO(Protocol):
    """What the agent's logs and exec streams need of an engine (``Containers``; the fake in
    ``tests/support/fake_engine.py``). Each call raises ``EngineError`` with the engine's words."""

    def open_logs(
        self, container: str, *, follow: bool, tail: int | None, since: float | None, timestamps: bool
    ) -> OutputSource: ...

    def open_exec(self, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession: ...


def _shut(sock: Any) -> None:
    """Wake whatever thread waits on this socket, and close it."""
    raw = getattr(sock, "_sock", sock)
    with contextlib.suppress(OSError, AttributeError):
        raw.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError, AttributeError):
        sock.close()


class _DockerLogs:
    """``GET /containers/{id}/logs`` read frame by frame, keeping which of stdout/stderr each is."""

    def __init__(self, response: Any, tty: bool) -> None:
        self._response = response
        self._tty = tty
        self._closed = threading.Event()

    def read(self) -> tuple[int, bytes] | None:
        raw = self._response.raw
        try:
            if self._tty:  # a terminal's output: one stream, no frames
                data = raw.read1(_READ_BYTES)
                return (STDOUT, bytes(data)) if data else None
            header = raw.read(8)
            if len(header) < 8:
                return None
            fd, length = struct.unpack(">BxxxL", header)
            data = raw.read(length)
            if not data:
                return None
            return (STDERR if fd == STDERR else STDOUT, bytes(data))
        except Exception as err:  # urllib3 and http.client raise their own kinds on a closed socket
            if self._closed.is_set():
                return None
            raise EngineError(f"reading logs: {err}") from err

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(Exception):  # docker-py's way to end a streamed response from another thread
            docker.types.CancellableStream(iter(()), self._response).close()
        with contextlib.suppress(Exception):
            self._response.close()


class _DockerExec:
    """A started exec: the engine's hijacked connection carries stdin one way and output the other."""

    def __init__(self, api: Any, exec_id: str, sock: Any, tty: bool) -> None:
        self._api = api
        self._id = exec_id
        self._sock = sock
        self._frames = docker.utils.socket.frames_iter(sock, tty)
        self._closed = threading.Event()

    def read(self) -> tuple[int, bytes] | None:
        try:
            fd, data = next(self._frames)
        except StopIteration:
            return None
        except (OSError, ValueError) as err:
            if self._closed.is_set():
                return None
            raise EngineError(f"reading exec output: {err}") from err
        return (STDERR if fd == STDERR else STDOUT), bytes(data)

    def write(self, data: bytes) -> None:
        try:
            getattr(self._sock, "_sock", self._sock).sendall(data)
        except OSError as err:
            raise EngineError(f"writing to the command's stdin: {err}") from err

    def close_stdin(self) -> None:
        with contextlib.suppress(OSError):  # the engine closes the command's stdin on half-close
            getattr(self._sock, "_sock", self._sock).shutdown(socket.SHUT_WR)

    def resize(self, width: int, height: int) -> None:
        try:
            self._api.exec_resize(self._id, height=height, width=width)
        except DockerException as err:
            raise EngineError(f"resize: {err}") from err

    def exit_code(self) -> int | None:
        for _ in range(int(_EXIT_WAIT / 0.05)):
            try:
                state = self._api.exec_inspect(self._id)
            except DockerException as err:
                raise EngineError(f"inspect exec: {err}") from err
            if not state.get("Running"):
                code = state.get("ExitCode")
                return int(code) if code is not None else None
            time.sleep(0.05)  # the output ends a moment before the engine marks the command done
        return None

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            _shut(self._sock)


def _open_logs(
    api: Any, container: str, *, follow: bool, tail: int | None, since: float | None, timestamps: bool
) -> OutputSource:
    inspected = api.inspect_container(container)
    tty = bool((inspected.get("Config") or {}).get("Tty"))
    params: dict[str, Any] = {
        "stdout": 1,
        "stderr": 1,
        "follow": int(follow),
        "timestamps": int(timestamps),
        "tail": "all" if tail is None else tail,
    }
    if since is not None:
        params["since"] = since
    response = api._get(api._url("/containers/{0}/logs", container), params=params, stream=True)
    api._raise_for_status(response)
    api._disable_socket_timeout(api._get_raw_response_socket(response))  # a quiet log is no error
    return _DockerLogs(response, tty)


def _open_exec(api: Any, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession:
    created = api.exec_create(container, cmd, stdout=True, stderr=True, stdin=stdin, tty=tty)
    exec_id = str(created["Id"])
    sock = api.exec_start(exec_id, tty=tty, socket=True)
    api._disable_socket_timeout(sock)
    return _DockerExec(api, exec_id, sock, tty)


def _open_archive(api: Any, container: str, path: str) -> OutputSource:
    # identity: without it requests asks for gzip, and the engine compresses every byte (a 1 GiB
    # volume cost it 30 s of CPU) for this side to decompress
    response = api._get(
        api._url("/containers/{0}/archive", container),
        params={"path": path},
        headers={"Accept-Encoding": "identity"},
        stream=True,
    )
    api._raise_for_status(response)
    api._disable_socket_timeout(api._get_raw_response_socket(response))
    return _DockerArchive(response)


class _DockerArchive:
    """``GET /containers/{id}/archive`` read in pieces (all of it is "stdout")."""

    def __init__(self, response: Any) -> None:
        self._response = response
        self._chunks = response.iter_content(_ARCHIVE_BYTES, False)
        self._closed = threading.Event()

    def read(self) -> tuple[int, bytes] | None:
        try:
            data = next(self._chunks)
        except StopIteration:
            return None
        except Exception as err:  # requests and urllib3 raise their own kinds on a cut connection
            if self._closed.is_set():
                return None
            raise EngineError(f"reading the archive: {err}") from err
        return STDOUT, bytes(data)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(Exception):
            self._response.close()


def _engine_call(what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return fn(*args, **kwargs)
    except docker.errors.NotFound as err:
        raise EngineError(str(err.explanation or err)) from err
    except docker.errors.APIError as err:
        raise EngineError(str(err.explanation or err)) from err
    except DockerException as err:
        raise EngineError(f"{what}: {err}") from err


class DockerIO:
    """The Docker Engine's ``ContainerIO``."""

    def __init__(self, engine: Engine) -> None:
        self.api = engine.client.api

    def open_logs(
        self, container: str, *, follow: bool, tail: int | None, since: float | None, timestamps: bool
    ) -> OutputSource:
        return _engine_call(  # type: ignore[no-any-return]
            f"logs of {container}",
            _open_logs,
            self.api,
            container,
            follow=follow,
            tail=tail,
            since=since,
            timestamps=timestamps,
        )

    def open_exec(self, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        return _engine_call(  # type: ignore[no-any-return]
            f"exec in {container}", _open_exec, self.api, container, cmd, tty=tty, stdin=stdin
        )


# -- helper containers: a volume's data read and written through the engine ----------------------


class HelperEngine(Protocol):
    """What ``volume_data.py`` needs of an engine to reach a Docker volume's data through a helper
    container that mounts it (so any volume driver works): ``DockerHelpers``; a fake in
    ``tests/support/fake_engine.py``. Every call raises ``EngineError`` with the engine's words."""

    def volumes(self) -> dict[str, VolumeState]: ...

    def create_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None: ...

    def remove_volume(self, name: str) -> None: ...

    def ensure_image(self, image: str) -> None: ...

    def containers_using(self, volume: str) -> list[ContainerSummary]:
        """Every container (running or not) that mounts the Docker volume ``volume``."""
        ...

    def containers(self, label: str) -> list[ContainerSummary]: ...

    def run_helper(
        self, name: str, image: str, volume: str, target: str, *, read_only: bool, labels: dict[str, str]
    ) -> str:
        """Create and start a container that mounts ``volume`` at ``target`` and idles (no
        network, no restart); its id. Commands run in it with ``open_exec``."""
        ...

    def open_exec(self, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession: ...

    def archive(self, container: str, path: str) -> OutputSource:
        """The engine's own tar of ``path`` in the container (what ``docker cp`` reads; members
        named from the path's last component), read to its end or closed."""
        ...

    def remove(self, container_id: str) -> None: ...


class DockerHelpers(Containers):
    """The Docker Engine's ``HelperEngine``."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._io = DockerIO(engine)

    def containers_using(self, volume: str) -> list[ContainerSummary]:
        return self._list({"volume": volume})

    def _list(self, filters: dict[str, str]) -> list[ContainerSummary]:
        summaries = self._call("list containers", self.api.containers, all=True, filters=filters)
        return [
            ContainerSummary(
                id=str(s.get("Id", "")),
                name=str((s.get("Names") or [""])[0]).lstrip("/"),
                labels=dict(s.get("Labels") or {}),
                state=str(s.get("State", "unknown")),
                status=str(s.get("Status", "")),
            )
            for s in summaries
        ]

    def run_helper(
        self, name: str, image: str, volume: str, target: str, *, read_only: bool, labels: dict[str, str]
    ) -> str:
        self.ensure_image(image)
        host_config = self.api.create_host_config(
            mounts=[docker.types.Mount(target=target, source=volume, type="volume", read_only=read_only)],
            network_mode="none",
        )
        created = self._call(
            f"create helper container {name}",
            self.api.create_container,
            image=image,
            command=["sleep", "2147483647"],
            name=name,
            labels=labels,
            host_config=host_config,
            stop_signal="SIGKILL",
        )
        container_id = str(created["Id"])
        try:
            self._call(f"start helper container {name}", self.api.start, container_id)
        except EngineError:
            self.remove(container_id)
            raise
        return container_id

    def open_exec(self, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> ExecSession:
        return self._io.open_exec(container, cmd, tty=tty, stdin=stdin)

    def archive(self, container: str, path: str) -> OutputSource:
        return _engine_call(f"archive of {path} in {container}", _open_archive, self.api, container, path)  # type: ignore[no-any-return]


# -- backup jobs: restic in a helper container, and the containers quiesced around it -------------


class DockerJobs(Containers):
    """The engine calls of backup jobs (``agent/backups.py``): helper images imported from a
    tarball (no registry), one-shot helper containers that mount a Docker volume and run a
    command, their output line by line, and pausing, stopping and starting the containers that
    mount a volume while it is read."""

    def image_present(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
        except docker.errors.ImageNotFound:
            return False
        except DockerException as err:
            raise EngineError(f"inspect image {image}: {err}") from err
        return True

    def import_image(self, tarball: bytes, repository: str, tag: str) -> None:
        self._call(
            f"import image {repository}:{tag}", self.api.import_image_from_data, tarball, repository, tag
        )

    def run_oneshot(
        self,
        name: str,
        image: str,
        command: list[str],
        *,
        mounts: list[dict[str, Any]],
        env: dict[str, str],
        labels: dict[str, str],
        network: bool = False,
    ) -> str:
        """Create and start a container that runs ``command`` once (no restart); its id."""
        host_config = self.api.create_host_config(
            mounts=[docker.types.Mount(**m) for m in mounts],
            network_mode="bridge" if network else "none",
        )
        created = self._call(
            f"create helper container {name}",
            self.api.create_container,
            image=image,
            command=command,
            name=name,
            environment=env,
            labels=labels,
            host_config=host_config,
            working_dir="/",
        )
        container_id = str(created["Id"])
        try:
            self._call(f"start helper container {name}", self.api.start, container_id)
        except EngineError:
            self.remove(container_id)
            raise
        return container_id

    def output_lines(self, container_id: str) -> Any:
        """The container's stdout and stderr, line by line (bytes), until it exits."""
        stream = self._call(
            "follow helper output",
            self.api.logs,
            container_id,
            stream=True,
            follow=True,
            stdout=True,
            stderr=True,
        )
        pending = b""
        for chunk in stream:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from lines
        if pending:
            yield pending

    def wait_exit(self, container_id: str) -> int:
        result = self._call("wait for helper container", self.api.wait, container_id)
        return int(result.get("StatusCode", -1))

    def status(self, name: str) -> str | None:
        state = self.inspect(name)
        return state.status if state is not None else None

    def pause(self, name: str) -> None:
        self._call(f"pause {name}", self.api.pause, name)

    def unpause(self, name: str) -> None:
        self._call(f"unpause {name}", self.api.unpause, name)

    def stop(self, name: str, timeout: int = 30) -> None:
        self._call(f"stop {name}", self.api.stop, name, timeout=timeout)


def _exec_output(api: Any, container: str, cmd: list[str]) -> bytes:
    created = api.exec_create(container, cmd, stdout=True, stderr=False)
    return bytes(api.exec_start(created["Id"]))


def exec_output(jobs: DockerJobs, container: str, cmd: list[str]) -> bytes:
    """What ``cmd`` run in a running container prints on stdout (small outputs only)."""
    return _engine_call(f"exec in {container}", _exec_output, jobs.api, container, cmd)  # type: ignore[no-any-return]

"""An in-memory Docker Engine for unit tests of the agent's convergence (``ContainerEngine``).

It keeps the engine's rules that convergence relies on: a container name is taken until the
container is removed; creating a container that mounts a volume the engine lacks makes a
``local`` one (as Docker does); creating a volume that exists is fine with the same driver and
refused with another; a volume in use by any container cannot be removed. ``calls`` logs every
call that changes something, so a test can say what was left alone.

It is also a ``ContainerIO``: a container's log is what ``print`` wrote (followers get new lines
as they come); exec runs one of ``programs`` (echo, cat, exit N, sleep, flood N) in a thread, and
an unknown command ends like Docker's (127, "executable file not found"). ``open_sources`` says
which engine streams are still open, so a test can check that nothing leaked.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moorage.agent.engine import ContainerState, ContainerSummary, EngineError, VolumeState

__all__ = ["FakeContainer", "FakeEngine", "FakeExec", "FakeOutput"]

STAMP = b"2024-01-01T00:00:00.000000000Z"


class FakeOutput:
    """An ``OutputSource``: what was pushed, in order, until finished or closed."""

    def __init__(self) -> None:
        self._items: queue.SimpleQueue[tuple[int, bytes] | None] = queue.SimpleQueue()
        self.closed = threading.Event()

    def push(self, fd: int, data: bytes) -> None:
        self._items.put((fd, data))

    def finish(self) -> None:
        self._items.put(None)

    def read(self) -> tuple[int, bytes] | None:
        if self.closed.is_set():
            return None
        item = self._items.get()
        return None if self.closed.is_set() else item

    def close(self) -> None:
        self.closed.set()
        self._items.put(None)


class FakeExec(FakeOutput):
    """An ``ExecSession`` whose command is a Python function of (session, args) -> exit code."""

    def __init__(self, program: Callable[[FakeExec, list[str]], int], args: list[str]) -> None:
        super().__init__()
        self.stdin: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.sizes: list[tuple[int, int]] = []
        self.code: int | None = None
        self._thread = threading.Thread(target=self._run, args=(program, args), daemon=True)
        self._thread.start()

    def _run(self, program: Callable[[FakeExec, list[str]], int], args: list[str]) -> None:
        self.code = program(self, args)
        self.finish()

    def read_stdin(self) -> bytes | None:
        """For programs: the next input, None at its end (or when the session closed)."""
        data = self.stdin.get()
        return None if self.closed.is_set() else data

    def write(self, data: bytes) -> None:
        if self.closed.is_set():
            raise EngineError("the command's stdin is closed")
        self.stdin.put(data)

    def close_stdin(self) -> None:
        self.stdin.put(None)

    def resize(self, width: int, height: int) -> None:
        self.sizes.append((width, height))

    def exit_code(self) -> int | None:
        self._thread.join(5)
        return self.code

    def close(self) -> None:
        super().close()
        self.stdin.put(None)


def _echo(session: FakeExec, args: list[str]) -> int:
    session.push(1, (" ".join(args) + "\n").encode())
    return 0


def _cat(session: FakeExec, _args: list[str]) -> int:
    while (data := session.read_stdin()) is not None:
        session.push(1, data)
    return 0


def _exit(session: FakeExec, args: list[str]) -> int:
    session.push(2, f"exiting with {args[0]}\n".encode())
    return int(args[0])


def _sleep(session: FakeExec, _args: list[str]) -> int:
    session.closed.wait()  # until the session is closed (the stream was cancelled)
    return 0


def _flood(session: FakeExec, args: list[str]) -> int:
    total = int(args[0])
    block = bytes(range(256)) * 256  # 64 KiB, a recognizable pattern
    sent = 0
    while sent < total and not session.closed.is_set():
        piece = block[: min(len(block), total - sent)]
        session.push(1, piece)
        sent += len(piece)
    return 0


PROGRAMS: dict[str, Callable[[FakeExec, list[str]], int]] = {
    "echo": _echo,
    "cat": _cat,
    "exit": _exit,
    "sleep": _sleep,
    "flood": _flood,
}


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
    log: list[tuple[int, bytes]] = field(default_factory=list)  # (fd, line with its newline)

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
        self.programs = dict(PROGRAMS)
        self.sources: list[FakeOutput] = []  # every logs and exec stream opened
        self.followers: dict[str, list[FakeOutput]] = {}  # container name -> followed logs
        self.log_requests: list[dict[str, Any]] = []
        self._io_lock = threading.Lock()

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

    def add_volume(
        self,
        name: str,
        driver: str = "local",
        labels: dict[str, str] | None = None,
        options: dict[str, str] | None = None,
    ) -> None:
        self.volume_rows[name] = VolumeState(name, driver, dict(labels or {}), dict(options or {}))

    def named(self, name: str) -> FakeContainer | None:
        return next((c for c in self.by_id.values() if c.name == name), None)

    def print(self, name: str, text: str, fd: int = 1) -> None:
        """The container writes ``text`` (lines) to stdout (1) or stderr (2)."""
        container = self.named(name)
        assert container is not None, name
        with self._io_lock:
            for line in text.encode().splitlines(keepends=True):
                container.log.append((fd, line))
                for follower in self.followers.get(name, []):
                    follower.push(fd, line)

    def open_sources(self) -> list[FakeOutput]:
        return [s for s in self.sources if not s.closed.is_set()]

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

    def no_restart(self, container_id: str) -> None:
        container = self.by_id.get(container_id)
        if container is not None:
            self.calls.append(("no_restart", container.name))

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
        self.volume_rows[name] = VolumeState(name, driver, dict(labels), dict(driver_opts))

    def remove_volume(self, name: str) -> None:
        if name not in self.volume_rows:
            return
        users = sorted(c.id for c in self.by_id.values() if name in c.volume_names())
        if users:
            raise EngineError(f"remove {name}: volume is in use - [{', '.join(users)}]")
        self.calls.append(("remove_volume", name))
        del self.volume_rows[name]

    # -- ContainerIO ------------------------------------------------------------------------------

    def open_logs(
        self, container: str, *, follow: bool, tail: int | None, since: float | None, timestamps: bool
    ) -> FakeOutput:
        found = self.by_id.get(container) or self.named(container)
        if found is None:
            raise EngineError(f"No such container: {container}")
        self.log_requests.append(
            {"container": container, "follow": follow, "tail": tail, "since": since, "timestamps": timestamps}
        )
        source = FakeOutput()
        with self._io_lock:
            lines = found.log if tail is None else found.log[len(found.log) - tail :] if tail else []
            for fd, line in lines:
                source.push(fd, STAMP + b" " + line if timestamps else line)
            if follow:
                self.followers.setdefault(found.name, []).append(source)
            else:
                source.finish()
            self.sources.append(source)
        return source

    def open_exec(self, container: str, cmd: list[str], *, tty: bool, stdin: bool) -> FakeExec:
        found = self.by_id.get(container) or self.named(container)
        if found is None:
            raise EngineError(f"No such container: {container}")
        if found.status != "running":
            raise EngineError(f"Container {found.id} is not running")
        program = self.programs.get(cmd[0])
        if program is None:

            def program(session: FakeExec, _args: list[str]) -> int:
                session.push(
                    1, f'OCI runtime exec failed: exec: "{cmd[0]}": executable file not found\n'.encode()
                )
                return 127

        session = FakeExec(program, cmd[1:])
        with self._io_lock:
            self.sources.append(session)
        return session

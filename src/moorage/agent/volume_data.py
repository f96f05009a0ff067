"""A Docker volume's data, read and written through helper containers that mount it.

    VolumeData.reading(volume, paths)  ─▶ helper (volume read-only at /v) ─ tar c ─▶ a tar stream
    VolumeData.writing(volume)         ─▶ helper (volume at /v) ◀─ tar x ─ the stream you write
    VolumeData.manifest(volume, paths) ─▶ the engine's archive of a helper's mount (all of it) or
                                         tar c in the helper (paths), then ``volume_manifest.of_tar``
                                         on the agent
    VolumeData.manifest_reusing(v, m, u) ─▶ one helper: find, then tar c of what ``u()`` does not
                                         vouch for (the rest taken from ``m``); ``u`` is asked
                                         only once the listing is done (it may wait for restic)
    VolumeData.stats(volume)           ─▶ helper: find and stat, no data read (``volume_stats``)
    VolumeData.remove_paths(volume, p) ─▶ helper: rm -rf each path (whole subtrees)

Going through the engine (a container that mounts the volume) works for any volume driver, the
way the volume's own containers see it. A helper idles (``sleep``) with no network and no
restart policy, carries the ``HELPER`` label and no grid label (convergence never touches it),
runs commands through ``open_exec``, and is removed when its operation ends, however it ends;
``remove_leftovers`` removes any an agent left when it died. Readers mount the volume read-only,
so reading never changes the data.

The helper image must have a ``tar`` with ``--no-recursion`` and ``--numeric-owner``, ``rm``,
``find``, ``stat`` (with ``-c``), ``date``, ``sh`` and ``sleep``: busybox's do (the testbed's
``busybox:local``; ``busybox:1.36`` by default).
"""

from __future__ import annotations

import contextlib
import io
import logging
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from moorage.agent import volume_manifest, volume_stats
from moorage.agent.engine import STDERR, EngineError, ExecSession, HelperEngine, OutputSource
from moorage.model import docker_labels

__all__ = ["DEFAULT_HELPER_IMAGE", "MOUNT", "TarReader", "TarWriter", "VolumeData", "arg_batches"]

log = logging.getLogger("moorage.agent.volume_data")

DEFAULT_HELPER_IMAGE = "busybox:1.36"
MOUNT = "/v"
ARGS_BYTES = 256 * 1024  # of paths per command (Linux takes 2 MiB of arguments; keep well below)
_ERROR_BYTES = 4096  # of a command's stderr kept for its error message


def arg_batches(paths: Sequence[str], most: int = ARGS_BYTES) -> Iterator[list[str]]:
    """``paths`` as ``./path`` arguments (none can pass for an option), in order, in batches of at
    most ``most`` bytes."""
    batch: list[str] = []
    size = 0
    for path in paths:
        arg = "." if path == "." else f"./{path}"
        if batch and size + len(arg) + 1 > most:
            yield batch
            batch, size = [], 0
        batch.append(arg)
        size += len(arg) + 1
    if batch:
        yield batch


@dataclass(eq=False)
class _Run:
    """One command in a helper: its session and what it said on stderr."""

    session: ExecSession
    what: str
    errors: bytearray = field(default_factory=bytearray)

    def note(self, data: bytes) -> None:
        room = _ERROR_BYTES - len(self.errors)
        if room > 0:
            self.errors += data[:room]

    def finish(self) -> None:
        """Once its output ended: raise ``EngineError`` unless the command exited 0."""
        code = self.session.exit_code()
        if code != 0:
            said = self.errors.decode(errors="replace").strip() or f"exit status {code}"
            raise EngineError(f"{self.what}: {said}")

    def drain(self) -> None:
        while (item := self.session.read()) is not None:
            fd, data = item
            if fd == STDERR:
                self.note(data)
        self.finish()


class TarReader(io.RawIOBase):
    """A helper's ``tar c`` as a file to read (stdout); stderr kept for the error, the exit status
    checked at the end (``EngineError`` if the command failed)."""

    def __init__(self, run: _Run) -> None:
        self._run = run
        self._buffer = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def next_chunk(self) -> bytes | None:
        """The next piece of the archive as it came from the engine; None at its (successful) end."""
        if self._buffer:
            data, self._buffer = self._buffer, b""
            return data
        while not self._done:
            item = self._run.session.read()
            if item is None:
                self._done = True
                self._run.finish()
                return None
            fd, data = item
            if fd == STDERR:
                self._run.note(data)
            elif data:
                return data
        return None

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.next_chunk()
        if data is None:
            return 0
        size = min(len(buffer), len(data))
        buffer[:size] = data[:size]
        self._buffer = data[size:]
        return size


class ArchiveReader(io.RawIOBase):
    """An engine's archive (``HelperEngine.archive``) as a file to read."""

    def __init__(self, source: OutputSource) -> None:
        self._source = source
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            item = self._source.read()
            if item is None:
                return 0
            self._buffer = item[1]
        size = min(len(buffer), len(self._buffer))
        buffer[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


class TarWriter:
    """A helper's ``tar x`` fed by ``write``; ``finish`` ends its input and checks how it ended."""

    def __init__(self, run: _Run) -> None:
        self._run = run

    @property
    def session(self) -> ExecSession:
        return self._run.session

    def write(self, data: bytes) -> None:
        self._run.session.write(data)

    def finish(self) -> None:
        self._run.session.close_stdin()
        self._run.drain()


class VolumeData:
    """Helper containers of one engine (see the module)."""

    def __init__(self, engine: HelperEngine, image: str = DEFAULT_HELPER_IMAGE) -> None:
        self.engine = engine
        self.image = image

    # -- helpers --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def helper(self, volume: str, *, read_only: bool) -> Iterator[str]:
        """A helper container mounting ``volume`` at ``MOUNT``; removed on the way out."""
        if volume not in self.engine.volumes():
            raise EngineError(f"this node has no Docker volume {volume}")
        name = f"moorage-helper-{secrets.token_hex(6)}"
        container = self.engine.run_helper(
            name,
            self.image,
            volume,
            MOUNT,
            read_only=read_only,
            labels={docker_labels.HELPER: volume},
        )
        try:
            yield container
        finally:
            try:
                self.engine.remove(container)
            except EngineError as err:
                log.warning("could not remove helper container %s: %s", name, err.message)

    @contextlib.contextmanager
    def _command(
        self, volume: str, cmd: list[str], what: str, *, read_only: bool, stdin: bool = False
    ) -> Iterator[_Run]:
        with (
            self.helper(volume, read_only=read_only) as container,
            self._exec(container, cmd, what, stdin) as run,
        ):
            yield run

    @contextlib.contextmanager
    def _exec(self, container: str, cmd: list[str], what: str, stdin: bool = False) -> Iterator[_Run]:
        """One command in a helper that is running already."""
        session = self.engine.open_exec(container, cmd, tty=False, stdin=stdin)
        try:
            yield _Run(session, what)
        finally:
            session.close()

    def remove_leftovers(self) -> int:
        """Remove the helper containers a previous run of the agent left; how many."""
        found = self.engine.containers(docker_labels.HELPER)
        for container in found:
            self.engine.remove(container.id)
        return len(found)

    def users(self, volume: str) -> list[str]:
        """The names of the containers (not helpers) that mount ``volume``, running or not."""
        return sorted(
            c.name for c in self.engine.containers_using(volume) if docker_labels.HELPER not in c.labels
        )

    # -- reading and writing ---------------------------------------------------------------------

    @contextlib.contextmanager
    def reading(self, volume: str, paths: Sequence[str] | None = None) -> Iterator[TarReader]:
        """The volume's data as a tar stream: all of it, or only ``paths`` (each alone, not what
        is under it; at most ``ARGS_BYTES`` of them: see ``arg_batches``)."""
        with self.helper(volume, read_only=True) as container, self._tar(container, volume, paths) as reader:
            yield reader

    @contextlib.contextmanager
    def _tar(self, container: str, volume: str, paths: Sequence[str] | None) -> Iterator[TarReader]:
        if paths is None:
            args = ["."]
            options: list[str] = []
        else:
            batches = list(arg_batches(paths))
            if len(batches) > 1:
                raise ValueError("too many paths for one command; read them in batches")
            args = batches[0] if batches else []
            options = ["--no-recursion"]
        # tar straight to the engine: busybox's sends file data in 64 KiB pieces already (a dd
        # between them to make bigger ones cost more CPU than tar itself; the agent gathers the
        # engine's frames into 1 MiB pieces before they go to the master)
        cmd = ["tar", "c", *options, "-C", MOUNT, *args]
        with self._exec(container, cmd, f"reading volume {volume}") as run:
            yield TarReader(run)

    @contextlib.contextmanager
    def writing(self, volume: str) -> Iterator[TarWriter]:
        """A ``tar x`` into the volume (owners, modes and mtimes restored): ``write`` the archive,
        then ``finish`` (``EngineError`` if tar failed: a bad archive, a full disk)."""
        cmd = ["tar", "x", "--numeric-owner", "-C", MOUNT]
        with self._command(volume, cmd, f"writing volume {volume}", read_only=False, stdin=True) as run:
            yield TarWriter(run)

    def manifest(self, volume: str, paths: Sequence[str] | None = None) -> volume_manifest.Manifest:
        """The manifest of the volume's data (or of ``paths`` in it, in batches), every file read
        and hashed: all of it from the engine's archive of the helper's mount, paths by ``tar c``
        (one helper for every batch)."""
        with self.helper(volume, read_only=True) as container:
            if paths is None:
                return self._manifest_of_archive(container, volume)
            return self._manifest_of_batches(container, volume, list(arg_batches(paths)))

    def manifest_reusing(
        self,
        volume: str,
        before: volume_manifest.Manifest,
        unchanged: Callable[[], set[str] | frozenset[str]],
    ) -> volume_manifest.Manifest:
        """The manifest of the volume's data, taking from ``before`` the entries of the regular
        files ``unchanged()`` names (what the caller knows did not change since ``before``:
        restic's files unchanged since its parent snapshot) and reading every other path; one
        helper for the listing (``find``) and the reads. ``unchanged`` is called once the helper
        runs and the listing is done, so both can go on while the caller's backup does (it may
        wait for it, and raise to end this too); none vouched for: the whole volume is read."""
        with self.helper(volume, read_only=True) as container:
            out = self._output(container, ["find", MOUNT, "-xdev", "-print0"], f"listing volume {volume}")
            vouched = unchanged()
            if not vouched:
                return self._manifest_of_archive(container, volume)
            paths = []
            for raw in out.split(b"\0"):
                name = raw.decode("utf-8", errors="surrogateescape")
                if name == MOUNT:
                    paths.append(".")
                elif name.startswith(MOUNT + "/"):
                    paths.append(name[len(MOUNT) + 1 :])
            kept = {p: before[p] for p in paths if p in vouched and p in before and before[p].kind == "file"}
            rest = [p for p in paths if p not in kept]
            return {**kept, **self._manifest_of_batches(container, volume, list(arg_batches(rest)))}

    def _manifest_of_archive(self, container: str, volume: str) -> volume_manifest.Manifest:
        """The engine's own tar of the whole mount (``HelperEngine.archive``): no command's
        output to pass through the engine, which costs the engine and its shim more CPU."""
        source = self.engine.archive(container, MOUNT)
        try:
            reader = io.BufferedReader(ArchiveReader(source), 1024 * 1024)
            return volume_manifest.of_tar(reader, root=MOUNT.strip("/"))
        except ValueError as err:
            raise EngineError(f"reading volume {volume}: the engine's archive: {err}") from err
        finally:
            source.close()

    def _manifest_of(
        self, container: str, volume: str, paths: Sequence[str] | None
    ) -> volume_manifest.Manifest:
        with self._tar(container, volume, paths) as reader:
            return volume_manifest.of_tar(io.BufferedReader(reader, 1024 * 1024))

    def _manifest_of_batches(
        self, container: str, volume: str, batches: Sequence[Sequence[str]]
    ) -> volume_manifest.Manifest:
        out: volume_manifest.Manifest = {}
        for batch in batches:
            out.update(self._manifest_of(container, volume, [a.removeprefix("./") for a in batch]))
        return out

    def _output(self, container: str, cmd: list[str], what: str) -> bytes:
        """What a command in a helper printed on stdout (``EngineError`` unless it exited 0)."""
        with self._exec(container, cmd, what) as run:
            out = bytearray()
            while (item := run.session.read()) is not None:
                fd, data = item
                if fd == STDERR:
                    run.note(data)
                else:
                    out += data
            run.finish()
        return bytes(out)

    def usage(self, volume: str) -> dict[str, int]:
        """``bytes`` of file data (each hardlinked file once) and ``files`` (every path) in the
        volume, from its metadata only (``find`` and ``stat``: no data is read)."""
        cmd = ["find", MOUNT, "-xdev", "-exec", "stat", "-c", "%i %s %F", "{}", "+"]
        with self.helper(volume, read_only=True) as container:
            out = self._output(container, cmd, f"sizing volume {volume}")
        inodes: set[str] = set()
        total = files = 0
        for line in out.decode(errors="replace").splitlines():
            inode, size, kind = [*line.split(" ", 2), "", ""][:3]
            files += 1
            if kind == "regular file" and inode not in inodes:
                inodes.add(inode)
                total += int(size) if size.isdigit() else 0
        return {"bytes": total, "files": files}

    def stats(self, volume: str) -> volume_stats.Listing | None:
        """What stat says of every path of the volume (``volume_stats``), no data read; None when
        it cannot be listed exactly (a file name with a newline in it)."""
        what = f"listing volume {volume}"
        with self.helper(volume, read_only=True) as container:
            if self._output(container, ["find", MOUNT, "-name", "*\n*"], what):
                return None
            script = 'date +%s && exec find "$0" -exec stat -c "$1" {} +'
            out = self._output(container, ["sh", "-c", script, MOUNT, volume_stats.STAT_FORMAT], what)
        clock, _, lines = out.decode("utf-8", errors="surrogateescape").partition("\n")
        try:
            return volume_stats.parse(clock, lines, MOUNT)
        except ValueError as err:
            log.info("%s: not exact (%s); it is read whole", what, err)
            return None

    def remove_paths(self, volume: str, paths: Sequence[str]) -> None:
        """Delete these paths (with what is under them) from the volume."""
        for batch in arg_batches([p for p in paths if p != "."]):
            with self._command(
                volume, ["rm", "-rf", *batch], f"removing files from volume {volume}", read_only=False
            ) as run:
                run.drain()

    # -- the Docker volume itself ------------------------------------------------------------------

    def ensure_volume(
        self, name: str, driver: str, driver_opts: dict[str, str], labels: dict[str, str]
    ) -> None:
        """Create the Docker volume unless it is there with these labels; one that is there without
        them (made by someone else, or for another move) is refused: never written into."""
        found = self.engine.volumes().get(name)
        if found is None:
            self.engine.create_volume(name, driver, driver_opts, labels)
            return
        if any(found.labels.get(k) != v for k, v in labels.items()) or found.driver != driver:
            raise EngineError(
                f"this node already has a Docker volume {name} that this move did not make; "
                "it is left alone (remove or rename it, or move to another node)"
            )

    def drop_volume(self, name: str, labels: dict[str, str]) -> bool:
        """Remove the Docker volume if it carries all of ``labels`` (what made it); whether it is gone.
        One without them is left alone."""
        found = self.engine.volumes().get(name)
        if found is None:
            return True
        if any(found.labels.get(k) != v for k, v in labels.items()):
            log.info("leaving volume %s alone: not made by this operation", name)
            return False
        for container in self.engine.containers_using(name):
            if docker_labels.HELPER in container.labels:
                self.engine.remove(container.id)
        self.engine.remove_volume(name)
        return True

"""The agent's backup jobs: restic snapshots of Docker volumes and restores into them, each read
or written by restic running in a helper container that mounts the Docker volume (so any volume
driver works, and restic sees files: its de-duplication and change detection work per file).

    backup_run:  [watchdog] pause|stop the containers ─▶ restic backup /volume (one snapshot per
                 Docker volume, read-only mount) and the volume's manifest (beside restic for a
                 first backup; after it, reading only what restic found changed, for the next)
                 ─▶ unpause|start ─▶ job_done with the snapshots
    restore_run: [create the Docker volume] [stop its containers] ─▶ restic restore into it (over
                 existing data: into a staging folder first, swapped in only once complete) ─▶
                 start them ─▶ job_done

Each job runs in a thread of its own and reports progress as it goes (``job_progress``, at most
twice a second). The repository's password is written to a 0600 file of the job's own folder in
the agent's data dir, bind-mounted read-only into the helper container and given to restic with
``RESTIC_PASSWORD_FILE``: it is never in an argument, an environment or a log line.

A ``pause`` backup starts the pause watchdog (``pause_watchdog.py``, a process of its own session)
before anything is paused: if this agent dies mid-backup, the containers are unpaused when the
limit is reached all the same.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from moorage.agent import pause_watchdog, volume_manifest
from moorage.agent.engine import DockerHelpers, DockerJobs, Engine, EngineError, exec_output
from moorage.agent.restic_image import helper_image
from moorage.agent.volume_data import VolumeData
from moorage.errors import MoorageError
from moorage.model.backup import SNAPSHOT_PATH, is_local_repository, local_path
from moorage.model.docker_labels import BACKUP_JOB
from moorage.protocol import BackupRun, JobDone, JobProgress, RepositoryWire, RestoreRun, SnapshotTaken
from moorage.restic.local_repository import full_snapshot_id
from moorage.restic.output import Failure, Progress, Summary, Unchanged, parse_line

__all__ = ["AgentBackups", "Held"]

log = logging.getLogger("moorage.agent.backups")

PROGRESS_EVERY = 0.5


class JobFailed(MoorageError):
    """A step of a job failed; the message names the step and what restic or the engine said."""


@dataclass
class Held:
    """Container names convergence must leave as they are (stopped for a backup or a restore)."""

    names: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __contains__(self, name: object) -> bool:
        with self.lock:
            return name in self.names

    @contextlib.contextmanager
    def holding(self, names: list[str]) -> Iterator[None]:
        with self.lock:
            self.names.update(names)
        try:
            yield
        finally:
            with self.lock:
                self.names.difference_update(names)


class AgentBackups:
    def __init__(
        self,
        engine: Engine,
        send: Callable[[str], None],
        data_dir: Path,
        *,
        grid: str,
        docker_host: str | None,
        restic: str | None = None,
        held: Held | None = None,
    ) -> None:
        self.jobs = DockerJobs(engine)
        self.helpers = DockerHelpers(engine)
        self.send = send
        self.data_dir = data_dir
        self.grid = grid
        self.docker_host = docker_host
        self.restic = restic
        self.held = held or Held()

    def _volume_data(self) -> VolumeData:
        """Manifests are read with ``volume_data.py``'s helpers, in this node's restic image."""
        return VolumeData(self.helpers, helper_image(self.jobs, self.restic))

    def _compare(self, msg: RestoreRun) -> None:
        """A verify: the restored data's manifest against the one recorded at backup time."""
        if msg.expect is None:
            raise JobFailed("manifest missing: the backup recorded none to compare with")
        recorded = volume_manifest.from_json(json.dumps(msg.expect).encode())
        restored = self._volume_data().manifest(msg.docker_volume)
        where = volume_manifest.first_difference(recorded, restored)
        if where is not None:
            was, now = recorded.get(where), restored.get(where)
            raise JobFailed(
                f"manifest differs at {where}: backed up {was.describe() if was else 'nothing'}, "
                f"restored {now.describe() if now else 'nothing'}"
            )

    def _manifest(
        self,
        docker_volume: str,
        parent: list[Any] | None = None,
        unchanged: Callable[[], frozenset[str]] | None = None,
    ) -> list[Any]:
        """The manifest of the volume's data: every file read, or, after an incremental backup,
        the parent's entries for the files restic found unchanged since its parent (same size,
        mtime, ctime, inode; ``unchanged()`` waits for restic to say) and only the other paths
        read (their data and metadata, through a tar stream)."""
        data = self._volume_data()
        if parent is None or unchanged is None:
            found = data.manifest(docker_volume)
        else:
            before = volume_manifest.from_json(json.dumps(parent).encode())
            found = data.manifest_reusing(docker_volume, before, unchanged)
        rows: list[Any] = json.loads(volume_manifest.to_json(found))
        return rows

    @staticmethod
    def sweep(engine: Engine) -> int:
        """Remove the helper containers of jobs a previous run of this agent left behind (it died
        mid-job: those jobs failed with it); how many. Called once, when the agent starts."""
        jobs = DockerJobs(engine)
        found = jobs.containers(BACKUP_JOB)
        for container in found:
            jobs.remove(container.id)
        return len(found)

    def handle(self, msg: BackupRun | RestoreRun) -> None:
        """Start the job in a thread of its own; it reports through ``send``."""
        target = self._backup if isinstance(msg, BackupRun) else self._restore
        threading.Thread(target=self._run, args=(msg, target), name=f"job-{msg.job}", daemon=True).start()

    def _run(self, msg: BackupRun | RestoreRun, work: Callable[[Any, Path], JobDone]) -> None:
        folder = self.data_dir / "jobs" / msg.job
        started = time.monotonic()
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            done = work(msg, folder)
        except (MoorageError, OSError) as err:
            text = err.message if isinstance(err, MoorageError) else f"{type(err).__name__}: {err}"
            log.warning("job %s failed: %s", msg.job, text)
            done = JobDone(job=msg.job, error=text)
        except Exception as err:  # never a silent thread death: the master waits on this job
            log.exception("job %s failed", msg.job)
            done = JobDone(job=msg.job, error=f"the agent failed: {type(err).__name__}: {err}")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        done = done.model_copy(update={"seconds": time.monotonic() - started})
        with contextlib.suppress(Exception):  # the connection is gone: the master fails the job itself
            self.send(done.model_dump_json())

    # -- restic in a helper container ------------------------------------------------------------

    def _restic_setup(
        self, repository: RepositoryWire, folder: Path
    ) -> tuple[list[dict[str, Any]], dict[str, str], bool]:
        password = folder / "password"
        fd = os.open(password, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(repository.password.get_secret_value())
        cache = self.data_dir / "restic-cache"
        cache.mkdir(parents=True, exist_ok=True, mode=0o700)
        mounts: list[dict[str, Any]] = [
            {"type": "bind", "source": str(password), "target": "/run/password", "read_only": True},
            {"type": "bind", "source": str(cache), "target": "/cache"},
        ]
        url = repository.url
        local = is_local_repository(url)
        if local:
            path = local_path(url)
            if not Path(path).is_dir():
                raise JobFailed(
                    f"the backup repository {path} is not a folder on this node: mount it here "
                    "(the same path on every node, e.g. over NFS)"
                )
            mounts.append({"type": "bind", "source": path, "target": path})
            url = path
        env = {
            "RESTIC_REPOSITORY": url,
            "RESTIC_PASSWORD_FILE": "/run/password",
            "RESTIC_CACHE_DIR": "/cache",
            "RESTIC_PROGRESS_FPS": "2",
            "TMPDIR": "/tmp",
        }
        return mounts, env, not local

    def _helper(
        self,
        job: str,
        command: list[str],
        mounts: list[dict[str, Any]],
        env: dict[str, str],
        network: bool,
    ) -> str:
        image = helper_image(self.jobs, self.restic)
        name = f"moorage-job-{job}-{int(time.monotonic() * 1000) % 100000}"
        return self.jobs.run_oneshot(
            name,
            image,
            command,
            mounts=mounts,
            env=env,
            labels={BACKUP_JOB: job},
            network=network,
        )

    def _restic_backup(
        self,
        msg: BackupRun,
        folder: Path,
        docker_volume: str,
        host: str,
        tags: list[str],
        parent: str | None,
        taken_at: datetime,
    ) -> Summary:
        mounts, env, network = self._restic_setup(msg.repository, folder)
        mounts.append({"type": "volume", "source": docker_volume, "target": SNAPSHOT_PATH, "read_only": True})
        # the snapshot's time is the one given here (UTC, to the microsecond: restic reads a
        # fraction after the seconds), so the master records it without asking restic
        env = {**env, "TZ": "UTC"}
        when = taken_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        command = ["/usr/bin/restic", "backup", "--json", "--verbose", "--host", host, "--time", when]
        if parent is not None:
            command += ["--parent", parent]
        for tag in tags:
            command += ["--tag", tag]
        command.append(SNAPSHOT_PATH)
        container = self._helper(msg.job, command, mounts, env, network)
        summary: Summary | None = None
        unchanged: set[str] = set()
        failures: list[str] = []
        other: list[str] = []
        last = 0.0
        try:
            for raw in self.jobs.output_lines(container):
                line = raw.decode(errors="replace")
                parsed = parse_line(line)
                if isinstance(parsed, Progress) and time.monotonic() - last >= PROGRESS_EVERY:
                    last = time.monotonic()
                    self._progress(msg.job, parsed)
                elif isinstance(parsed, Unchanged):
                    unchanged.add(parsed.path)
                elif isinstance(parsed, Summary):
                    summary = parsed
                elif isinstance(parsed, Failure):
                    failures.append(parsed.message)
                elif parsed is None and line.strip():
                    other.append(line.strip())
            code = self.jobs.wait_exit(container)
        finally:
            self.jobs.remove(container)
        if code != 0 or summary is None:
            said = "; ".join((failures + other)[-3:]) or f"exit status {code}"
            raise JobFailed(f"restic backup of {docker_volume} failed: {said}")
        return replace(summary, unchanged=frozenset(unchanged))

    @staticmethod
    def _full_id(repository: RepositoryWire, short: str) -> str | None:
        """The snapshot's full id, read off a repository on a path of this node (restic 0.14's
        backup prints only the short one); None elsewhere: the master asks restic."""
        if not is_local_repository(repository.url):
            return None
        return full_snapshot_id(Path(local_path(repository.url)), short)

    def _progress(self, job: str, progress: Progress) -> None:
        self.send(
            JobProgress(
                job=job,
                bytes_done=progress.bytes_done,
                bytes_total=progress.bytes_total,
                files_done=progress.files_done,
                files_total=progress.files_total,
            ).model_dump_json()
        )

    # -- backup ------------------------------------------------------------------------------------

    def _backup(self, msg: BackupRun, folder: Path) -> JobDone:
        taken: list[SnapshotTaken] = []
        with self._quiesced(msg), ThreadPoolExecutor(1, thread_name_prefix=f"job-{msg.job}-manifest") as pool:
            for volume in msg.volumes:
                began = time.monotonic()
                taken_at = datetime.now(UTC)
                # the manifest is read beside restic (both read the same data, held still): all of
                # it for a first backup; after one, its helper starts and lists the volume while
                # restic runs, and reads only what restic did not find unchanged once it says
                said: Future[Summary] = Future()
                manifest_read = pool.submit(
                    self._manifest,
                    volume.docker_volume,
                    volume.parent_manifest,
                    None if volume.parent_manifest is None else partial(_unchanged, said),
                )
                try:
                    summary = self._restic_backup(
                        msg, folder, volume.docker_volume, volume.host, volume.tags, volume.parent, taken_at
                    )
                    said.set_result(summary)
                except BaseException as err:
                    said.set_exception(err)  # the manifest's reader stops waiting, and ends
                    raise
                finally:
                    wait([manifest_read])  # its helper is gone before the window closes, whatever happened
                read = time.monotonic()
                manifest = manifest_read.result()
                log.info(
                    "job %s: %s backed up in %.2fs (%d files, %d bytes added), manifest %s",
                    msg.job,
                    volume.docker_volume,
                    read - began,
                    summary.files,
                    summary.added,
                    "read beside it" if volume.parent_manifest is None else "of what changed, beside it",
                )
                taken.append(
                    SnapshotTaken(
                        docker_volume=volume.docker_volume,
                        snapshot=summary.snapshot,
                        snapshot_id=self._full_id(msg.repository, summary.snapshot),
                        time=taken_at,
                        size=summary.size,
                        files=summary.files,
                        added=summary.added,
                        duration=summary.duration,
                        manifest=manifest,
                    )
                )
        return JobDone(
            job=msg.job,
            snapshots=taken,
            bytes=sum(t.size for t in taken),
            files=sum(t.files for t in taken),
        )

    @contextlib.contextmanager
    def _quiesced(self, msg: BackupRun) -> Iterator[None]:
        running = [name for name in msg.containers if self.jobs.status(name) == "running"]
        if msg.quiesce == "none" or not running:
            yield
            return
        if msg.quiesce == "stop":
            with self.held.holding(running):
                try:
                    for name in running:
                        self.jobs.stop(name)
                    yield
                finally:
                    self._start_all(running)
            return
        watchdog = pause_watchdog.start(self.docker_host, msg.pause_limit, running)
        paused: list[str] = []
        try:
            for name in running:
                self.jobs.pause(name)
                paused.append(name)
            log.info("job %s: paused %s (watchdog at %.0fs)", msg.job, ", ".join(paused), msg.pause_limit)
            yield
        finally:
            for name in paused:
                try:
                    if self.jobs.status(name) == "paused":
                        self.jobs.unpause(name)
                except EngineError as err:
                    log.warning("job %s: could not unpause %s: %s", msg.job, name, err.message)
            watchdog.cancel()
            log.info("job %s: unpaused %s", msg.job, ", ".join(paused))

    def _start_all(self, names: list[str]) -> None:
        for name in names:
            try:
                self.jobs.start(name)
            except EngineError as err:
                log.warning("could not start %s again: %s", name, err.message)

    # -- restore -----------------------------------------------------------------------------------

    def _restore(self, msg: RestoreRun, folder: Path) -> JobDone:
        existing = self.jobs.volumes()
        if msg.create is not None:
            if msg.docker_volume in existing:
                raise JobFailed(
                    f"Docker volume {msg.docker_volume} already exists on this node: restore --as another name"
                )
            spec = msg.create
            self.jobs.create_volume(spec.name, spec.driver, spec.driver_opts, spec.labels)
        elif msg.docker_volume not in existing:
            raise JobFailed(f"Docker volume {msg.docker_volume} is not on this node")
        stopped = [name for name in msg.stop if self.jobs.status(name) in ("running", "paused", "restarting")]
        with self.held.holding(list(msg.stop)):
            try:
                for name in stopped:
                    self.jobs.stop(name)
                restored = self._restic_restore(msg, folder)
                if msg.scratch:
                    self._compare(msg)
            except BaseException:
                if msg.create is not None:  # ours, made for this restore: nothing else has it
                    with contextlib.suppress(EngineError):
                        self.jobs.remove_volume(msg.docker_volume)
                raise
            finally:
                self._start_all(stopped)
        if msg.scratch and msg.create is not None:  # made for this verify: gone with it
            with contextlib.suppress(EngineError):
                self.jobs.remove_volume(msg.docker_volume)
        return restored

    def _restic_restore(self, msg: RestoreRun, folder: Path) -> JobDone:
        mounts, env, network = self._restic_setup(msg.repository, folder)
        mounts.append({"type": "volume", "source": msg.docker_volume, "target": SNAPSHOT_PATH})
        if msg.replace:
            staging = f"{SNAPSHOT_PATH}/.moorage-restore-{msg.job}"
            script = (
                "set -e; "
                f'restic restore "$1" --target {staging}; '
                f"find {SNAPSHOT_PATH} -mindepth 1 -maxdepth 1 ! -name .moorage-restore-{msg.job} "
                "-exec rm -rf {} \\; ; "
                f"find {staging}{SNAPSHOT_PATH} -mindepth 1 -maxdepth 1 -exec mv {{}} {SNAPSHOT_PATH}/ \\; ; "
                f"rm -rf {staging}"
            )
            command = ["/bin/sh", "-c", script, "sh", msg.snapshot]
        else:
            command = ["/usr/bin/restic", "restore", msg.snapshot, "--target", "/"]
        container = self._helper(msg.job, command, mounts, env, network)
        stop = threading.Event()
        watcher = threading.Thread(target=self._watch_restore, args=(msg.job, container, stop), daemon=True)
        watcher.start()
        try:
            output = [raw.decode(errors="replace").strip() for raw in self.jobs.output_lines(container)]
            code = self.jobs.wait_exit(container)
        finally:
            stop.set()
            watcher.join(timeout=5)
            self.jobs.remove(container)
        if code != 0:
            said = "; ".join(line for line in output if line)[-600:] or f"exit status {code}"
            if msg.replace:
                said += " (the volume's data was left as it was)"
            raise JobFailed(f"restic restore of {msg.snapshot[:8]} into {msg.docker_volume} failed: {said}")
        return JobDone(job=msg.job)

    def _watch_restore(self, job: str, container: str, stop: threading.Event) -> None:
        """restic 0.14 prints no progress while it restores: count what is in the volume instead."""
        started = time.monotonic()
        while not stop.wait(1.0):
            try:
                out = exec_output(self.jobs, container, ["/bin/du", "-sk", SNAPSHOT_PATH]).decode()
                done = int(out.split()[0]) * 1024
            except (EngineError, ValueError, IndexError):
                continue
            with contextlib.suppress(Exception):
                self.send(
                    JobProgress(
                        job=job, bytes_done=done, seconds=time.monotonic() - started
                    ).model_dump_json()
                )


def _unchanged(said: Future[Summary]) -> frozenset[str]:
    """The files restic found unchanged since its parent, once it said (its error if it failed)."""
    return said.result().unchanged

"""Processes the testbed starts and stops, always named by pid plus start time, never by name.

A pid alone can be reused by an unrelated process once ours has exited; pairing it with the
process start time from ``/proc/<pid>/stat`` makes a :class:`ProcessRef` safe to signal later,
from another invocation of the command line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moorage.testbed.errors import TestbedError
from moorage.testbed.waiting import wait_for

__all__ = ["ProcessRef", "kill_all", "log_tail", "spawn", "stop_process", "stop_processes"]

# Popen objects of the children this Python process started, so that exited ones are reaped
# (and never mistaken for live zombies) and no ResourceWarning fires when they are dropped.
_children: dict[int, subprocess.Popen[bytes]] = {}


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name, or None when there is no such pid."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return raw[raw.rfind(")") + 2 :].split()


@dataclass(frozen=True)
class ProcessRef:
    """One process: its pid and its start time (clock ticks after boot)."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> ProcessRef | None:
        """The running process with this pid, or None when there is none."""
        fields = _stat_fields(pid)
        if fields is None:
            return None
        return cls(pid=pid, start_time=int(fields[19]))

    def alive(self) -> bool:
        """True while this very process exists and has not exited (zombies count as exited)."""
        child = _children.get(self.pid)
        if child is not None and child.poll() is not None:
            del _children[self.pid]
            return False
        fields = _stat_fields(self.pid)
        if fields is None or int(fields[19]) != self.start_time:
            return False
        if fields[0] in ("Z", "X"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, os.WNOHANG)
            return False
        return True

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """Send ``sig`` to the process (or to its process group) if it is still this process."""
        if not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            if group and os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_time": self.start_time}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRef:
        return cls(pid=int(data["pid"]), start_time=int(data["start_time"]))


def spawn(
    argv: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ProcessRef:
    """Start ``argv`` in a new session with stdout and stderr appended to ``log``.

    The process outlives this Python process (a later ``testbed down`` stops it by its ref).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        try:
            child = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )
        except OSError as exc:
            raise TestbedError(f"Could not start {argv[0]}: {exc}") from exc
    _children[child.pid] = child
    ref = ProcessRef.of(child.pid)
    if ref is None:  # exited before we could read its start time
        child.wait()
        del _children[child.pid]
        raise TestbedError(f"{argv[0]} exited at once with status {child.returncode}. {log_tail(log)}")
    return ref


def stop_process(ref: ProcessRef, *, what: str, grace: float = 10.0, group: bool = True) -> None:
    """SIGTERM (to the process group by default), wait up to ``grace`` s, then SIGKILL and wait."""
    stop_processes([(what, ref)], grace=grace, group=group)


def stop_processes(
    named: Sequence[tuple[str, ProcessRef]], *, grace: float = 10.0, group: bool = True
) -> None:
    """Stop several processes at once: SIGTERM to all, up to ``grace`` s, then SIGKILL to the rest."""
    running = [(what, ref) for what, ref in named if ref.alive()]
    if not running:
        return
    for _, ref in running:
        ref.signal(signal.SIGTERM, group=group)
    with contextlib.suppress(TestbedError):
        wait_for(lambda: not any(ref.alive() for _, ref in running), timeout=grace, what="processes to exit")
    stubborn = [(what, ref) for what, ref in running if ref.alive()]
    for _, ref in stubborn:
        ref.signal(signal.SIGKILL, group=group)
    if stubborn:
        wait_for(
            lambda: not any(ref.alive() for _, ref in stubborn),
            timeout=10.0,
            what=", ".join(f"{what} (pid {ref.pid})" for what, ref in stubborn) + " to die after SIGKILL",
        )


def kill_all(refs: Iterable[ProcessRef], *, what: str, timeout: float = 10.0) -> None:
    """SIGKILL each process and wait until all of them are gone."""
    targets = [ref for ref in refs if ref.alive()]
    for ref in targets:
        ref.signal(signal.SIGKILL)
    wait_for(
        lambda: not any(ref.alive() for ref in targets),
        timeout=timeout,
        what=f"{what} (pids {', '.join(str(r.pid) for r in targets)}) to die after SIGKILL",
    )


def log_tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file, introduced by its path, for error messages."""
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {log})"
    tail = "\n".join(text.rstrip().splitlines()[-lines:])
    return f"Last lines of {log}:\n{tail}" if tail else f"(log {log} is empty)"

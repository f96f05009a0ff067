"""Issue 16 item 2 as a user sees it: `moorage service logs` and `moorage service exec` reach a
container on a real engine through its node's agent (the agent dials out; the master relays)."""

from __future__ import annotations

import fcntl
import os
import pty
import queue
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import Bed
from tests.e2e.test_e2e_stacks import containers, stack_file
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def _lines(proc: subprocess.Popen[str]) -> queue.SimpleQueue[str]:
    lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    return lines


def _in_terminal(
    bed: Bed, args: list[str], steps: list[tuple[bytes, bytes]], timeout: float = 60
) -> tuple[int, bytes]:
    """Run the CLI on a 100x30 pseudo-terminal; for each step type its keys, then wait until the
    terminal shows its answer. The exit status and all the terminal showed."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "moorage", *args],
        env={**os.environ, **bed.env},
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        close_fds=True,
    )
    os.close(terminal)
    shown = b""
    try:
        for keys, answer in steps:
            os.write(controller, keys)
            shown = _read_until(controller, shown, answer, timeout)
        code = proc.wait(timeout)
        while select.select([controller], [], [], 0.2)[0]:
            try:
                shown += os.read(controller, 4096)
            except OSError:  # the terminal closed with the CLI
                break
        return code, shown
    finally:
        proc.kill()
        os.close(controller)


def _read_until(fd: int, shown: bytes, expected: bytes, timeout: float) -> bytes:
    start = len(shown)

    def more() -> bool:
        nonlocal shown
        if select.select([fd], [], [], 0.2)[0]:
            shown += os.read(fd, 4096)
        return expected in shown[start:]

    wait_until(more, timeout, f"the terminal to show {expected!r}; it showed {shown[start:]!r}", interval=0)
    return shown


def test_exec_and_logs_reach_a_redis_container_through_its_agent(bed: Bed, tmp_path: Path) -> None:
    path = stack_file(
        tmp_path,
        "redis",
        """
        services:
          redis:
            image: redis:local
            command: redis-server --appendonly yes
        """,
    )
    bed.ok("stack", "install", str(path))
    try:
        (found,) = containers(bed, "testbed/redis/redis").values()
        prefix = f"redis-1@{found['node']} | "

        ping = bed.run("service", "exec", "redis/redis", "1", "--", "redis-cli", "ping")
        assert (ping.code, ping.out, ping.err) == (0, "PONG\n", "")
        failing = bed.run("service", "exec", "redis/redis", "1", "--", "sh", "-c", "echo no good >&2; exit 3")
        assert (failing.code, failing.out, failing.err) == (3, "", "no good\n")
        piped = bed.run(
            "service", "exec", "-i", "redis/redis", "1", "--", "redis-cli", input="SET k v\nGET k\n"
        )
        assert (piped.code, piped.out) == (0, "OK\nv\n")
        missing = bed.run("service", "exec", "redis/redis", "1", "--", "no-such-program")
        assert missing.code in (126, 127), missing.text

        logs = bed.ok("service", "logs", "redis/redis")
        assert any(
            line.startswith(prefix) and "Ready to accept connections" in line for line in logs.splitlines()
        )

        follow = subprocess.Popen(
            [sys.executable, "-m", "moorage", "service", "logs", "-f", "--tail", "1", "redis/redis", "1"],
            env={**os.environ, **bed.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            lines = _lines(follow)
            assert lines.get(timeout=30).startswith(prefix)  # the last line so far: it is following
            marker = f"printed after the command started {uuid.uuid4().hex[:8]}"
            bed.ok("service", "exec", "redis/redis", "1", "--", "sh", "-c", f"echo {marker} > /proc/1/fd/1")
            assert lines.get(timeout=30) == f"{prefix}{marker}\n"
            follow.send_signal(signal.SIGINT)
            assert follow.wait(30) == 130
        finally:
            follow.kill()

        code, shown = _in_terminal(
            bed,
            ["service", "exec", "-it", "redis/redis", "1", "--", "sh"],
            [
                (b"", b"# "),  # the shell's prompt: it runs on a terminal
                (b"echo $((6 * 7))\r", b"42\r\n"),
                (b"tty; stty size\r", b"30 100\r\n"),  # the container's terminal has the user's size
                (b"exit 5\r", b"exit 5"),
            ],
        )
        assert code == 5, shown
        assert b"/dev/pts/" in shown, shown
    finally:
        bed.ok("stack", "rm", "--force", "redis")

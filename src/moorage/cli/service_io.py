"""``moorage service logs`` and ``moorage service exec``: the master relays both to the agents.

Logs print ``redis-1@node-1 | line`` (stdout lines on stdout, stderr lines on stderr), or the
master's NDJSON with ``--json``; exit 1 if any instance could not be read to the end.

Exec exits with the command's exit status. Its own errors: 1 before the command started (the
master refused: unknown service or instance, node offline, no such container), 255 when the
outcome is not known (the connection to the node or the master was lost while it ran), 130 on
Ctrl-C without a terminal (with ``-t`` Ctrl-C goes to the command).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import typer

from moorage.cli.context import CliContext
from moorage.cli.output import print_error
from moorage.model.log_time import parse_since
from moorage.model.stack import NULL_STACK

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

__all__ = ["checked_since", "run_exec", "show_logs"]

STDIN_READ = 32 * 1024
LOST = 255


def _path(grid: str, ref: str) -> tuple[str, str]:
    stack, sep, name = ref.rpartition("/")
    return f"/v1/services/{grid}/{stack if sep else NULL_STACK}/{name}", name


def checked_since(value: str | None) -> str | None:
    """``--since`` as unix seconds for the master (a bad one is a usage error: exit 2)."""
    if value is None:
        return None
    try:
        return repr(parse_since(value, time.time()))
    except ValueError as err:
        raise typer.BadParameter(str(err)) from err


def show_logs(
    cli: CliContext,
    ref: str,
    instance: int | None,
    *,
    follow: bool,
    tail: int | None,
    since: str | None,
    timestamps: bool,
    as_json: bool,
) -> int:
    path, service = _path(cli.grid, ref)
    params: dict[str, Any] = {"follow": follow, "timestamps": timestamps}
    for key, value in (("instance", instance), ("tail", tail), ("since", since)):
        if value is not None:
            params[key] = value
    failed = False
    width = 0
    with cli.client() as client:
        for record in client.stream_lines(f"{path}/logs", params, read_timeout=None if follow else 120):
            failed = failed or "error" in record
            if as_json:
                sys.stdout.write(json.dumps(record) + "\n")
                sys.stdout.flush()
                continue
            label = f"{service}-{record.get('instance')}@{record.get('node')}"
            if "error" in record:
                print_error(f"{label}: {record['error']}")
                continue
            width = max(width, len(label))
            text = f"{record['time']} {record['line']}" if "time" in record else record["line"]
            out = sys.stderr if record.get("stream") == "stderr" else sys.stdout
            out.write(f"{label.ljust(width)} | {text}\n")
            out.flush()
    return 1 if failed else 0


def run_exec(
    cli: CliContext, ref: str, instance: int, cmd: list[str], *, interactive: bool, tty: bool
) -> int:
    path, _ = _path(cli.grid, ref)
    terminal = tty and sys.stdin.isatty()  # a raw terminal only when there is one; plain pipes otherwise
    params = [("instance", str(instance)), *(("cmd", part) for part in cmd)]
    params += [("tty", str(terminal).lower()), ("stdin", str(interactive).lower())]
    if terminal:
        size = _terminal_size()
        if size is not None:
            params += [("width", str(size[0])), ("height", str(size[1]))]
    with cli.client() as client:
        ws = client.websocket(f"{path}/exec", params)
    return _Exec(ws, interactive=interactive, terminal=terminal).run()


def _terminal_size() -> tuple[int, int] | None:
    for stream in (sys.stdout, sys.stdin):
        try:
            size = os.get_terminal_size(stream.fileno())
        except (OSError, ValueError):
            continue
        if size.columns and size.lines:  # a terminal nobody sized says 0x0
            return size.columns, size.lines
    return None


class _Exec:
    """One command's WebSocket: output to stdout/stderr, stdin and resizes to the master."""

    def __init__(self, ws: ClientConnection, *, interactive: bool, terminal: bool) -> None:
        self.ws = ws
        self.interactive = interactive
        self.terminal = terminal
        self.resized = threading.Event()
        self.done = threading.Event()

    def run(self) -> int:
        from moorage.cli.terminal import raw_terminal

        code: int | None = None
        error: str | None = None
        previous = signal.signal(signal.SIGWINCH, lambda *_: self.resized.set()) if self.terminal else None
        try:
            with raw_terminal(sys.stdin.fileno()) if self.terminal else nullcontext():
                if self.interactive:
                    threading.Thread(target=self._stdin, name="moorage-exec-stdin", daemon=True).start()
                if self.terminal:
                    threading.Thread(target=self._resizes, name="moorage-exec-resize", daemon=True).start()
                code, error = self._output()
        finally:
            self.done.set()
            self.resized.set()
            if previous is not None:
                signal.signal(signal.SIGWINCH, previous)
            self.ws.close()
        if code is not None:
            return code
        print_error(
            error or "the connection to the master was lost before the command ended; its outcome is unknown"
        )
        return LOST

    def _output(self) -> tuple[int | None, str | None]:
        from websockets.exceptions import ConnectionClosed

        stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    out = stderr if message[:1] == b"\x02" else stdout
                    out.write(message[1:])
                    out.flush()
                    continue
                frame = json.loads(message)
                if frame.get("type") == "exit":
                    return int(frame["code"]), None
                if frame.get("type") == "error":
                    return None, str(frame.get("message"))
        except ConnectionClosed:
            pass
        return None, None

    def _stdin(self) -> None:
        from websockets.exceptions import ConnectionClosed

        fd = sys.stdin.fileno()
        try:
            while not self.done.is_set():
                data = os.read(fd, STDIN_READ)
                if not data:
                    self.ws.send(json.dumps({"type": "eof"}))
                    return
                self.ws.send(b"\x00" + data)
        except (ConnectionClosed, OSError):
            return

    def _resizes(self) -> None:
        from websockets.exceptions import ConnectionClosed

        while True:
            self.resized.wait()
            self.resized.clear()
            if self.done.is_set():
                return
            size = _terminal_size()
            if size is None:
                continue
            try:
                self.ws.send(json.dumps({"type": "resize", "width": size[0], "height": size[1]}))
            except ConnectionClosed:
                return

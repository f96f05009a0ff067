"""A node's link to the master: a TCP relay on 127.0.0.1 that the testbed can cut and heal.

Each testbed agent dials its node's relay instead of the master; the relay opens one
connection to the master per agent connection and copies bytes both ways. ``cut`` makes it a
partition: no byte is forwarded any more in either direction and no new connection reaches the
master, but no connection is closed or reset either (bytes already sent wait, as they would in
the network, and flow again on ``heal``; a peer's close is passed on only after ``heal``). Both
ends therefore learn of a cut only the way they would in a real one: by silence.

Run as ``python -m moorage.testbed.relay --listen PORT --upstream HOST:PORT --control SOCK``.
The control socket takes one line, ``cut``, ``heal`` or ``state``, and answers ``cut`` or
``healed`` once that is in force.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
from pathlib import Path

__all__ = ["Relay", "control", "main"]

log = logging.getLogger("moorage.testbed.relay")

CHUNK = 65536
LOOPBACK = "127.0.0.1"


class Relay:
    """Forwards 127.0.0.1:``listen`` to ``upstream`` while healed; holds every byte while cut."""

    def __init__(self, listen: int, upstream: tuple[str, int], control_socket: Path, *, cut: bool) -> None:
        self.listen = listen
        self.upstream = upstream
        self.control_socket = control_socket
        self.healed = asyncio.Event()
        if not cut:
            self.healed.set()
        self.connections = 0

    async def serve(self, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._connection, LOOPBACK, self.listen, reuse_address=True)
        self.control_socket.unlink(missing_ok=True)
        controls = await asyncio.start_unix_server(self._control, path=str(self.control_socket))
        log.info(
            "relaying 127.0.0.1:%d to %s:%d (%s)",
            self.listen,
            *self.upstream,
            "healed" if self.healed.is_set() else "cut",
        )
        async with server, controls:
            await stop.wait()
        self.control_socket.unlink(missing_ok=True)

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            command = (await reader.readline()).decode(errors="replace").strip()
            if command == "cut" and self.healed.is_set():
                self.healed.clear()
                log.info("cut: holding every byte of %d connection(s)", self.connections)
            elif command == "heal" and not self.healed.is_set():
                self.healed.set()
                log.info("healed: forwarding again")
            elif command not in ("cut", "heal", "state"):
                writer.write(f"unknown command {command!r}\n".encode())
                return
            writer.write(b"healed\n" if self.healed.is_set() else b"cut\n")
            await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.healed.wait()  # a connection made during a cut reaches the master on heal
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            except OSError as err:
                log.info("master not reachable at %s:%d: %s", *self.upstream, err)
                return
            try:
                await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
            finally:
                up_writer.close()
                with contextlib.suppress(OSError):
                    await up_writer.wait_closed()
        finally:
            self.connections -= 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction; each chunk (and the end of the stream) passes only while healed."""
        try:
            while True:
                await self.healed.wait()
                data = await reader.read(CHUNK)
                await self.healed.wait()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except OSError:
            writer.close()  # a reset on one side resets the other: the relay adds no silence of its own


def control(control_socket: Path, command: str, timeout: float = 5.0) -> str:
    """Send ``cut``, ``heal`` or ``state`` to a running relay; its answer (``cut`` or ``healed``)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(control_socket))
        sock.sendall(command.encode() + b"\n")
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(256)
            if not chunk:
                break
            answer += chunk
    return answer.decode(errors="replace").strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m moorage.testbed.relay")
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the master (loopback)")
    parser.add_argument("--control", type=Path, required=True, help="unix socket for cut/heal/state")
    parser.add_argument("--cut", action="store_true", help="start cut off")
    args = parser.parse_args(argv)
    host, _, port = args.upstream.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    relay = Relay(args.listen, (host, int(port)), args.control, cut=args.cut)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await relay.serve(stop)

    asyncio.run(run())


if __name__ == "__main__":
    main()

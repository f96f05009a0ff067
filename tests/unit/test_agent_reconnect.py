"""An agent whose connection ends while a convergence pass runs in its thread is back with a
master at once, and its next pass waits for that one: two passes never run at once
(``agent/runner.py``: ``converging``). They did: a connection's end cancels its loop but not the
pass in its thread (stopping containers can keep one busy for seconds), and the new
connection's passes ran beside it, each acting on the same containers. Here the master is a
real WebSocket server on loopback; the engine is not needed (the converger is the test's,
blocking until released)."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from websockets.asyncio.server import ServerConnection, serve

from moorage.agent import runner
from moorage.agent.runner import Agent, AgentConfig
from moorage.protocol import Desired, NodeInfoWire, StatusMsg, Welcome

GRID = "g"


class _BlockingConverger:
    """A pass blocks until ``release``; how many ran at once, at most."""

    def __init__(self) -> None:
        self.grid = GRID
        self.release = threading.Event()
        self.started = threading.Event()
        self.running = 0
        self.most = 0
        self.passes = 0
        self._lock = threading.Lock()

    def converge(self, desired: Desired) -> StatusMsg:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.set()
        try:
            self.release.wait(30)
            return StatusMsg(instances=[])
        finally:
            with self._lock:
                self.running -= 1
                self.passes += 1


async def _nothing() -> None:
    return None


def test_a_connection_that_ends_mid_pass_is_followed_at_once_and_passes_never_overlap(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "Engine", lambda host: SimpleNamespace(client=SimpleNamespace(api=None)))
    monkeypatch.setattr(runner, "BACKOFF_START", 0.05)

    async def scenario() -> None:
        hellos: asyncio.Queue[float] = asyncio.Queue()
        converger = _BlockingConverger()

        async def master(ws: ServerConnection) -> None:
            await ws.recv()  # the hello
            await hellos.put(time.monotonic())
            welcome = Welcome(node_id="n-1", name="node-1", grid=GRID, heartbeat_interval=30)
            await ws.send(welcome.model_dump_json())
            await ws.send(Desired(seq=hellos.qsize()).model_dump_json())
            if hellos.qsize() == 1:  # the first connection dies while its pass runs
                await asyncio.to_thread(converger.started.wait, 10)
                await ws.close()
                return
            await ws.wait_closed()

        async with serve(master, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            agent = Agent(AgentConfig(masters=(f"http://127.0.0.1:{port}",), token="t", data_dir=tmp_path))
            agent.converger = converger  # type: ignore[assignment]
            agent.volume_data = SimpleNamespace()  # type: ignore[assignment]  # no helpers to sweep
            agent._sweep = _nothing  # type: ignore[method-assign]  # nor backup helpers
            agent.node_info = lambda: NodeInfoWire(engine_version="x", cpus=1, memory=1, drivers=[])  # type: ignore[method-assign]
            running = asyncio.create_task(agent.run())
            try:
                await asyncio.wait_for(hellos.get(), 10)
                second = await asyncio.wait_for(hellos.get(), 10)  # back while the first pass still runs
                assert converger.running == 1 and converger.passes == 0, "the first pass still runs"
                deadline = time.monotonic() + 10
                while not (
                    agent.desired is not None and agent.desired.seq == 2 and not agent.converge_now.is_set()
                ):
                    assert time.monotonic() < deadline, "the second connection never asked for a pass"
                    await asyncio.sleep(0.01)
                # its pass is handed to a thread now; without the lock it would run beside the first
                # within moments: give it that long (a bound, not a condition that can come true)
                await asyncio.sleep(0.5)
                assert converger.running == 1, "the second pass waits for the first"
                converger.release.set()
                deadline = time.monotonic() + 10
                while converger.passes < 2 and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert converger.passes >= 2, "the second connection's pass ran after the first"
                assert converger.most == 1, "never two passes at once"
                assert second > 0
            finally:
                converger.release.set()
                agent.stopping.set()
                await asyncio.wait_for(running, 10)

    asyncio.run(scenario())

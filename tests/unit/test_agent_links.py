"""The holding master's side of a link (``LinkedAgents``): what another master sends is passed to
the agent as it is, what the agent answers on the link's streams and jobs goes back over the link
(and not to this master's own relay), a late credit or cancel of a stream that ended here is
dropped as an agent drops it, and what a link does not carry closes it with the reason. Real
protocol messages; the sockets are in-memory stand-ins. (Real masters and sockets:
tests/api/test_agent_links.py; real engines: tests/e2e/test_e2e_masters.py.)"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import SecretStr

from moorage.master.agent_links import BROKEN, LinkedAgents, LinkReady
from moorage.protocol import (
    BackupRun,
    BackupVolume,
    Desired,
    JobDone,
    JobProgress,
    RepositoryWire,
    StreamCredit,
    StreamEnd,
    StreamOutput,
    VolumeOpen,
    agent_data_frame,
)


@dataclass(eq=False)
class _Conn:
    node_id: str = "n1"
    name: str = "node-1"
    binary_data: bool = False
    sent: list[str] = field(default_factory=list)

    async def send(self, text: str) -> None:
        self.sent.append(text)

    async def send_data(self, frame: bytes) -> None:
        raise AssertionError("this agent takes no binary frames")


class _Socket:
    """The link's socket as the holding master sees it: ``incoming`` from the other master."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.out: list[str | bytes] = []
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return await self.incoming.get()

    async def send_text(self, text: str) -> None:
        self.out.append(text)

    async def send_bytes(self, data: bytes) -> None:
        self.out.append(data)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)
        self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    def say(self, text: str) -> None:
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_link_passes_streams_and_jobs_both_ways_and_drops_late_credits() -> None:
    async def scenario() -> None:
        links, conn, socket = LinkedAgents(), _Conn(), _Socket()
        served = asyncio.create_task(links.serve(cast(Any, socket), cast(Any, conn), "master-a"))
        await _settle()
        assert LinkReady.model_validate_json(cast(str, socket.out[0])).name == "node-1"

        opened = VolumeOpen(stream="s1", op="read", volume="data").model_dump_json()
        socket.say(opened)
        await _settle()
        assert conn.sent == [opened], "passed to the agent as it came"

        output = StreamOutput(stream="s1", data=b"bytes of the volume")
        assert links.take(cast(Any, conn), output, output.model_dump_json())
        end = StreamEnd(stream="s1").model_dump_json()
        assert links.take(cast(Any, conn), StreamEnd(stream="s1"), end)
        assert not links.take(cast(Any, conn), StreamEnd(stream="other"), None), (
            "not the link's: this master's"
        )
        await _settle()
        frame = socket.out[1]
        assert isinstance(frame, bytes) and agent_data_frame(frame).data == b"bytes of the volume"
        assert socket.out[2] == end

        socket.say(StreamCredit(stream="s1", bytes=19).model_dump_json())  # sent before A saw the end
        run = BackupRun(
            job="j1",
            repository=RepositoryWire(url="/r", password=SecretStr("p")),
            volumes=[BackupVolume(docker_volume="data", host="h")],
        )
        socket.say(run.model_dump_json())
        await _settle()
        assert len(conn.sent) == 2 and '"backup_run"' in conn.sent[1], "the late credit was dropped"
        assert socket.closed is None, "and the link stays open"

        progress = JobProgress(job="j1", bytes=1, files=1)
        assert links.take(cast(Any, conn), progress, progress.model_dump_json())
        done = JobDone(job="j1")
        assert links.take(cast(Any, conn), done, done.model_dump_json())
        assert not links.take(cast(Any, conn), JobDone(job="j1"), None), "a job is the link's until done"

        socket.say(Desired().model_dump_json())
        await asyncio.wait_for(served, 5)
        assert socket.closed is not None and socket.closed[0] == BROKEN
        assert "desired message is not carried over a link" in socket.closed[1]
        assert links.count() == 0

    asyncio.run(scenario())

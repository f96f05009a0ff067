"""The holding master's side of a link (``LinkedAgents``): what another master sends is passed to
the agent as it is, what the agent answers on the link's streams and jobs goes back over the link
(and not to this master's own relay), a late credit or cancel of a stream that ended here is
dropped as an agent drops it, and what a link does not carry closes it with the reason. Real
protocol messages; the sockets are in-memory stand-ins. (Real masters and sockets:
tests/api/test_agent_links.py; real engines: tests/e2e/test_e2e_masters.py.)"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from pydantic import SecretStr

from moorage.master.agent_links import BROKEN, AgentLinks, LinkedAgents, LinkReady, PeerLink
from moorage.master.forwarding import PeerMaster
from moorage.master.leadership import MasterIdentity
from moorage.master.streams import StreamRelay
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


async def _until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


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


class _PeerSocket:
    """A link's socket as the master that opened it sees it: frames from the holder, and a close."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self.close_reason: str | None = None
        self.closed = False

    async def send(self, frame: str | bytes) -> None:
        if self.closed:
            raise ConnectionError("closed")

    async def close(self) -> None:
        self.closed = True
        self.frames.put_nowait(None)

    def __aiter__(self) -> _PeerSocket:
        return self

    async def __anext__(self) -> str | bytes:
        frame = await self.frames.get()
        if frame is None:
            raise StopAsyncIteration
        return frame


def test_idle_links_close_and_a_link_that_ends_fails_only_the_jobs_it_carried() -> None:
    async def scenario() -> None:
        relay = StreamRelay()
        hub = SimpleNamespace(relay=relay, connections={}, job_messages=None)
        links = AgentLinks(
            cast(Any, hub), MasterIdentity(name="a", url="http://a"), ssl.create_default_context()
        )
        lost: list[tuple[str, set[str]]] = []

        async def link_lost(node_id: str, name: str, why: str, jobs: set[str]) -> None:
            lost.append((name, jobs))

        links.link_lost = link_lost
        via = PeerMaster("b-id", "b", "http://b")
        sockets = {n: _PeerSocket() for n in ("idle", "job", "stream")}
        made = {n: PeerLink(cast(Any, s), f"id-{n}", n, via) for n, s in sockets.items()}
        for link in made.values():
            links._links[link.node_id] = link
            links._readers.add(asyncio.create_task(links._read(link)))
        links.sent_job(made["job"], "j1")
        links.sent_job(made["job"], "j2")
        sockets["job"].frames.put_nowait(JobDone(job="j1").model_dump_json())  # j1 ended, j2 runs
        stream = await relay.open(made["stream"], VolumeOpen(stream="x", op="read", volume="v"))
        await _settle()
        for link in made.values():
            link.used -= 120  # nothing carried for two minutes
        links.idle_close = 0.08
        reaper = asyncio.create_task(links._close_idle())
        await _until(lambda: "id-idle" not in links._links)
        assert sockets["idle"].closed and lost == [], "an idle link ends without failing anything"
        passes = links._passes
        await _until(lambda: links._passes >= passes + 2)  # two more looks at the others
        assert not sockets["job"].closed and not sockets["stream"].closed, "a job or a stream keeps one open"

        stream.close()
        await _until(lambda: sockets["stream"].closed)  # once its stream is over it is idle too

        await sockets["job"].close()  # the holder went away while j2 runs
        await _settle()
        assert lost == [("job", {"j2"})]
        reaper.cancel()
        await links.stop()

    asyncio.run(scenario())

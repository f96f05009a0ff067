"""Which instances a logs or exec request reaches (master/service_io.pick) and the NDJSON lines a
log stream becomes (LogFeed); the `--since` parser (model/log_time)."""

from __future__ import annotations

import asyncio
import json

import pytest

from moorage.errors import Conflict, NotFound
from moorage.master.forwarding import PeerMaster
from moorage.master.service_io import LINE_BYTES, LogFeed, Target, pick
from moorage.master.streams import StreamRelay
from moorage.model.log_time import parse_since
from moorage.protocol import LogsOpen, StreamCancel, StreamEnd, StreamOutput
from moorage.store.instance_places import InstancePlace
from tests.unit.test_stream_relay import Peer, settle


def place(
    number: int, node: str | None = "node-1", status: str = "online", state: str = "running"
) -> InstancePlace:
    return InstancePlace(
        number=number,
        node_id=f"id-{node}" if node else None,
        node=node,
        node_status=status if node else None,
        container=f"redis.redis-{number}" if node else None,
        state=state,
        reason=None if node else "0/3 nodes available: 3 node(s) lack volume driver dirvol",
    )


PEERS = {"id-node-1": Peer("node-1"), "id-node-2": Peer("node-2")}


@pytest.mark.parametrize(
    ("places", "instance", "error", "message"),
    [
        pytest.param([place(1), place(2)], 3, NotFound,
                     "Service redis/redis has no instance 3 (it has: 1, 2); 'moorage service show redis/redis' "
                     "lists them", id="unknown-instance"),
        pytest.param([], None, Conflict,
                     "Service redis/redis has no instances yet; 'moorage service deploy redis/redis' places them",
                     id="no-instances"),
        pytest.param([place(1, "node-2", status="offline")], 1, Conflict,
                     "node node-2 is offline; instance redis-1 is there, reachable once its agent reconnects",
                     id="offline-node"),
        pytest.param([place(1, "node-3")], 1, Conflict,
                     "node node-3 is not connected to this master (reconnecting, or connected to another master); "
                     "instance redis-1 is there, try again", id="elsewhere"),
        pytest.param([place(1, None, state="pending")], None, Conflict,
                     "instance redis-1 is pending and on no node: 0/3 nodes available: 3 node(s) lack volume driver "
                     "dirvol", id="pending"),
    ],
)  # fmt: skip
def test_unreachable_instances_are_refused_with_the_reason(
    places: list[InstancePlace], instance: int | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as caught:
        pick(places, instance, "redis", "redis", PEERS.get)
    assert str(caught.value) == message


def test_every_instance_that_can_be_reached_is_and_the_others_are_named() -> None:
    places = [place(1), place(2, "node-2", status="offline"), place(3, "node-2")]
    picked = pick(places, None, "redis", "redis", PEERS.get)
    assert [(t.label, t.node, t.container) for t in picked.targets] == [
        ("redis-1", "node-1", "redis.redis-1"),
        ("redis-3", "node-2", "redis.redis-3"),
    ]
    assert [(p.number, why.split(";")[0]) for p, why in picked.problems] == [(2, "node node-2 is offline")]
    assert not picked.forwards
    assert pick([place(1)], None, "null", "web", PEERS.get).targets[0].label == "web-1"


def test_an_instance_whose_node_another_master_holds_goes_to_that_master() -> None:
    """Online under a live peer: forwarded there; offline, or no peer holds it: named, as before."""
    other = PeerMaster("m-2", "master-b", "http://127.0.0.1:8471")
    holders = {"id-node-3": other, "id-node-4": other}
    places = [place(1), place(2, "node-3"), place(3, "node-4", status="offline"), place(4, "node-5")]
    picked = pick(places, None, "redis", "redis", PEERS.get, holders.get)
    assert [t.label for t in picked.targets] == ["redis-1"]
    assert [(f.label, f.master.name, f.place.node) for f in picked.forwards] == [
        ("redis-2", "master-b", "node-3")
    ]
    assert [(p.number, why.split(";")[0]) for p, why in picked.problems] == [
        (3, "node node-4 is offline"),
        (4, "node node-5 is not connected to this master (reconnecting, or connected to another master)"),
    ]
    only = pick([place(2, "node-3")], 2, "redis", "redis", PEERS.get, holders.get)
    assert not only.targets and [f.label for f in only.forwards] == ["redis-2"], "no Conflict: it goes there"


def test_log_chunks_become_lines_per_instance_and_stream() -> None:
    async def test() -> list[dict]:
        relay, peer = StreamRelay(), PEERS["id-node-1"]
        stream = await relay.open(peer, LogsOpen(stream="0", container="redis.redis-1", timestamps=True))
        target = Target(place(1), "redis-1", peer)
        feed = LogFeed([(target, stream)], [], timestamps=True)
        for fd, data in [
            (1, b"2024-01-01T00:00:00Z hel"),
            (2, b"2024-01-01T00:00:01Z warn\r\n"),
            (1, b"lo\n2024-01-01T00:00:02Z bad \xff byte\n2024-01-01T00:00:03Z no newline"),
        ]:
            relay.from_agent(peer, StreamOutput(stream=stream.id, fd=fd, data=data))
        relay.from_agent(peer, StreamEnd(stream=stream.id, error="No such container: redis.redis-1"))
        return [json.loads(line) async for line in feed.lines()]

    lines = asyncio.run(test())
    assert lines == [
        {"instance": 1, "node": "node-1", "stream": "stderr", "time": "2024-01-01T00:00:01Z", "line": "warn"},
        {
            "instance": 1,
            "node": "node-1",
            "stream": "stdout",
            "time": "2024-01-01T00:00:00Z",
            "line": "hello",
        },
        {
            "instance": 1,
            "node": "node-1",
            "stream": "stdout",
            "time": "2024-01-01T00:00:02Z",
            "line": "bad \ufffd byte",
        },
        {
            "instance": 1,
            "node": "node-1",
            "stream": "stdout",
            "time": "2024-01-01T00:00:03Z",
            "line": "no newline",
        },
        {"instance": 1, "node": "node-1", "error": "No such container: redis.redis-1"},
    ]


def test_a_very_long_line_comes_in_pieces() -> None:
    async def test() -> list[dict]:
        relay, peer = StreamRelay(), PEERS["id-node-1"]
        stream = await relay.open(peer, LogsOpen(stream="0", container="c"))
        feed = LogFeed([(Target(place(1), "redis-1", peer), stream)], [], timestamps=False)
        relay.from_agent(peer, StreamOutput(stream=stream.id, data=b"y" * (LINE_BYTES + 10) + b"\n"))
        relay.from_agent(peer, StreamEnd(stream=stream.id))
        return [json.loads(line) async for line in feed.lines()]

    assert [len(r["line"]) for r in asyncio.run(test())] == [LINE_BYTES, 10]


def test_a_client_that_leaves_cancels_every_instances_stream() -> None:
    async def test() -> None:
        relay, one, two = StreamRelay(), Peer("node-1"), Peer("node-2")
        a = await relay.open(one, LogsOpen(stream="0", container="c1", follow=True))
        b = await relay.open(two, LogsOpen(stream="0", container="c2", follow=True))
        feed = LogFeed(
            [(Target(place(1), "redis-1", one), a), (Target(place(2, "node-2"), "redis-2", two), b)],
            [],
            timestamps=False,
        )
        lines = feed.lines()
        relay.from_agent(one, StreamOutput(stream=a.id, data=b"first\n"))
        assert json.loads(await anext(lines))["line"] == "first"
        await lines.aclose()  # the client went away
        await settle()
        assert [m.stream for m in one.of(StreamCancel)] == [a.id]
        assert [m.stream for m in two.of(StreamCancel)] == [b.id]
        assert relay.open_count() == 0

    asyncio.run(test())


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10m", NOW - 600, id="minutes"),
        pytest.param("1h30m", NOW - 5400, id="hours-minutes"),
        pytest.param("1.5h", NOW - 5400, id="fraction"),
        pytest.param("2d", NOW - 172800, id="days"),
        pytest.param("250ms", NOW - 0.25, id="milliseconds"),
        pytest.param("2024-05-01T12:00:00Z", 1714564800.0, id="rfc3339"),
        pytest.param("2024-05-01T14:00:00+02:00", 1714564800.0, id="rfc3339-offset"),
        pytest.param("1714564800", 1714564800.0, id="unix"),
        pytest.param("1714564800.5", 1714564800.5, id="unix-fraction"),
    ],
)
def test_since_takes_durations_times_and_unix_seconds(text: str, expected: float) -> None:
    assert parse_since(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday", "-5m", "10x", "", "2024-13-01", "5 m"])
def test_a_since_that_is_no_time_says_what_would_be(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_since(text, NOW)
    assert str(caught.value) == (
        f"'{text.strip()}' is not a time: give a duration like 10m or 1h30m, a date-time like "
        "2024-05-01T12:00:00Z, or unix seconds"
    )

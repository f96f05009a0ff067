"""The agent socket against bad peers, on a real master: every misbehaviour ends in a close with a
reason (and one log line), the master keeps serving, and its log never shows a traceback."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from moorage.agent.runner import websocket_url
from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess
from tests.support.waiting import wait_until


def _token(master: MasterProcess, grid: str) -> str:
    with master.client() as client:
        return client.post(f"/v1/grids/{grid}/token").json()["token"]


def _open(master: MasterProcess, token: str) -> ClientConnection:
    return connect(
        websocket_url(master.url), additional_headers={"Authorization": f"Bearer {token}"}, max_size=None
    )


def _closed(ws: ClientConnection) -> tuple[int, str, list[str]]:
    """Read until the master closes: its close code and reason, and the messages before them."""
    seen: list[str] = []
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            seen.append(str(ws.recv(timeout=20)))
    assert closed.value.rcvd is not None, "the master closed with a code and a reason"
    return closed.value.rcvd.code, closed.value.rcvd.reason, seen


def _no_traceback(master: MasterProcess) -> None:
    with master.client() as client:
        assert client.get("/v1/ping").status_code == 200
    assert "Traceback" not in master.log_path.read_text()


def test_a_binary_first_frame_is_closed_with_a_reason(master: MasterProcess, grid: str) -> None:
    ws = _open(master, _token(master, grid))
    ws.send(json.dumps(hello("bin")).encode())
    code, reason, seen = _closed(ws)
    assert code == 1003 and "Binary frames" in reason
    assert [json.loads(m)["type"] for m in seen] == ["error"]
    _no_traceback(master)


def test_an_agent_that_asks_for_data_frames_is_welcomed_so_and_a_bad_one_is_closed(
    master: MasterProcess, grid: str
) -> None:
    ws, welcome = join(master.url, _token(master, grid), {**hello("frames"), "binary_data": True})
    assert welcome["type"] == "welcome" and welcome["binary_data"] is True
    ws.send(b"O\x01a\x01output of a stream the master does not know")  # well-formed: ignored
    ws.send(json.dumps({"type": "heartbeat"}))
    ws.send(b"O\x02a-\x01data")
    code, reason, _ = _closed(ws)
    assert code == 1003 and "Bad data frame: its stream id is not 1 to 32 letters and digits" in reason
    _no_traceback(master)


def test_an_agent_that_does_not_ask_for_data_frames_gets_none(master: MasterProcess, grid: str) -> None:
    """(An older agent: its welcome says no data frames, and a binary frame still closes it.)"""
    ws, welcome = join(master.url, _token(master, grid), hello("no-frames"))
    assert welcome["type"] == "welcome" and welcome["binary_data"] is False
    ws.send(b"O\x01a\x01data")
    code, reason, _ = _closed(ws)
    assert code == 1003 and "unless the hello asks for them" in reason


def test_a_binary_frame_after_welcome_is_closed_and_the_node_goes_offline(
    master: MasterProcess, grid: str
) -> None:
    ws, welcome = join(master.url, _token(master, grid), hello("bin-later"))
    assert welcome["type"] == "welcome"
    ws.send(b"\x00\x01")
    code, reason, _ = _closed(ws)
    assert code == 1003 and "Binary frames" in reason
    with master.client() as client:
        wait_until(
            lambda: client.get(f"/v1/nodes/{grid}/bin-later").json()["status"] == "offline", 10, "offline"
        )
    _no_traceback(master)


@pytest.mark.parametrize(
    ("first", "expected"),
    [
        ("{not json", "Bad hello"),
        ("[]", "Bad hello"),
        ('{"type": "hello"}', "Bad hello: hello.node_id: Field required"),
        ('{"type": "heartbeat"}', "First message must be hello"),
        ("\x00" * 100, "Bad hello"),
    ],
    ids=["garbage", "array", "incomplete-hello", "heartbeat-first", "nul-bytes"],
)
def test_a_bad_first_message_is_refused_with_a_reason(
    master: MasterProcess, grid: str, first: str, expected: str
) -> None:
    ws = _open(master, _token(master, grid))
    ws.send(first)
    code, reason, seen = _closed(ws)
    assert code == 1008 and reason.startswith(expected)
    assert json.loads(seen[0])["message"].startswith(expected)
    _no_traceback(master)


def test_garbage_after_welcome_is_logged_and_the_connection_kept(master: MasterProcess, grid: str) -> None:
    ws, _ = join(master.url, _token(master, grid), hello("chatty"))
    try:
        ws.send("{garbage")
        ws.send('{"type": "status", "instances": "no"}')
        assert ws.ping().wait(5), "still connected"
        wait_until(
            lambda: (
                "node chatty sent a message the master does not understand" in master.log_path.read_text()
            ),
            10,
            "the log line",
        )
    finally:
        ws.close()
    _no_traceback(master)


def test_a_close_right_after_welcome_or_before_hello_is_quiet(master: MasterProcess, grid: str) -> None:
    token = _token(master, grid)
    for _ in range(5):
        ws, welcome = join(master.url, token, hello(f"brief-{uuid.uuid4().hex[:6]}"))
        assert welcome["type"] == "welcome"
        ws.close()
        _open(master, token).close()  # not even a hello
        raw = _open(master, token)
        raw.send(json.dumps(hello(f"gone-{uuid.uuid4().hex[:6]}")))
        raw.close()  # before the welcome arrives
    with master.client() as client:
        wait_until(
            lambda: all(n["status"] == "offline" for n in client.get(f"/v1/nodes/{grid}").json()["nodes"]),
            10,
            "every brief node offline",
        )
    _no_traceback(master)


def test_a_frame_over_the_size_limit_is_closed_with_1009(master: MasterProcess, grid: str) -> None:
    ws, _ = join(master.url, _token(master, grid), hello("big"))
    ws.send("x" * (17 * 2**20))
    code, _reason, _ = _closed(ws)
    assert code == 1009
    _no_traceback(master)


@pytest.mark.parametrize("same_id", [False, True], ids=["one-name", "one-name-and-id"])
def test_concurrent_hellos_for_one_name_admit_one(master: MasterProcess, grid: str, same_id: bool) -> None:
    token = _token(master, grid)
    node_id = uuid.uuid4().hex
    replies: list[dict] = []
    sockets: list[ClientConnection] = []
    lock = threading.Lock()
    start = threading.Barrier(12)

    def one() -> None:
        ws = _open(master, token)
        start.wait()
        ws.send(json.dumps(hello("contended", node_id=node_id if same_id else None)))
        reply = json.loads(ws.recv(timeout=20))
        with lock:
            replies.append(reply)
            sockets.append(ws)

    threads = [threading.Thread(target=one) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    try:
        assert len(replies) == 12
        welcomed = [r for r in replies if r["type"] == "welcome"]
        refused = [r for r in replies if r["type"] == "error"]
        assert len(welcomed) == 1 and len(refused) == 11, replies
        for reply in refused:
            message = reply["message"]
            assert (
                "already used by another node" in message
                or "already has its own credential" in message
                or "at the same moment" in message
                or "could not register this node just now" in message
            ), message
        with master.client() as client:
            nodes = client.get(f"/v1/nodes/{grid}").json()["nodes"]
        assert [(n["name"], n["id"]) for n in nodes] == [("contended", welcomed[0]["node_id"])]
    finally:
        for ws in sockets:
            ws.close()
    _no_traceback(master)

"""The CLI's client to the master over plain http.client (keep-alive), against a real HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from moorage.client.api import MasterClient


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn answers

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_one_client_answers_each_thread_its_own_request(url: str) -> None:
    """A bench sends through one client from several threads: each gets its own answer, never
    'CannotSendRequest' or another thread's body."""
    paths = [f"/v1/volumes/g/v{i}" for i in range(200)]
    with MasterClient(url, "t") as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda p: client.get(p), paths))
    assert [a["path"] for a in answers] == paths


def test_a_closed_client_opens_again(url: str) -> None:
    client = MasterClient(url, "t")
    assert client.get("/one")["path"] == "/one"
    client.close()
    assert client.get("/two")["path"] == "/two"
    client.close()

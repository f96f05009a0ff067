"""GET /v1/grids/{grid}/events on a real master (SQLite and PostgreSQL): what users did, with
their token's name; pages by cursor; filters; the followed stream; the bound; bad input."""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import MasterProcess


def _events(client: httpx.Client, grid: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"/v1/grids/{grid}/events", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _volume(client: httpx.Client, grid: str, name: str) -> None:
    response = client.post(f"/v1/volumes/{grid}", json={"name": name, "scope": "instance", "driver": "local"})
    assert response.status_code == 201, response.text


def test_what_users_did_is_recorded_with_their_tokens_name(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        made = client.post("/v1/tokens", json={"name": f"ci-{grid}"})
        assert made.status_code == 201, made.text
        with master.client(made.json()["token"]) as ci:
            _volume(ci, grid, "data")
            assert ci.delete(f"/v1/volumes/{grid}/data").status_code == 200
        page = _events(client, grid)
        mine = [(e["kind"], e["actor"], e["volume"]) for e in page["events"] if e["grid"] == grid]
        assert mine == [("volume.created", f"ci-{grid}", "data"), ("volume.removed", f"ci-{grid}", "data")]
        created = next(e for e in page["events"] if e["kind"] == "volume.created" and e["grid"] == grid)
        assert "volume data created" in created["message"] and created["time"]
        # a token is the master's own: shown in every grid's events, with no grid
        tokens = [e for e in page["events"] if e["kind"] == "token.created" and f"ci-{grid}" in e["message"]]
        assert [(e["grid"], e["actor"]) for e in tokens] == [(None, "admin")]
        assert client.delete(f"/v1/tokens/ci-{grid}").status_code == 200
        revoked = _events(client, grid, kind="token")["events"]
        assert any(e["kind"] == "token.revoked" and f"ci-{grid}" in e["message"] for e in revoked)


def test_a_refused_change_records_nothing(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        _volume(client, grid, "data")
        again = client.post(
            f"/v1/volumes/{grid}", json={"name": "data", "scope": "instance", "driver": "local"}
        )
        assert again.status_code == 422
        assert client.delete(f"/v1/volumes/{grid}/nothing").status_code == 404
        kinds = [e["kind"] for e in _events(client, grid, volume="data")["events"]]
        assert kinds == ["volume.created"]


def test_pages_go_back_by_cursor_and_on_from_the_newest(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        names = [f"vol-{i}" for i in range(7)]
        for name in names:
            _volume(client, grid, name)
        seen: list[str] = []
        page = _events(client, grid, kind="volume", limit=3)
        assert [e["volume"] for e in page["events"]] == names[4:]
        newer = page["newer"]
        while True:
            seen = [e["volume"] for e in page["events"]] + seen
            if page["older"] is None:
                break
            page = _events(client, grid, kind="volume", limit=3, before=page["older"])
        assert seen == names
        # nothing after the newest yet; then what comes next, and only that
        assert _events(client, grid, after=newer)["events"] == []
        _volume(client, grid, "later")
        after = _events(client, grid, after=newer, kind="volume")
        assert [e["volume"] for e in after["events"]] == ["later"]
        assert int(after["newer"]) >= int(after["events"][-1]["cursor"])
        # an event's own cursor reads on from it
        cursor = page["events"][0]["cursor"]
        onwards = _events(client, grid, after=cursor, kind="volume", limit=2)
        assert [e["volume"] for e in onwards["events"]] == names[1:3]
        # both: the ones between
        between = _events(client, grid, after=cursor, before=onwards["events"][-1]["cursor"], kind="volume")
        assert [e["volume"] for e in between["events"]] == names[1:2]


def test_filters_pick_their_subject(master: MasterProcess, grid: str) -> None:
    with master.client() as client:
        _volume(client, grid, "alpha")
        _volume(client, grid, "beta")
        only = _events(client, grid, volume="beta")["events"]
        assert [(e["kind"], e["volume"]) for e in only] == [("volume.created", "beta")]
        assert _events(client, grid, stack="nostack")["events"] == []
        assert _events(client, grid, node="node-x")["events"] == []
        # another grid's events are not this grid's
        other = f"{grid}-b"
        assert client.post("/v1/grids", json={"name": other}).status_code == 201
        assert _events(client, other, volume="alpha")["events"] == []


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"before": "abc"}, "before", "is not a cursor"),
        ({"after": "-1"}, "after", "is not a cursor"),
        ({"after": "99999999999"}, "after", "is ahead of this master's newest event"),
        ({"follow": "true", "before": "5"}, "before", "reads on from 'after'"),
        ({"kind": "nonsense"}, "kind", "is no kind of event"),
        ({"volume": "a b"}, "volume", "Volume name"),
        ({"stack": "Bad_Stack"}, "stack", "tack name"),
        ({"node": "a/b"}, "node", "ode name"),
        ({"limit": "0"}, "limit", "greater than or equal to 1"),
        ({"limit": "100000"}, "limit", "less than or equal to 1000"),
    ],
)
def test_bad_cursors_and_filters_are_422s_that_say_what_is_wrong(
    master: MasterProcess, grid: str, params: dict[str, str], field: str, words: str
) -> None:
    with master.client() as client:
        response = client.get(f"/v1/grids/{grid}/events", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    message = " ".join(str(v) for k, v in error.items() if field in k)
    assert words in message, error


def test_an_unknown_grid_is_a_404(master: MasterProcess) -> None:
    with master.client() as client:
        response = client.get("/v1/grids/no-such-grid/events")
    assert response.status_code == 404, response.text
    assert "no-such-grid" in response.text


@pytest.fixture
def followed(master: MasterProcess, grid: str) -> Iterator[queue.Queue[dict[str, Any]]]:
    """The grid's events followed (``follow=true``, volume filter ``watched``) on a thread."""
    lines: queue.Queue[dict[str, Any]] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        with (
            master.client() as client,
            client.stream(
                "GET",
                f"/v1/grids/{grid}/events",
                params={"follow": "true", "volume": "watched"},
                timeout=httpx.Timeout(10, read=None),
            ) as response,
        ):
            assert response.headers["content-type"].startswith("application/x-ndjson")
            for line in response.iter_lines():
                if stop.is_set():
                    return
                if line.strip():
                    lines.put(json.loads(line))

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    yield lines
    stop.set()


def test_a_followed_stream_shows_the_past_page_then_each_new_event(
    master: MasterProcess, grid: str, followed: queue.Queue[dict[str, Any]]
) -> None:
    with master.client() as client:
        _volume(client, grid, "watched")
        first = followed.get(timeout=10)
        assert (first["kind"], first["volume"]) == ("volume.created", "watched")
        _volume(client, grid, "ignored")  # not the filter's
        assert client.delete(f"/v1/volumes/{grid}/watched").status_code == 200
        second = followed.get(timeout=10)
        assert (second["kind"], second["volume"]) == ("volume.removed", "watched")
        assert int(second["cursor"]) > int(first["cursor"])
        assert followed.empty()


def test_a_grid_keeps_its_newest_events_within_the_bound(tmp_path: Path) -> None:
    master = MasterProcess(data_dir=tmp_path / "master", extra_args=("--events-kept", "20")).start()
    try:
        with master.client() as client:
            assert client.post("/v1/grids", json={"name": "g"}).status_code == 201
            names = [f"vol-{i}" for i in range(30)]
            for name in names:
                _volume(client, "g", name)
            page = _events(client, "g", kind="volume", limit=1000)
            kept = [e["volume"] for e in page["events"]]
            # the newest, in order: the bound, plus at most a tenth of it (pruned every 20 // 10 events)
            assert len(kept) in (20, 21)
            assert kept == names[-len(kept) :]
            assert page["older"] is None
    finally:
        master.stop()


def test_events_kept_must_be_at_least_one(tmp_path: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "moorage", "master", "--data-dir", str(tmp_path), "--events-kept", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "--events-kept" in done.stdout + done.stderr and "at least 1" in done.stdout + done.stderr


def test_events_wait_until_the_master_has_them(master: MasterProcess, grid: str) -> None:
    """A page read right after the answer of a change holds its event (same transaction)."""
    with master.client() as client:
        for i in range(3):
            _volume(client, grid, f"quick-{i}")
            found = _events(client, grid, volume=f"quick-{i}")["events"]
            assert [e["kind"] for e in found] == ["volume.created"]

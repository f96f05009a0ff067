"""Tokens and error shapes, as an API client sees them (real master on loopback, SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.processes import MasterProcess
from tests.support.waiting import StopWaiting


def test_admin_token_is_written_once_with_mode_0600(fresh_master: MasterProcess) -> None:
    token_file = fresh_master.data_dir / "admin.token"
    assert stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    first = fresh_master.admin_token
    assert fresh_master.log_path.read_text().count(first) == 1, "printed once at first start"
    fresh_master.stop()
    fresh_master.start()
    assert fresh_master.admin_token == first, "a restart must not make a new admin token"
    assert fresh_master.log_path.read_text().count(first) == 1, "never printed again"


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("not-a-token", 401)],
    ids=["missing", "wrong"],
)
def test_requests_without_a_valid_token_are_refused(
    master: MasterProcess, token: str | None, status: int
) -> None:
    with master.client(token) as client:
        for method, path in [("GET", "/v1/grids"), ("POST", "/v1/grids"), ("GET", "/v1/nodes/x")]:
            response = client.request(method, path, json={"name": "x"})
            assert response.status_code == status, (method, path, response.text)
            assert isinstance(response.json()["error"], str)


def test_grid_join_token_is_forbidden_on_admin_routes(master: MasterProcess, grid: str) -> None:
    with master.client() as admin:
        join = admin.post(f"/v1/grids/{grid}/token").json()["token"]
    with master.client(join) as agent_token:
        response = agent_token.get("/v1/grids")
    assert response.status_code == 403
    assert "join token" in response.json()["error"]


def test_malformed_json_is_400_and_changes_nothing(master: MasterProcess) -> None:
    with master.client() as client:
        response = client.post(
            "/v1/grids", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["error"].startswith("Malformed JSON body")
        response = client.post(
            "/v1/grids", content=b'{"name": "half"', headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert client.get("/v1/grids/half").status_code == 404


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": "is required"}),
        (
            {"name": "Bad Name"},
            {
                "name": "Grid name 'Bad Name' is not valid: use 1 to 63 lowercase letters, digits or '-', starting with a letter or digit"
            },
        ),
        ({"name": "ok-but", "extra": 1}, {"extra": "is not a known field; remove it"}),
        ({"name": 5}, {"name": "Input should be a valid string"}),
    ],
    ids=["missing-name", "bad-name", "unknown-field", "wrong-type"],
)
def test_invalid_grid_input_is_422_with_field_messages(
    master: MasterProcess, body: dict, errors: dict
) -> None:
    with master.client() as client:
        response = client.post("/v1/grids", json=body)
        assert response.status_code == 422
        assert response.json() == {"error": errors}
        assert client.get("/v1/grids/ok-but").status_code == 404


def test_not_found_shapes(master: MasterProcess) -> None:
    with master.client() as client:
        assert client.get("/v1/grids/nope").json() == {"error": "Grid nope not found"}
        assert client.get("/v1/grids/nope").status_code == 404
        assert client.get("/v1/nodes/nope").status_code == 404
        response = client.get("/v1/no-such-route")
        assert response.status_code == 404
        assert "openapi.json" in response.json()["error"]


def test_openapi_document_is_served(master: MasterProcess) -> None:
    with master.client(None) as client:
        doc = client.get("/openapi.json").json()
    assert "/v1/grids" in doc["paths"]
    assert "/v1/nodes/{grid}/{node}" in doc["paths"]


def test_a_master_that_cannot_start_fails_the_wait_with_its_own_message(tmp_path: Path) -> None:
    """A master that exits at start (here: a database URL it cannot use) is reported at once with
    its output, not after the ping wait's timeout."""
    dead = MasterProcess(tmp_path / "data", db_url="nosuchdb://nowhere/x")
    with pytest.raises(StopWaiting, match=r"master exited with [1-9]") as caught:
        dead.start()
    assert "nosuchdb" in str(caught.value), "the master's own words are in the failure"

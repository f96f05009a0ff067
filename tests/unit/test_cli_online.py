"""Online CLI commands against a master answered by an ``httpx.MockTransport``: what they send
(path, token, body) and what they print, without a master process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner, Result

from moorage.cli.main import app
from moorage.client.api import ApiError

URL = "http://master.test:8470"
TOKEN = "admin-token"
CREATED = "2024-02-29T12:00:00Z"


def _volume(name: str, driver: str = "local", **extra: object) -> dict[str, object]:
    return {
        "id": f"g/{name}",
        "name": name,
        "scope": "instance",
        "driver": driver,
        "driver_opts": {},
        "labels": {},
        "created_at": CREATED,
        "instances": [],
        "services": [],
        **extra,
    }


class FakeMaster:
    """Answers the volume routes from a dict, and keeps every request it was sent."""

    def __init__(self) -> None:
        self.volumes: dict[str, dict[str, object]] = {}
        self.in_use: set[str] = set()
        self.requests: list[httpx.Request] = []
        self.events: list[dict[str, object]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"error": "Token not accepted by this master"})
        path = request.url.path
        if request.method == "GET" and path == "/v1/grids":
            return httpx.Response(200, json={"grids": [{"name": "g"}]})
        if request.method == "POST" and path == "/v1/volumes/g":
            body = json.loads(request.content)
            volume = _volume(
                body["name"], body["driver"], driver_opts=body["driver_opts"], labels=body["labels"]
            )
            self.volumes[body["name"]] = volume
            return httpx.Response(201, json=volume)
        if request.method == "GET" and path == "/v1/volumes/g":
            return httpx.Response(
                200, json={"volumes": sorted(self.volumes.values(), key=lambda v: str(v["name"]))}
            )
        if request.method == "DELETE" and path.startswith("/v1/volumes/g/"):
            name = path.rsplit("/", 1)[1]
            if name in self.in_use:
                return httpx.Response(
                    409, json={"error": f"Volume {name} is used by services: g/null/web; remove them first"}
                )
            self.volumes.pop(name, None)
            return httpx.Response(200, json={"removed": f"g/{name}"})
        if request.method == "GET" and path == "/v1/grids/g/events":
            return httpx.Response(200, json={"events": self.events, "older": None, "newer": "9"})
        return httpx.Response(404, json={"error": f"no route {request.method} {path}"})


@pytest.fixture
def master() -> FakeMaster:
    return FakeMaster()


@pytest.fixture
def moorage(master: FakeMaster, tmp_path: Path) -> Callable[..., Result]:
    runner = CliRunner()
    env = {
        "MOORAGE_URL": URL,
        "MOORAGE_TOKEN": TOKEN,
        "MOORAGE_GRID": "g",
        "MOORAGE_CONFIG": str(tmp_path / "config.json"),
    }

    def run(*args: str, **env_overrides: str) -> Result:
        return runner.invoke(app, list(args), obj=httpx.MockTransport(master), env={**env, **env_overrides})

    return run


def test_volume_create_sends_the_definition_with_the_token_and_prints_the_name(
    moorage: Callable[..., Result], master: FakeMaster
) -> None:
    result = moorage(
        "volume",
        "create",
        "--scope",
        "instance",
        "--driver",
        "local",
        "--driver-opt",
        "o=addr=10.0.0.1,rw",
        "--label",
        "team=db",
        "data",
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "data\n"
    (request,) = master.requests
    assert (request.method, str(request.url)) == ("POST", f"{URL}/v1/volumes/g")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert json.loads(request.content) == {
        "name": "data",
        "scope": "instance",
        "driver": "local",
        "driver_opts": {"o": "addr=10.0.0.1,rw"},  # split on the first '=' only
        "labels": {"team": "db"},
    }


def test_volume_ls_lists_what_the_master_has(moorage: Callable[..., Result], master: FakeMaster) -> None:
    master.volumes = {"logs": _volume("logs"), "data": _volume("data", driver="dirvol")}
    result = moorage("volume", "ls")
    assert result.exit_code == 0, result.output
    header, *rows = [line.split() for line in result.stdout.splitlines()]
    assert header == ["NAME", "SCOPE", "DRIVER", "CREATED"]
    assert rows == [["data", "instance", "dirvol", CREATED], ["logs", "instance", "local", CREATED]]

    quiet = moorage("volume", "ls", "-q")
    assert quiet.stdout == "data\nlogs\n"
    as_json = moorage("volume", "ls", "--json")
    assert [v["name"] for v in json.loads(as_json.stdout)] == ["data", "logs"]


def test_volume_rm_removes_what_it_may_names_what_it_may_not_and_exits_1(
    moorage: Callable[..., Result], master: FakeMaster
) -> None:
    master.volumes = {"data": _volume("data"), "spare": _volume("spare")}
    master.in_use = {"data"}
    result = moorage("volume", "rm", "--force", "data", "spare")
    assert result.exit_code == 1
    assert result.stdout == "Removed volume spare\n"
    assert "Error: Volume data is used by services: g/null/web; remove them first" in result.stderr
    assert set(master.volumes) == {"data"}


def test_a_refused_token_is_the_masters_message(moorage: Callable[..., Result], master: FakeMaster) -> None:
    result = moorage("volume", "ls", MOORAGE_TOKEN="wrong")
    assert isinstance(result.exception, ApiError)  # main() prints it as "Error: ..." and exits 1
    assert result.exception.status_code == 401
    assert result.exception.message == "Token not accepted by this master"
    assert master.requests[0].headers["authorization"] == "Bearer wrong"


def test_login_checks_the_token_and_saves_url_token_and_the_only_grid(
    moorage: Callable[..., Result], tmp_path: Path
) -> None:
    result = moorage(
        "login", "--url", URL, "--token", TOKEN, MOORAGE_URL="", MOORAGE_TOKEN="", MOORAGE_GRID=""
    )
    assert result.exit_code == 0, result.output
    assert "using grid g" in result.stdout
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["url"], saved["token"], saved["grid"]) == (URL, TOKEN, "g")


def _event(cursor: int, kind: str, message: str, actor: str | None = None) -> dict[str, object]:
    return {"cursor": str(cursor), "time": f"2026-12-03T09:00:0{cursor}.123456Z", "kind": kind,
            "message": message, "actor": actor, "grid": "g", "volume": "data"}  # fmt: skip


def test_events_asks_for_the_filters_and_prints_a_line_per_event(
    moorage: Callable[..., Result], master: FakeMaster
) -> None:
    master.events = [
        _event(1, "volume.created", "volume data created", "alice"),
        _event(2, "volume_instance.created", "volume instance web.data-1 of volume data created on node-1"),
    ]
    result = moorage("events", "--volume", "data", "--node", "node-1", "-n", "5")
    assert result.exit_code == 0, result.output
    (request,) = master.requests
    assert request.url.path == "/v1/grids/g/events"
    assert dict(request.url.params) == {"limit": "5", "volume": "data", "node": "node-1"}
    assert result.stdout.splitlines() == [
        "2026-12-03 09:00:01  volume.created  volume data created  (by alice)",
        "2026-12-03 09:00:02  volume_instance.created  volume instance web.data-1 of volume data created on node-1",
    ]
    as_json = moorage("events", "--json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == master.events


@pytest.mark.parametrize(
    ("named", "asked"),
    [("shop/db", {"stack": "shop", "service": "db"}), ("db", {"stack": "null", "service": "db"})],
    ids=["stack-service", "null-stack"],
)
def test_events_of_a_service_are_its_instances_timeline(
    moorage: Callable[..., Result], master: FakeMaster, named: str, asked: dict[str, str]
) -> None:
    result = moorage("events", "--service", named)
    assert result.exit_code == 0, result.output
    (request,) = master.requests
    assert dict(request.url.params) == {"limit": "100", **asked}

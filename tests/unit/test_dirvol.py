"""The dirvol volume plugin: every protocol endpoint against the ASGI app, then the real unix socket."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette

from moorage.driver.dirvol import CONTENT_TYPE, build_app
from moorage.driver.dirvol_store import VolumeStore, volume_name_error
from moorage.errors import InvalidInput

Json = dict[str, object]


class AppClient:
    """A synchronous client for the ASGI app itself (httpx's ASGITransport is async only)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    def request(
        self, method: str, path: str, content: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://dirvol") as client:
                return await client.request(method, path, content=content, headers=headers)

        return asyncio.run(send())


class Plugin:
    """Calls the plugin the way Docker does: POST /<Endpoint> with a JSON body."""

    def __init__(self, client: AppClient | httpx.Client) -> None:
        self.client = client

    def call(self, endpoint: str, body: object = None, raw: bytes | None = None) -> Json:
        content = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        headers = {"Content-Type": CONTENT_TYPE}
        response = self.client.request("POST", f"/{endpoint}", content=content, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == CONTENT_TYPE
        reply = response.json()
        assert isinstance(reply, dict)
        return reply

    def ok(self, endpoint: str, body: object = None) -> Json:
        reply = self.call(endpoint, body)
        assert reply.get("Err", "") == "", reply
        return reply

    def err(self, endpoint: str, body: object = None, raw: bytes | None = None) -> str:
        reply = self.call(endpoint, body, raw)
        assert set(reply) == {"Err"}, reply
        message = reply["Err"]
        assert isinstance(message, str) and message, reply
        return message


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "volumes"


@pytest.fixture
def plugin(root: Path) -> Plugin:
    return Plugin(AppClient(build_app(root, "local")))


# -- handshake ---------------------------------------------------------------------------------


def test_activate_names_the_volume_driver_interface(plugin: Plugin) -> None:
    assert plugin.call("Plugin.Activate") == {"Implements": ["VolumeDriver"]}


@pytest.mark.parametrize("scope", ["local", "global"])
def test_capabilities_report_the_configured_scope(root: Path, scope: str) -> None:
    plugin = Plugin(AppClient(build_app(root, scope)))
    assert plugin.call("VolumeDriver.Capabilities") == {"Capabilities": {"Scope": scope}}


def test_an_unknown_scope_is_refused_at_build_time(root: Path) -> None:
    with pytest.raises(InvalidInput, match="unknown scope 'cluster', must be one of local, global"):
        build_app(root, "cluster")
    assert not root.exists()


# -- create, get, list, path, remove -----------------------------------------------------------


def test_create_makes_a_data_folder_with_metadata_beside_it(plugin: Plugin, root: Path) -> None:
    assert plugin.call("VolumeDriver.Create", {"Name": "v1", "Opts": {"size": "1G"}}) == {"Err": ""}

    assert (root / "v1" / "data").is_dir()
    assert list((root / "v1" / "data").iterdir()) == []  # metadata never shows in the container
    meta = json.loads((root / "v1" / "volume.json").read_text())
    assert meta["name"] == "v1" and meta["opts"] == {"size": "1G"}


def test_get_describes_the_volume(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1", "Opts": {"size": "1G"}})

    volume = plugin.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"]

    assert isinstance(volume, dict)
    assert volume["Name"] == "v1"
    assert volume["Mountpoint"] == str(root / "v1" / "data")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(volume["CreatedAt"]))
    assert volume["Status"] == {"mounts": 0, "opts": {"size": "1G"}}


def test_create_without_opts_and_with_null_opts(plugin: Plugin) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "a1"})
    plugin.ok("VolumeDriver.Create", {"Name": "b1", "Opts": None})
    for name in ("a1", "b1"):
        volume = plugin.ok("VolumeDriver.Get", {"Name": name})["Volume"]
        assert isinstance(volume, dict) and volume["Status"] == {"mounts": 0, "opts": {}}


def test_create_is_idempotent_and_keeps_data_and_first_options(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1", "Opts": {"a": "1"}})
    (root / "v1" / "data" / "keep.txt").write_text("hello")
    first = plugin.ok("VolumeDriver.Get", {"Name": "v1"})

    assert plugin.call("VolumeDriver.Create", {"Name": "v1", "Opts": {"a": "2"}}) == {"Err": ""}

    assert plugin.ok("VolumeDriver.Get", {"Name": "v1"}) == first
    assert (root / "v1" / "data" / "keep.txt").read_text() == "hello"


def test_list_names_every_volume_in_order(plugin: Plugin, root: Path) -> None:
    assert plugin.call("VolumeDriver.List") == {"Volumes": [], "Err": ""}
    for name in ("zeta", "alpha", "m.id-1_x"):
        plugin.ok("VolumeDriver.Create", {"Name": name})

    assert plugin.call("VolumeDriver.List", {}) == {
        "Volumes": [{"Name": n, "Mountpoint": str(root / n / "data")} for n in ("alpha", "m.id-1_x", "zeta")],
        "Err": "",
    }


def test_list_skips_what_is_not_a_volume(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "real"})
    (root / "stray.txt").write_text("x")
    (root / "no-data-folder").mkdir()
    (root / ".hidden" / "data").mkdir(parents=True)

    reply = plugin.ok("VolumeDriver.List")

    assert reply["Volumes"] == [{"Name": "real", "Mountpoint": str(root / "real" / "data")}]


def test_path_is_the_data_folder_mounted_or_not(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    expected = {"Mountpoint": str(root / "v1" / "data"), "Err": ""}

    assert plugin.call("VolumeDriver.Path", {"Name": "v1"}) == expected
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})
    assert plugin.call("VolumeDriver.Path", {"Name": "v1"}) == expected


def test_remove_deletes_the_folder_and_the_name_can_be_reused(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    (root / "v1" / "data" / "sub").mkdir()
    (root / "v1" / "data" / "sub" / "f").write_text("x")

    assert plugin.call("VolumeDriver.Remove", {"Name": "v1"}) == {"Err": ""}

    assert sorted(p.name for p in root.iterdir()) == []
    assert plugin.err("VolumeDriver.Get", {"Name": "v1"}) == "volume v1 not found"
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    assert list((root / "v1" / "data").iterdir()) == []


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("VolumeDriver.Get", {"Name": "ghost"}),
        ("VolumeDriver.Path", {"Name": "ghost"}),
        ("VolumeDriver.Remove", {"Name": "ghost"}),
        ("VolumeDriver.Mount", {"Name": "ghost", "ID": "c1"}),
        ("VolumeDriver.Unmount", {"Name": "ghost", "ID": "c1"}),
    ],
    ids=["get", "path", "remove", "mount", "unmount"],
)
def test_a_missing_volume_is_an_err(plugin: Plugin, root: Path, endpoint: str, body: Json) -> None:
    assert plugin.err(endpoint, body) == "volume ghost not found"
    assert not (root / "ghost").exists()


# -- mounts and reference counts ---------------------------------------------------------------


def test_remove_waits_until_every_caller_has_unmounted(plugin: Plugin, root: Path) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    mount = plugin.call("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})
    assert mount == {"Mountpoint": str(root / "v1" / "data"), "Err": ""}
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c2"})

    plugin.ok("VolumeDriver.Unmount", {"Name": "v1", "ID": "c1"})
    assert plugin.err("VolumeDriver.Remove", {"Name": "v1"}) == (
        "volume v1 is in use by 1 mount(s); stop the containers using it first"
    )
    assert (root / "v1" / "data").is_dir()

    plugin.ok("VolumeDriver.Unmount", {"Name": "v1", "ID": "c2"})
    plugin.ok("VolumeDriver.Remove", {"Name": "v1"})
    assert not (root / "v1").exists()


def test_the_same_caller_mounting_twice_counts_once(plugin: Plugin) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})
    volume = plugin.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"]
    assert isinstance(volume, dict) and volume["Status"] == {"mounts": 1, "opts": {}}

    plugin.ok("VolumeDriver.Unmount", {"Name": "v1", "ID": "c1"})

    plugin.ok("VolumeDriver.Remove", {"Name": "v1"})


def test_unmount_by_a_caller_without_a_mount_is_harmless(plugin: Plugin) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})

    plugin.ok("VolumeDriver.Unmount", {"Name": "v1", "ID": "stranger"})

    assert "in use by 1 mount(s)" in plugin.err("VolumeDriver.Remove", {"Name": "v1"})


def test_a_mount_without_id_counts_as_one_legacy_caller(plugin: Plugin) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    plugin.ok("VolumeDriver.Mount", {"Name": "v1"})
    assert "in use" in plugin.err("VolumeDriver.Remove", {"Name": "v1"})
    plugin.ok("VolumeDriver.Unmount", {"Name": "v1"})
    plugin.ok("VolumeDriver.Remove", {"Name": "v1"})


# -- restart: volumes persist, counts do not ---------------------------------------------------


def test_a_restarted_plugin_still_lists_the_volumes(root: Path) -> None:
    before = Plugin(AppClient(build_app(root)))
    before.ok("VolumeDriver.Create", {"Name": "v1", "Opts": {"a": "1"}})
    before.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})
    described = before.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"]

    after = Plugin(AppClient(build_app(root)))

    assert after.ok("VolumeDriver.List")["Volumes"] == [
        {"Name": "v1", "Mountpoint": str(root / "v1" / "data")}
    ]
    assert isinstance(described, dict)
    assert after.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"] == {
        **described,
        "Status": {"mounts": 0, "opts": {"a": "1"}},
    }
    after.ok("VolumeDriver.Unmount", {"Name": "v1", "ID": "c1"})  # Docker tidying up after a restart


def test_a_restart_deletes_the_leftovers_of_an_interrupted_remove(root: Path) -> None:
    (root / ".trash-v1-0badf00d" / "data").mkdir(parents=True)
    build_app(root)
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("metadata", [None, "{not json", '{"created_at": 5}', "[]"], ids=repr)
def test_a_volume_with_missing_or_broken_metadata_still_works(
    plugin: Plugin, root: Path, metadata: str | None
) -> None:
    (root / "seeded" / "data").mkdir(parents=True)
    if metadata is not None:
        (root / "seeded" / "volume.json").write_text(metadata)

    volume = plugin.ok("VolumeDriver.Get", {"Name": "seeded"})["Volume"]

    assert isinstance(volume, dict)
    assert volume["Status"] == {"mounts": 0, "opts": {}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", str(volume["CreatedAt"]))
    plugin.ok("VolumeDriver.Mount", {"Name": "seeded", "ID": "c1"})


# -- bad input never crashes -------------------------------------------------------------------

BAD_NAMES: list[object] = [
    "",
    ".",
    "..",
    "a/b",
    "../etc",
    "/abs",
    ".hidden",
    "with space",
    "é",
    "x" * 201,
    None,
    5,
]
NAMED_ENDPOINTS = ["Create", "Remove", "Mount", "Unmount", "Path", "Get"]


@pytest.mark.parametrize("endpoint", NAMED_ENDPOINTS)
@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_a_bad_name_is_an_err(plugin: Plugin, root: Path, endpoint: str, name: object) -> None:
    message = plugin.err(f"VolumeDriver.{endpoint}", {"Name": name, "ID": "c1"})

    assert message.startswith("Name: ")
    assert list(root.iterdir()) == []


@pytest.mark.parametrize("endpoint", NAMED_ENDPOINTS)
def test_a_missing_name_is_an_err(plugin: Plugin, endpoint: str) -> None:
    assert plugin.err(f"VolumeDriver.{endpoint}", {}) == (
        "Name: a volume name is required (a non-empty string)"
    )


@pytest.mark.parametrize(
    ("endpoint", "raw", "message"),
    [
        ("VolumeDriver.Create", b"{not json", "body: request body is not valid JSON"),
        ("VolumeDriver.Create", b"\xff\xfe", "body: request body is not valid JSON"),
        ("VolumeDriver.Create", b'["v1"]', "body: request body must be a JSON object"),
        ("VolumeDriver.Create", b'"v1"', "body: request body must be a JSON object"),
        ("VolumeDriver.Create", b'{"Name": "v1", "Opts": ["a"]}', "Opts: options must be an object"),
        ("VolumeDriver.Create", b'{"Name": "v1", "Opts": {"a": 1}}', "Opts: options must be an object"),
        ("VolumeDriver.Mount", b'{"Name": "v1", "ID": 7}', "ID: the mount ID must be a string"),
        ("VolumeDriver.Unmount", b'{"Name": "v1", "ID": null}', "ID: the mount ID must be a string"),
        ("VolumeDriver.Create", b'{"Name": "' + b"a" * (1 << 20) + b'"}', "body: request body is larger"),
    ],
    ids=["not-json", "not-utf8", "array", "string", "opts-list", "opts-int", "id-int", "id-null", "too-big"],
)
def test_a_malformed_request_is_an_err(
    plugin: Plugin, root: Path, endpoint: str, raw: bytes, message: str
) -> None:
    plugin.ok("VolumeDriver.Create", {"Name": "v1"})
    plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})

    assert plugin.err(endpoint, raw=raw).startswith(message)

    assert plugin.ok("VolumeDriver.Get", {"Name": "v1"})["Volume"] is not None
    assert "in use by 1 mount(s)" in plugin.err("VolumeDriver.Remove", {"Name": "v1"})


def test_a_file_system_error_is_an_err(plugin: Plugin, root: Path) -> None:
    (root / "blocked").write_text("a file where the volume folder would go")

    message = plugin.err("VolumeDriver.Create", {"Name": "blocked"})

    assert message.startswith("VolumeDriver.Create failed: ")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("POST", "/VolumeDriver.Nope", 404), ("GET", "/VolumeDriver.List", 405), ("POST", "/", 404)],
)
def test_unknown_paths_and_methods_still_answer_json(
    plugin: Plugin, method: str, path: str, status: int
) -> None:
    client = plugin.client
    assert isinstance(client, AppClient)
    response = client.request(method, path)

    assert response.status_code == status
    assert response.headers["content-type"] == CONTENT_TYPE
    assert path in response.json()["Err"]


@given(st.text())
def test_an_accepted_name_is_always_one_plain_folder_under_the_root(name: str) -> None:
    if volume_name_error(name) is None:
        assert (Path("/root") / name).parent == Path("/root")
        assert name not in (".", "..") and not name.startswith(".")


def test_an_unexpected_failure_is_a_500_with_an_err(plugin: Plugin, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: VolumeStore) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(VolumeStore, "volumes", broken)
    client = plugin.client
    assert isinstance(client, AppClient)

    response = client.request("POST", "/VolumeDriver.List")

    assert response.status_code == 500
    assert response.headers["content-type"] == CONTENT_TYPE
    assert response.json() == {"Err": "internal error in dirvol: disk on fire"}


# -- the real unix socket ----------------------------------------------------------------------


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A folder with a short path: a unix socket path must fit in 108 bytes."""
    folder = Path(tempfile.mkdtemp(prefix="dv-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start_plugin(root: Path, sock: Path, scope: str = "local") -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "moorage.driver.dirvol", "--root", str(root), "--socket", str(sock)]
    return subprocess.Popen([*command, "--scope", scope], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_socket(process: subprocess.Popen[bytes], sock: Path) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        if sock.exists():
            try:
                with socket.socket(socket.AF_UNIX) as probe:
                    probe.connect(str(sock))
                return
            except ConnectionRefusedError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"plugin did not listen on {sock}")


def stop(process: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> int:
    if process.poll() is None:
        os.kill(process.pid, sig)
    try:
        return process.wait(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_serve_on_a_unix_socket_and_exit_cleanly(short_dir: Path, sig: signal.Signals) -> None:
    sock = short_dir / "plugins" / "dirvol.sock"
    process = start_plugin(short_dir / "root", sock, scope="global")
    try:
        wait_for_socket(process, sock)
        assert stat.S_IMODE(sock.stat().st_mode) == 0o660

        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://dirvol") as client:
            plugin = Plugin(client)
            assert plugin.call("Plugin.Activate") == {"Implements": ["VolumeDriver"]}
            assert plugin.call("VolumeDriver.Capabilities") == {"Capabilities": {"Scope": "global"}}
            plugin.ok("VolumeDriver.Create", {"Name": "v1"})
            mountpoint = plugin.ok("VolumeDriver.Mount", {"Name": "v1", "ID": "c1"})["Mountpoint"]
            assert mountpoint == str(short_dir / "root" / "v1" / "data")
            assert plugin.ok("VolumeDriver.List")["Volumes"] == [{"Name": "v1", "Mountpoint": mountpoint}]
    finally:
        code = stop(process, sig)

    assert code == 0, process.communicate()
    assert not sock.exists()
    assert (short_dir / "root" / "v1" / "data").is_dir()


def test_a_stale_socket_file_is_replaced(short_dir: Path) -> None:
    sock = short_dir / "dirvol.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(sock))  # bound, never listening, closed: what a crashed plugin leaves
    process = start_plugin(short_dir / "root", sock)
    try:
        wait_for_socket(process, sock)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://dirvol") as client:
            assert Plugin(client).call("Plugin.Activate") == {"Implements": ["VolumeDriver"]}
    finally:
        assert stop(process) == 0
    assert not sock.exists()


def test_a_live_plugin_socket_is_not_stolen(short_dir: Path) -> None:
    sock = short_dir / "dirvol.sock"
    first = start_plugin(short_dir / "root", sock)
    try:
        wait_for_socket(first, sock)

        second = start_plugin(short_dir / "root2", sock)
        _, err = second.communicate(timeout=15)

        assert second.returncode == 1
        assert f"another process is already serving {sock}" in err.decode()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://dirvol") as client:
            assert Plugin(client).call("Plugin.Activate") == {"Implements": ["VolumeDriver"]}
    finally:
        assert stop(first) == 0
    assert not sock.exists()


def test_a_file_that_is_not_a_socket_is_left_alone(short_dir: Path) -> None:
    sock = short_dir / "dirvol.sock"
    sock.write_text("precious")

    process = start_plugin(short_dir / "root", sock)
    _, err = process.communicate(timeout=15)

    assert process.returncode == 1
    assert "exists and is not a socket" in err.decode()
    assert sock.read_text() == "precious"

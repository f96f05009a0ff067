"""The testbed's real Docker Engines: one per node, isolated, and stopped without leftovers.

Needs root, dockerd (docker.io), busybox-static and redis-server; skipped otherwise.

The last test drives ``Testbed`` (master, agents, volume drivers) with a stand-in for the
``moorage`` command, so the orchestration is checked on its own: this file, run as a script,
is that stand-in (``python test_testbed_engines.py master|agent|driver dirvol ...``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

TOOLS = ("dockerd", "containerd", "nsenter", "unshare", "ip", "busybox", "redis-server", "redis-cli")
TIMINGS: dict[str, float] = {}  # what each engine step cost here; printed in the run's summary (conftest)


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (it creates network namespaces and runs dockerd)"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install -y docker.io busybox-static redis-server"
    return None


pytestmark = [pytest.mark.e2e, pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))]


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# ----- a legacy volume plugin: an HTTP server on a unix socket -----------------------------------


class _PluginHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: PluginServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        request = json.loads(raw or b"{}")
        answer = self.server.answer(self.path.lstrip("/"), request)
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class PluginServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A minimal volume driver keeping each volume as a folder under ``root``."""

    daemon_threads = True

    def __init__(self, socket_path: Path, root: Path, scope: str = "local") -> None:
        self.root, self.scope = root, scope
        root.mkdir(parents=True, exist_ok=True)
        socket_path.unlink(missing_ok=True)
        super().__init__(str(socket_path), _PluginHandler)

    def get_request(self) -> tuple[Any, Any]:
        conn, _ = self.socket.accept()
        return conn, ("plugin-client", 0)  # http.server wants a (host, port) pair

    def answer(self, method: str, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("Name", ""))
        folder = self.root / name
        if method == "Plugin.Activate":
            return {"Implements": ["VolumeDriver"]}
        if method == "VolumeDriver.Capabilities":
            return {"Capabilities": {"Scope": self.scope}}
        if method == "VolumeDriver.Create":
            folder.mkdir(parents=True, exist_ok=True)
            return {"Err": ""}
        if method == "VolumeDriver.Remove":
            shutil.rmtree(folder, ignore_errors=True)
            return {"Err": ""}
        if method == "VolumeDriver.Get":
            if not folder.is_dir():
                return {"Err": f"no volume {name}"}
            return {"Volume": {"Name": name, "Mountpoint": str(folder)}, "Err": ""}
        if method == "VolumeDriver.List":
            names = sorted(p.name for p in self.root.iterdir() if p.is_dir())
            return {"Volumes": [{"Name": n, "Mountpoint": str(self.root / n)} for n in names], "Err": ""}
        if method in ("VolumeDriver.Path", "VolumeDriver.Mount"):
            return {"Mountpoint": str(folder), "Err": ""}
        if method == "VolumeDriver.Unmount":
            return {"Err": ""}
        return {"Err": f"unknown method {method}"}


@contextlib.contextmanager
def plugin_server(socket_path: Path, root: Path, scope: str = "local") -> Iterator[PluginServer]:
    server = PluginServer(socket_path, root, scope)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        socket_path.unlink(missing_ok=True)


# ----- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exclusive() -> Iterator[None]:
    """One run of these tests at a time on a host; engines e2e-* left by a killed run are removed."""
    import fcntl

    with open("/run/lock/moorage-testbed-e2e.lock", "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pytest.skip("another run of the testbed engine tests holds /run/lock/moorage-testbed-e2e.lock")
        yield


@pytest.fixture(scope="module")
def workdir(exclusive: None) -> Iterator[Path]:
    # Short, so unix socket paths under it stay far below the 108-byte limit.
    folder = Path(tempfile.mkdtemp(prefix="mrg-e2e-", dir="/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def engines(workdir: Path) -> Iterator[list[Any]]:
    """Two engines, e2e-1 and e2e-2, with both images imported; always removed afterwards."""
    from moorage.testbed.engine import EnginePaths, remove_engine, start_engine
    from moorage.testbed.images import build_images, import_images

    paths = [EnginePaths(f"e2e-{i}", workdir / "nodes" / f"e2e-{i}") for i in (1, 2)]
    records: dict[str, Any] = {}
    try:
        began = time.monotonic()
        images = build_images(workdir / "cache")
        TIMINGS["images build (2 tarballs)"] = time.monotonic() - began
        began = time.monotonic()
        images = build_images(workdir / "cache")
        TIMINGS["images build again (cached)"] = time.monotonic() - began

        began = time.monotonic()
        with ThreadPoolExecutor() as pool:
            for record in pool.map(start_engine, paths):
                records[record.name] = record
        TIMINGS["2 engines start, in parallel"] = time.monotonic() - began
        for record in records.values():
            TIMINGS[f"engine {record.name} start (to first ping)"] = record.start_seconds

        began = time.monotonic()
        with ThreadPoolExecutor() as pool:
            imported = list(pool.map(lambda p: import_images(p.docker_host, images), paths))
        TIMINGS["import busybox+redis into 2 engines, in parallel"] = time.monotonic() - began
        assert imported == [["busybox:local", "redis:local"]] * 2
        began = time.monotonic()
        assert import_images(paths[0].docker_host, images) == []  # already there: nothing imported
        TIMINGS["import again (already present, skipped)"] = time.monotonic() - began
        yield paths
    finally:
        for path in paths:
            remove_engine(path, records.get(path.name))


@pytest.fixture()
def clients(engines: list[Any]) -> Iterator[list[Any]]:
    from moorage.testbed.engine import engine_client

    made = [engine_client(p) for p in engines]
    try:
        yield made
    finally:
        for client in made:
            for container in client.containers.list(all=True):
                container.remove(force=True)
            client.volumes.prune()
            client.close()


# ----- the engines -----------------------------------------------------------------------------


def test_each_engine_answers_ping_and_is_its_own_host(engines: list[Any], clients: list[Any]) -> None:
    infos = []
    for path, client in zip(engines, clients, strict=True):
        assert client.ping() is True
        info = client.info()
        assert info["Name"] == path.name  # own UTS namespace, named after the node
        assert info["DockerRootDir"] == str(path.data_root)
        assert info["CgroupDriver"] == "cgroupfs"
        infos.append(info)
    assert infos[0]["ID"] != infos[1]["ID"]  # each engine has its own key


def test_busybox_runs_echo_on_every_node(clients: list[Any]) -> None:
    for client in clients:
        assert client.containers.run("busybox:local", ["echo", "hi"], remove=True) == b"hi\n"
        uid, applets = client.containers.run(
            "busybox:local", ["sh", "-c", "id -u; ls /bin | wc -l"], remove=True
        ).split()
        assert uid == b"0" and int(applets) > 50


def test_redis_answers_ping_and_keeps_its_data_in_a_named_volume(clients: list[Any]) -> None:
    client = clients[0]
    volume = {"redis-data": {"bind": "/data", "mode": "rw"}}
    command = ["redis-server", "--appendonly", "yes"]
    first = client.containers.run("redis:local", command, volumes=volume, detach=True, name="redis-1")

    def pong(container: Any) -> bool:
        result = container.exec_run(["redis-cli", "ping"])
        return bool(result.exit_code == 0 and result.output.strip() == b"PONG")

    _until(lambda: pong(first), 20, "redis-cli ping to answer PONG")
    assert first.exec_run(["redis-cli", "set", "greeting", "ahoy"]).output.strip() == b"OK"
    first.remove(force=True)

    second = client.containers.run("redis:local", command, volumes=volume, detach=True, name="redis-2")
    _until(lambda: pong(second), 20, "the second redis to answer PONG")
    assert second.exec_run(["redis-cli", "get", "greeting"]).output.strip() == b"ahoy"
    second.reload()
    assert second.attrs["Config"]["WorkingDir"] == "/data"
    # The default command is redis-server, reachable from other containers (protected mode off).
    third = client.containers.run("redis:local", detach=True, name="redis-3")
    _until(lambda: pong(third), 20, "a default redis:local to answer PONG")
    third.reload()
    address = third.attrs["NetworkSettings"]["IPAddress"]
    reply = client.containers.run("redis:local", ["redis-cli", "-h", address, "ping"], remove=True)
    assert reply.strip() == b"PONG"


def test_published_port_answers_inside_the_nodes_netns_only(engines: list[Any], clients: list[Any]) -> None:
    client = clients[0]
    client.containers.run(
        "busybox:local",
        ["sh", "-c", "mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 80 -h /www"],
        ports={"80/tcp": 18080},
        detach=True,
    )
    netns_file = f"/var/run/netns/{engines[0].netns}"

    get = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:18080/', timeout=2).read().decode())"

    def fetch(*prefix: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*prefix, sys.executable, "-c", get], capture_output=True, text=True, check=False
        )

    _until(lambda: fetch("nsenter", f"--net={netns_file}").stdout == "hello\n\n", 20, "the published port")
    assert "hello" not in fetch().stdout  # the host's own network does not have it


def test_plugin_socket_is_seen_by_its_own_node_only(
    engines: list[Any], clients: list[Any], workdir: Path
) -> None:
    import docker.errors

    one, two = clients
    with plugin_server(engines[0].plugins / "e2evol.sock", workdir / "e2evol-root"):
        made = one.volumes.create("v1", driver="e2evol")
        assert made.attrs["Driver"] == "e2evol"
        assert (workdir / "e2evol-root" / "v1").is_dir()
        out = one.containers.run(
            "busybox:local",
            ["sh", "-c", "echo kept > /v/f && cat /v/f"],
            volumes={"v1": {"bind": "/v"}},
            remove=True,
        )
        assert out == b"kept\n"
        assert (workdir / "e2evol-root" / "v1" / "f").read_text() == "kept\n"
        with pytest.raises(docker.errors.APIError, match='plugin "e2evol" not found'):
            two.volumes.create("v1", driver="e2evol")
        # `docker info` lists a legacy plugin once the engine has used it, not before.
        assert "e2evol" in one.info()["Plugins"]["Volume"]
        assert "e2evol" not in two.info()["Plugins"]["Volume"]
        one.volumes.get("v1").remove()


def test_stopped_engine_leaves_nothing_behind_and_starts_again_with_its_data(workdir: Path) -> None:
    from moorage.testbed import cgroups, netns
    from moorage.testbed.engine import (
        EnginePaths,
        engine_client,
        engine_processes,
        remove_engine,
        start_engine,
        stop_engine,
    )
    from moorage.testbed.images import build_busybox, import_images
    from moorage.testbed.mounts import mounted_under

    paths = EnginePaths("e2e-3", workdir / "nodes" / "e2e-3")
    record = start_engine(paths)
    try:
        import_images(paths.docker_host, [build_busybox(workdir / "cache")])
        client = engine_client(paths)
        client.containers.run("busybox:local", ["sleep", "1000"], detach=True, name="sleeper")
        client.close()
        procs = engine_processes(paths, record)
        names = {Path(f"/proc/{p.pid}/comm").read_text().strip() for p in procs}
        assert {"dockerd", "containerd", "containerd-shim", "sleep"} <= names
        assert cgroups.processes_in(paths.cgroup)  # the container is in the node's cgroup

        began = time.monotonic()
        stop_engine(paths, record, grace=0)  # a power cut: no waiting for the container
        TIMINGS["engine stop, grace=0 (power cut)"] = time.monotonic() - began
        assert not any(p.alive() for p in procs)
        assert engine_processes(paths, record) == []
        assert cgroups.processes_in(paths.cgroup) == []
        assert not any((root / paths.cgroup).exists() for root in cgroups.hierarchies())
        assert mounted_under(workdir / "nodes" / "e2e-3") == []
        assert netns.inode(paths.netns) is not None  # kept for the restart

        began = time.monotonic()
        record = start_engine(paths)
        TIMINGS["engine restart with its data root"] = time.monotonic() - began
        client = engine_client(paths)
        assert [c.name for c in client.containers.list(all=True)] == ["sleeper"]
        assert client.images.get("busybox:local")
        client.containers.get("sleeper").start()
        client.close()

        began = time.monotonic()
        stop_engine(paths, record, grace=15)  # graceful: dockerd stops the container (10 s timeout)
        TIMINGS["engine stop, graceful, 1 container ignoring SIGTERM"] = time.monotonic() - began
        assert engine_processes(paths, record) == []
    finally:
        remove_engine(paths, record)
    assert netns.inode(paths.netns) is None
    assert mounted_under(workdir) == []
    assert not any((root / paths.cgroup).exists() for root in cgroups.hierarchies())


# ----- the whole testbed, with a stand-in for master, agent and driver ---------------------------


def test_testbed_up_node_stop_start_and_down(exclusive: None) -> None:
    import docker.errors
    import httpx

    from moorage.testbed import Testbed, netns
    from moorage.testbed.engine import EnginePaths, engine_client
    from moorage.testbed.mounts import mounted_under

    folder = Path(tempfile.mkdtemp(prefix="mrg-bed-", dir="/tmp"))
    bed = Testbed(folder, moorage=(sys.executable, __file__))
    try:
        began = time.monotonic()
        state = bed.up(2, ["a", "b"], drivers={"e2evol": ["node-1"]}, shared_driver="e2eshared")
        TIMINGS["testbed up, 2 nodes (stand-in master/agents)"] = time.monotonic() - began
        assert state.master is not None
        env = bed.env()
        assert f"export MOORAGE_URL={state.master.url}\n" in env
        assert "export MOORAGE_GRID=testbed\n" in env
        assert f"export DOCKER_HOST_2=unix://{folder}/nodes/node-2/docker.sock\n" in env

        headers = {"Authorization": f"Bearer {state.master.admin_token}"}
        nodes = httpx.get(f"{state.master.url}/v1/nodes/testbed", headers=headers).json()["nodes"]
        assert {n["name"]: n["labels"] for n in nodes} == {"node-1": ["zone=a"], "node-2": ["zone=b"]}
        assert all(n["plugin_dir"].endswith(f"/nodes/{n['name']}/plugins") for n in nodes)

        one, two = (engine_client(n.paths) for n in state.nodes)
        one.volumes.create("own-1", driver="e2evol")
        assert (folder / "nodes" / "node-1" / "volumes" / "e2evol" / "own-1").is_dir()
        with pytest.raises(docker.errors.APIError, match='plugin "e2evol" not found'):
            two.volumes.create("own-1", driver="e2evol")
        one.volumes.create("shared-1", driver="e2eshared")
        assert (folder / "shared" / "e2eshared" / "shared-1").is_dir()
        assert two.volumes.get("shared-1").attrs["Driver"] == "e2eshared"  # one root, both nodes
        assert sorted(one.info()["Plugins"]["Volume"]) == ["e2eshared", "e2evol", "local"]
        assert sorted(two.info()["Plugins"]["Volume"]) == ["e2eshared", "local"]
        one.close()

        node1 = state.node("node-1")
        bed.node_stop("node-1", grace=0)
        assert not node1.engine.dockerd.alive()  # type: ignore[union-attr]
        assert not node1.agent.alive()  # type: ignore[union-attr]
        assert not any(d.process.alive() for d in node1.drivers)  # type: ignore[union-attr]
        assert two.ping()
        assert bed.state().node("node-1").running is False

        began = time.monotonic()
        bed.node_start("node-1")
        TIMINGS["testbed node start (engine, drivers, agent online)"] = time.monotonic() - began
        restarted = bed.state().node("node-1")
        assert restarted.running and restarted.agent is not None and restarted.agent.alive()
        one = engine_client(restarted.paths)
        assert one.volumes.get("own-1").attrs["Driver"] == "e2evol"  # the driver is back
        assert one.volumes.get("shared-1")
        one.close()
        two.close()
        refs = [
            ref
            for n in bed.state().nodes
            for ref in (n.engine.dockerd if n.engine else None, n.agent, *(d.process for d in n.drivers))
            if ref is not None
        ]
        master = bed.state().master
    finally:
        began = time.monotonic()
        bed.down()
        TIMINGS["testbed down, 2 nodes"] = time.monotonic() - began
    assert master is not None and master.process is not None and not master.process.alive()
    assert not any(ref.alive() for ref in refs)
    ours = {EnginePaths(f"node-{i}", folder / "nodes" / f"node-{i}").netns for i in (1, 2)}
    assert not ours & set(netns.names())
    assert mounted_under(folder) == []
    assert sorted(p.name for p in folder.iterdir()) == [".lock", "cache"]
    shutil.rmtree(folder)


# ----- the stand-in for the moorage command ------------------------------------------------------


def _stand_in_master(args: argparse.Namespace) -> None:
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "admin.token").write_text("admin-secret\n")
    seen: dict[str, dict[str, Any]] = {}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *a: Any) -> None:
            pass

        def _send(self, status: int, body: Any) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _admin(self) -> bool:
            return self.headers.get("Authorization") == "Bearer admin-secret"

        def do_GET(self) -> None:
            if self.path == "/v1/ping":
                self._send(200, {"ok": True})
            elif self.path == "/v1/nodes/testbed" and self._admin():
                now = time.monotonic()
                nodes = [
                    {**node, "status": "online" if now - node["at"] < 2 else "offline"}
                    for node in seen.values()
                ]
                self._send(200, {"nodes": nodes})
            else:
                self._send(404, {"error": self.path})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path == "/v1/grids" and self._admin():
                self._send(201, {"name": body["name"]})
            elif self.path == "/v1/grids/testbed/token" and self._admin():
                self._send(200, {"token": "join-secret"})
            elif self.path == "/v1/hello" and body.get("token") == "join-secret":
                seen[body["name"]] = {**body, "at": time.monotonic()}
                self._send(200, {})
            else:
                self._send(403, {"error": self.path})

    host, port = args.listen.rsplit(":", 1)
    HTTPServer((host, int(port)), Handler).serve_forever()


def _stand_in_agent(args: argparse.Namespace) -> None:
    import httpx

    sock = args.docker_host.removeprefix("unix://")
    hello = {
        "name": args.name,
        "token": args.token,
        "labels": args.label or [],
        "plugin_dir": args.plugin_dir,
        "data_dir": args.data_dir,
    }
    while True:
        with (
            contextlib.suppress(httpx.HTTPError),
            httpx.Client(transport=httpx.HTTPTransport(uds=sock), timeout=2) as docker_api,
        ):
            if docker_api.get("http://docker/_ping").text == "OK":
                httpx.post(f"{args.master}/v1/hello", json=hello, timeout=2)
        time.sleep(0.3)


def _stand_in(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    master = sub.add_parser("master")
    master.add_argument("--listen", required=True)
    master.add_argument("--data-dir", required=True)
    agent = sub.add_parser("agent")
    for option in ("--master", "--name", "--docker-host", "--plugin-dir", "--data-dir"):
        agent.add_argument(option, required=True)
    agent.add_argument("--token", default=os.environ.get("MOORAGE_JOIN_TOKEN"))
    agent.add_argument("--label", action="append")
    agent.add_argument("--helper-image")
    driver = sub.add_parser("driver")
    driver.add_argument("kind", choices=["dirvol"])
    driver.add_argument("--root", required=True)
    driver.add_argument("--socket", required=True)
    driver.add_argument("--scope", default="local")
    args = parser.parse_args(argv)
    if args.command == "master":
        _stand_in_master(args)
    elif args.command == "agent":
        _stand_in_agent(args)
    else:
        PluginServer(Path(args.socket), Path(args.root), args.scope).serve_forever()


if __name__ == "__main__":
    _stand_in(sys.argv[1:])

"""dirvol driving a real Docker Engine: a throwaway dockerd that finds the plugin by its socket.

The engine runs in its own network namespace and its own mount namespace, where a private bind
mount puts this test's plugins folder over /run/docker/plugins (TESTBED.md, point 4), so only this
engine sees the plugin and nothing on the host changes. Everything is torn down by pid, always.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import httpx
import pytest

pytestmark = pytest.mark.e2e

BUSYBOX = Path("/bin/busybox")
IMAGE = "mrgtest/busybox:latest"
PLUGINS_DIR = Path("/run/docker/plugins")
TOOLS = ("dockerd", "containerd", "runc", "unshare", "nsenter", "ip", "mount")


def _missing_prerequisite() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"needs {', '.join(missing)} (apt-get install -y docker.io)"
    if not BUSYBOX.is_file():
        return "needs a static /bin/busybox (apt-get install -y busybox-static)"
    return None


@dataclass(frozen=True)
class Engine:
    client: docker.DockerClient
    plugins: Path
    volumes: Path


def wait_until(ready: Callable[[], object], what: str, log: Path | None = None, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():
                return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-4000:] if log and log.exists() else ""
    raise AssertionError(f"{what} did not come up within {timeout}s\n{tail}")


def stop_process(process: subprocess.Popen[bytes], pid: int | None = None, timeout: float = 60) -> None:
    """SIGTERM ``pid`` (default: the process's own), wait, then SIGKILL if it lingers."""
    target = pid or process.pid
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
        process.wait(timeout=10)


def kill_by_pidfile(pidfile: Path, owner: Path) -> None:
    """Stop a leftover child (dockerd's containerd) named by its pidfile, if it is still running.

    The pid is only trusted while that process's command line still names ``owner`` (our tmp dir).
    """
    with contextlib.suppress(FileNotFoundError, ValueError, ProcessLookupError):
        pid = int(pidfile.read_text().strip())
        if str(owner) not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


def busybox_tar() -> bytes:
    """A root file system of one static busybox and the applet links the test uses."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "cat", "echo", "sleep", "ls"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            tar.addfile(link)
        for folder in ("data", "tmp"):
            info = tarfile.TarInfo(folder)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture
def engine() -> Iterator[Engine]:
    problem = _missing_prerequisite()
    if problem:
        pytest.skip(problem)
    with contextlib.ExitStack() as cleanup:
        tmp = Path(tempfile.mkdtemp(prefix="mrg-dv-", dir="/tmp"))
        cleanup.callback(shutil.rmtree, tmp, ignore_errors=True)
        plugins, volumes = tmp / "plugins", tmp / "volumes"
        plugins.mkdir()
        PLUGINS_DIR.mkdir(parents=True, exist_ok=True)  # the bind mount target; dockerd's own folder

        netns = f"mrgtest-dv-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        cleanup.callback(subprocess.run, ["ip", "netns", "delete", netns], check=False)
        subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)

        plugin_log = (tmp / "dirvol.log").open("wb")
        cleanup.callback(plugin_log.close)
        sock = plugins / "dirvol.sock"
        plugin = subprocess.Popen(
            [sys.executable, "-m", "moorage.driver.dirvol", "--root", str(volumes), "--socket", str(sock)],
            stdout=plugin_log,
            stderr=subprocess.STDOUT,
        )
        cleanup.callback(stop_process, plugin)

        def plugin_listens() -> bool:
            with socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
            return True

        wait_until(plugin_listens, "the dirvol plugin", tmp / "dirvol.log")

        pidfile, docker_sock = tmp / "docker.pid", tmp / "docker.sock"
        dockerd = (
            f"dockerd --data-root {tmp / 'data'} --exec-root {tmp / 'exec'} -H unix://{docker_sock}"
            f" --pidfile {pidfile}"
        )
        engine_log = (tmp / "dockerd.log").open("wb")
        cleanup.callback(engine_log.close)
        engine = subprocess.Popen(
            [
                "unshare",
                "-m",
                "--propagation",
                "private",
                "sh",
                "-c",
                f"mount --bind {plugins} {PLUGINS_DIR} && exec nsenter --net=/var/run/netns/{netns} {dockerd}",
            ],
            stdout=engine_log,
            stderr=subprocess.STDOUT,
        )
        cleanup.callback(kill_by_pidfile, tmp / "exec" / "containerd" / "containerd.pid", tmp)
        cleanup.callback(lambda: stop_process(engine, _pid_from(pidfile)))

        def engine_answers() -> bool:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(docker_sock))) as http:
                return http.get("http://docker/_ping").text == "OK"

        wait_until(engine_answers, "dockerd", tmp / "dockerd.log", timeout=60)
        client = docker.DockerClient(base_url=f"unix://{docker_sock}", timeout=120)
        cleanup.callback(client.close)
        cleanup.callback(_remove_all_containers, client)

        client.api.import_image_from_data(busybox_tar(), repository=IMAGE.split(":")[0], tag="latest")
        yield Engine(client=client, plugins=plugins, volumes=volumes)


def _pid_from(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _remove_all_containers(client: docker.DockerClient) -> None:
    with contextlib.suppress(Exception):
        for container in client.containers.list(all=True):
            container.remove(force=True)


def plugin_call(sock: Path, endpoint: str, body: dict[str, object]) -> dict[str, object]:
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock)), base_url="http://dirvol") as client:
        reply = client.post(f"/{endpoint}", content=json.dumps(body)).json()
    assert isinstance(reply, dict)
    return reply


def test_the_engine_finds_dirvol_by_its_socket(engine: Engine) -> None:
    client = engine.client
    # A legacy plugin is listed in `docker info` only once the engine has loaded it; listing
    # volumes makes the engine scan /run/docker/plugins and activate what it finds there.
    assert client.volumes.list() == []
    assert "dirvol" in client.info()["Plugins"]["Volume"]


def test_docker_uses_dirvol_volumes_end_to_end(engine: Engine) -> None:
    client = engine.client

    volume = client.volumes.create(name="v1", driver="dirvol", driver_opts={"tier": "fast"})
    data = engine.volumes / "v1" / "data"
    assert data.is_dir()
    assert volume.attrs["Driver"] == "dirvol"
    described = client.volumes.get("v1").attrs
    assert described["Mountpoint"] == str(data)
    assert described["Status"] == {"mounts": 0, "opts": {"tier": "fast"}}

    mount = {"v1": {"bind": "/data", "mode": "rw"}}
    written = client.containers.run(
        IMAGE,
        ["sh", "-c", "echo hello from one > /data/greeting"],
        volumes=mount,
        network_mode="none",
        remove=True,
    )
    assert written == b""
    assert (data / "greeting").read_text() == "hello from one\n"

    read = client.containers.run(
        IMAGE, ["cat", "/data/greeting"], volumes=mount, network_mode="none", remove=True
    )
    assert read == b"hello from one\n"

    # While a container runs with the volume, Docker holds a mount and the plugin refuses removal.
    holder = client.containers.run(IMAGE, ["sleep", "300"], volumes=mount, network_mode="none", detach=True)
    try:
        assert client.volumes.get("v1").attrs["Status"]["mounts"] == 1
        reply = plugin_call(engine.plugins / "dirvol.sock", "VolumeDriver.Remove", {"Name": "v1"})
        assert "in use by 1 mount(s)" in str(reply["Err"])
    finally:
        holder.remove(force=True)
    assert client.volumes.get("v1").attrs["Status"]["mounts"] == 0

    client.volumes.get("v1").remove()
    assert not (engine.volumes / "v1").exists()
    assert [v.name for v in client.volumes.list()] == []

"""Masters run as real processes on loopback for the API tests; stopped by pid."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.waiting import StopWaiting, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class MasterProcess:
    data_dir: Path
    db_url: str | None = None
    heartbeat_interval: float = 1.0
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    tls: tuple[Path, Path] | None = None  # (certificate, key): serve https/wss
    ca: Path | None = None  # what the tests' own clients trust for an https master
    extra_args: tuple[str, ...] = ()  # more options of 'moorage master'

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        return ssl.create_default_context(cafile=str(self.ca)) if self.ca else True

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}.log"

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def start(self) -> MasterProcess:
        cmd = [
            sys.executable, "-m", "moorage", "master",
            "--listen", f"127.0.0.1:{self.port}",
            "--data-dir", str(self.data_dir),
            "--heartbeat-interval", str(self.heartbeat_interval),
        ]  # fmt: skip
        if self.db_url:
            cmd += ["--db", self.db_url]
        if self.tls:
            cmd += ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])]
        cmd += list(self.extra_args)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        log.close()
        proc = self.proc
        wait_until(
            lambda: (
                (
                    proc.poll() is None
                    and httpx.get(f"{self.url}/v1/ping", timeout=1, verify=self.verify).status_code == 200
                )
                or self._exited()
            ),
            30,
            "the master to answer /v1/ping",
        )
        return self

    def _exited(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise StopWaiting(
                f"master exited with {self.proc.returncode}: {self.log_path.read_text()[-2000:]}"
            )
        return False

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def client(self, token: str | None = "admin") -> httpx.Client:
        headers = {}
        if token == "admin":
            headers["Authorization"] = f"Bearer {self.admin_token}"
        elif token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, verify=self.verify)

"""TLS with the real agent: a ``moorage agent`` process dials ``moorage master --tls-cert/--tls-key``
over wss with ``--ca`` and its node comes online with its engine's facts; an agent given a CA that
did not sign the master's certificate refuses the master and says why, and no node joins.

The agents run on the host against node-1's engine of the session testbed (their own grid, their
own data dirs: they touch nothing of the testbed's grid); the master is one of their own on
127.0.0.1, with a certificate for 127.0.0.1 made here by openssl (``tests/api/test_tls.py``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.agent.identity import CREDENTIAL_FILE
from tests.api.test_tls import make_ca_and_server_cert
from tests.e2e.conftest import Bed
from tests.support.processes import MasterProcess
from tests.support.waiting import StopWaiting, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    folder = tmp_path_factory.mktemp("e2e-tls")
    ca, cert, key = make_ca_and_server_cert(folder / "pki")
    master = MasterProcess(data_dir=folder / "master", tls=(cert, key), ca=ca).start()
    try:
        yield master
    finally:
        master.stop()


def _join_token(master: MasterProcess, grid: str) -> str:
    with master.client() as admin:
        admin.post("/v1/grids", json={"name": grid}).raise_for_status()
        token: str = admin.post(f"/v1/grids/{grid}/token").json()["token"]
    return token


class Agent:
    """A real ``moorage agent`` process on node-1's engine, its output in ``log``."""

    def __init__(
        self, bed: Bed, master: MasterProcess, folder: Path, name: str, token: str, ca: Path
    ) -> None:
        folder.mkdir(parents=True)
        (folder / "plugins").mkdir()
        self.log = folder / "agent.log"
        argv = [
            sys.executable, "-m", "moorage", "agent",
            "--master", master.url, "--ca", str(ca), "--name", name,
            "--docker-host", bed.env["DOCKER_HOST_1"],
            "--plugin-dir", str(folder / "plugins"), "--data-dir", str(folder / "data"),
        ]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
        env["MOORAGE_JOIN_TOKEN"] = token
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        if self.proc.poll() is not None:
            raise StopWaiting(f"the agent exited with {self.proc.returncode}:\n{self.text()[-2000:]}")
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def test_a_real_agent_joins_a_tls_master_with_its_ca(
    bed: Bed, tls_master: MasterProcess, tmp_path: Path
) -> None:
    assert tls_master.ca is not None and tls_master.url.startswith("https://")
    token = _join_token(tls_master, "tls-real")
    agent = Agent(bed, tls_master, tmp_path / "agent", "secure-1", token, tls_master.ca)
    try:
        with tls_master.client() as admin:

            def online() -> dict | None:
                agent.alive()
                found = admin.get("/v1/nodes/tls-real/secure-1")
                return (
                    found.json() if found.status_code == 200 and found.json()["status"] == "online" else None
                )

            node = wait_until(online, 60, "the agent's node online over wss")
            engine = bed.docker("node-1").version()["Version"]
            assert node["engine_version"] == engine, "the facts of the real engine it runs on"
            assert (tmp_path / "agent" / "data").is_dir()
            agent.stop()
            assert agent.proc.returncode == 0, agent.text()[-2000:]
            wait_until(
                lambda: admin.get("/v1/nodes/tls-real/secure-1").json()["status"] == "offline",
                30,
                "the node offline once its agent stopped",
            )
        assert "not trusted" not in agent.text()
    finally:
        agent.stop()


def test_a_real_agent_refuses_a_master_its_ca_did_not_sign(
    bed: Bed, tls_master: MasterProcess, tmp_path: Path
) -> None:
    other_ca, _cert, _key = make_ca_and_server_cert(tmp_path / "other-pki")
    token = _join_token(tls_master, "tls-refused")
    agent = Agent(bed, tls_master, tmp_path / "agent", "doubtful-1", token, other_ca)
    try:
        wait_until(
            lambda: agent.alive() and "the master's TLS certificate is not trusted" in agent.text(),
            60,
            "the agent to say it does not trust the master",
        )
        assert "pass --ca FILE with the CA that signed it" in agent.text()
        assert "Traceback" not in agent.text()
        with tls_master.client() as admin:
            assert admin.get("/v1/nodes/tls-refused").json()["nodes"] == [], "no node joined"
        assert not (tmp_path / "agent" / "data" / CREDENTIAL_FILE).exists(), "no credential issued"
    finally:
        agent.stop()

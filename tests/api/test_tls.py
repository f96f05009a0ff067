"""TLS: a master serving https/wss with a certificate from a CA made here (openssl), the CLI and an
agent's connection verifying it with --ca, and clients without that CA refused with a clear message."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from moorage.agent.runner import tls_context
from tests.support.fake_agent import hello, join
from tests.support.processes import MasterProcess

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_ca_and_server_cert(folder: Path) -> tuple[Path, Path, Path]:
    """A CA, and a certificate it signed for 127.0.0.1 and localhost: (ca.pem, cert.pem, key.pem)."""
    folder.mkdir(parents=True, exist_ok=True)
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=Moorage test CA",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=folder,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "server.csr",
        "-subj", "/CN=127.0.0.1",
        cwd=folder,
    )  # fmt: skip
    (folder / "ext.cnf").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "cert.pem", "-days", "2", "-extfile", "ext.cnf",
        cwd=folder,
    )  # fmt: skip
    return folder / "ca.pem", folder / "cert.pem", folder / "key.pem"


@pytest.fixture(scope="module")
def tls_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MasterProcess]:
    folder = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_ca_and_server_cert(folder / "pki")
    master = MasterProcess(data_dir=folder / "master", tls=(cert, key), ca=ca).start()
    try:
        yield master
    finally:
        master.stop()


def _moorage(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env["MOORAGE_CONFIG"] = str(config)
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_cli_logs_in_over_https_with_its_ca_and_keeps_it(
    tls_master: MasterProcess, tmp_path: Path
) -> None:
    assert tls_master.url.startswith("https://")
    assert tls_master.ca is not None
    config = tmp_path / "config.json"
    login = _moorage(
        "login",
        "--url",
        tls_master.url,
        "--token",
        tls_master.admin_token,
        "--ca",
        str(tls_master.ca),
        config=config,
    )
    assert login.returncode == 0, login.stderr
    assert json.loads(config.read_text())["ca"] == str(tls_master.ca.resolve())
    created = _moorage("grid", "create", "tls", config=config)
    assert created.returncode == 0, created.stderr
    listed = _moorage("grid", "ls", "--json", config=config)
    assert [g["name"] for g in json.loads(listed.stdout)] == ["tls"]


def test_a_cli_without_the_ca_is_refused_with_a_clear_message(
    tls_master: MasterProcess, tmp_path: Path
) -> None:
    result = _moorage(
        "login", "--url", tls_master.url, "--token", tls_master.admin_token, config=tmp_path / "config.json"
    )
    assert result.returncode == 1
    assert "TLS certificate this client does not trust" in result.stderr
    assert "--ca FILE" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "config.json").exists(), "nothing saved"


def test_an_agent_connects_over_wss_with_the_ca(tls_master: MasterProcess) -> None:
    with tls_master.client() as admin:
        admin.post("/v1/grids", json={"name": "tls-agents"}).raise_for_status()
        token = admin.post("/v1/grids/tls-agents/token").json()["token"]
        ws, welcome = join(tls_master.url, token, hello("secure"), ssl_context=tls_context(tls_master.ca))
        try:
            assert welcome["type"] == "welcome" and welcome["credential"]
            assert admin.get("/v1/nodes/tls-agents/secure").json()["status"] == "online"
        finally:
            ws.close()


def test_an_agent_without_the_ca_is_refused(tls_master: MasterProcess) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        join(tls_master.url, "any", hello("insecure"), ssl_context=tls_context(None))


def test_the_master_refuses_half_or_unreadable_tls_options(tmp_path: Path) -> None:
    ca, cert, key = make_ca_and_server_cert(tmp_path / "pki")
    half = _moorage(
        "master", "--data-dir", str(tmp_path / "m"), "--tls-cert", str(cert), config=tmp_path / "c"
    )
    assert half.returncode == 1 and "give both --tls-cert and --tls-key" in half.stderr
    swapped = _moorage(
        "master",
        "--data-dir",
        str(tmp_path / "m"),
        "--tls-cert",
        str(key),
        "--tls-key",
        str(ca),
        config=tmp_path / "c",
    )
    assert swapped.returncode == 1 and "give a PEM certificate and its PEM private key" in swapped.stderr
    assert "Traceback" not in half.stderr + swapped.stderr

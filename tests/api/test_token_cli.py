"""The token commands as a user types them, against a real master; and the agent's token options,
checked before it dials anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import MasterProcess


def _moorage(
    *args: str, tmp_path: Path, master: MasterProcess | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    environ["MOORAGE_CONFIG"] = str(tmp_path / "config.json")
    if master is not None:
        environ |= {"MOORAGE_URL": master.url, "MOORAGE_TOKEN": master.admin_token}
    environ |= env or {}
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args], env=environ, capture_output=True, text=True, timeout=60
    )


def test_token_create_ls_rotate_rm(fresh_master: MasterProcess, tmp_path: Path) -> None:
    made = _moorage("token", "create", "alice", tmp_path=tmp_path, master=fresh_master)
    assert made.returncode == 0, made.stderr
    assert "Created admin token alice" in made.stdout and "shown only now" in made.stdout
    secret = made.stdout.strip().splitlines()[-1].strip()
    as_alice = _moorage("grid", "ls", tmp_path=tmp_path, master=fresh_master, env={"MOORAGE_TOKEN": secret})
    assert as_alice.returncode == 0, as_alice.stderr

    listed = _moorage("token", "ls", tmp_path=tmp_path, master=fresh_master)
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "CREATED", "LAST", "USED"]
    assert [line.split()[0] for line in lines[1:]] == ["admin", "alice"]
    assert secret not in listed.stdout and fresh_master.admin_token not in listed.stdout
    as_json = json.loads(_moorage("token", "ls", "--json", tmp_path=tmp_path, master=fresh_master).stdout)
    assert [t["name"] for t in as_json] == ["admin", "alice"] and all("token" not in t for t in as_json)

    rotated = _moorage("token", "rotate", "alice", "--json", tmp_path=tmp_path, master=fresh_master)
    new_secret = json.loads(rotated.stdout)["token"]
    old = _moorage("grid", "ls", tmp_path=tmp_path, master=fresh_master, env={"MOORAGE_TOKEN": secret})
    assert old.returncode == 1 and "Token not accepted" in old.stderr

    no_force = _moorage("token", "rm", "alice", tmp_path=tmp_path, master=fresh_master)
    assert no_force.returncode == 1 and "Command requires --force" in no_force.stderr
    removed = _moorage("token", "rm", "--force", "alice", tmp_path=tmp_path, master=fresh_master)
    assert removed.returncode == 0 and "Removed admin token alice" in removed.stdout
    gone = _moorage("grid", "ls", tmp_path=tmp_path, master=fresh_master, env={"MOORAGE_TOKEN": new_secret})
    assert gone.returncode == 1 and "Token not accepted" in gone.stderr
    last = _moorage("token", "rm", "--force", "admin", tmp_path=tmp_path, master=fresh_master)
    assert last.returncode == 1 and "only admin token" in last.stderr


def test_grid_create_shows_the_join_token_once(fresh_master: MasterProcess, tmp_path: Path) -> None:
    created = _moorage("grid", "create", "shown", tmp_path=tmp_path, master=fresh_master)
    assert created.returncode == 0, created.stderr
    assert "--token-file FILE" in created.stdout
    shown = _moorage("grid", "token", "shown", tmp_path=tmp_path, master=fresh_master)
    assert shown.returncode == 1 and "moorage grid token --rotate" in shown.stderr
    rotated = _moorage("grid", "token", "shown", "--rotate", tmp_path=tmp_path, master=fresh_master)
    assert rotated.returncode == 0 and len(rotated.stdout.strip()) > 20


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--name", "a/b", "--token", "t"], {}, "Node name 'a/b' is not valid"),
        (["--name", "ok"], {}, "has no credential in"),
        (["--name", "ok", "--token", "t", "--token-file", "F"], {}, "--token-file or --token, not both"),
        (["--name", "ok", "--token-file", "missing-file"], {}, "cannot read missing-file"),
        (["--name", "ok", "--ca", "no-ca.pem"], {"MOORAGE_JOIN_TOKEN": "t"}, "no-ca.pem: no such file"),
    ],
    ids=["bad-name", "no-token", "token-twice", "unreadable-file", "missing-ca"],
)
def test_agent_options_are_checked_before_it_starts(
    tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    args = [str(tmp_path / "F") if a == "F" else a for a in args]
    (tmp_path / "F").write_text("secret\n")
    result = _moorage(
        "agent", "--master", "http://127.0.0.1:9", "--data-dir", str(tmp_path / "agent"), *args,
        tmp_path=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr

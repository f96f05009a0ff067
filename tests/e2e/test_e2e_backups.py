"""Issue 13 as a user sees it: restic backups of volume data on real engines and a real restic
repository (in a temporary folder every node can bind-mount), restores onto another node,
verifies, retention, the pause watchdog, and a password that is never shown."""

from __future__ import annotations

import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.e2e.conftest import Bed
from tests.e2e.test_e2e_stacks import containers
from tests.e2e.test_e2e_volumes import redis_cli, write_stack
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

PASSWORD = "pw-" + secrets.token_hex(12)  # scanned for in every answer, output and log line
SHOWN: list[str] = []  # what the CLI printed in this module


def ok(bed: Bed, *args: str) -> str:
    out = bed.ok(*args)
    SHOWN.append(out)
    return out


@pytest.fixture(scope="module")
def repo(bed: Bed, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("backups")
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    path = folder / "repo"
    out = ok(bed, "grid", "backup-repo", "set", str(path), "--password-file", str(password_file))
    assert "initialised a new restic repository" in out
    again = ok(bed, "grid", "backup-repo", "set", str(path), "--password-file", str(password_file))
    assert "opened the repository" in again
    wrong = folder / "wrong"
    wrong.write_text("not-the-password\n")
    refused = bed.fails("grid", "backup-repo", "set", str(path), "--password-file", str(wrong))
    assert "does not open with this password" in refused.text
    SHOWN.append(refused.text)
    assert f"  backups: {path}\n" in ok(bed, "grid", "show")
    return path


def restic(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["restic", "-r", str(repo), "--no-cache", *args],
        env={"RESTIC_PASSWORD": PASSWORD, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


REDIS = """
    stack: {name}
    services:
      redis:
        image: redis:local
        command: redis-server --appendonly yes
        volumes:
          - {name}-data:/data
    volumes:
      {name}-data:
        external: true
    """


def test_a_redis_backup_restored_on_another_node_has_the_keys_of_its_time(
    bed: Bed, repo: Path, tmp_path: Path, name: str
) -> None:
    ok(bed, "volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    bed.ok("stack", "install", str(write_stack(tmp_path, REDIS.format(name=name))))
    (first,) = containers(bed, f"testbed/{name}/redis").values()
    for n in range(50):
        assert redis_cli(first["container"], "set", f"before-{n}", str(n)) == "OK"
    out = ok(bed, "volume", "backup", "create", f"{name}-data")
    assert f"backup {name}-data on {first['node']} done" in out
    for n in range(20):
        assert redis_cli(first["container"], "set", f"after-{n}", str(n)) == "OK"
    assert (
        first["container"].attrs and bed.docker(first["node"]).containers.get(first["id"]).status == "running"
    )

    (backup,) = json.loads(ok(bed, "volume", "backup", "ls", f"{name}-data", "--json"))
    assert backup["volume"] == f"{name}-data" and backup["node"] == first["node"]
    assert backup["docker_volume"] == f"{name}.redis.{name}-data-1"
    assert backup["size"] > 0 and backup["time"]
    listed = ok(bed, "volume", "backup", "ls")
    assert backup["short_id"] in listed
    shown = ok(bed, "volume", "backup", "show", backup["short_id"])
    assert f"  node: {first['node']}\n" in shown and "  quiesce: pause\n" in shown

    other = next(n for n in ("node-1", "node-2", "node-3") if n != first["node"])
    ok(bed, "volume", "backup", "restore", backup["short_id"], "--to", other)

    def moved() -> dict | None:
        found = containers(bed, f"testbed/{name}/redis")
        if len(found) != 1:
            return None
        (only,) = found.values()
        return only if only["node"] == other and only["container"].status == "running" else None

    restored = wait_until(moved, 60, "the instance to run on the restored node")
    assert not bed.docker(first["node"]).containers.list(
        all=True, filters={"label": f"io.moorage.stack={name}"}
    )
    keys = wait_until(
        lambda: (k := redis_cli(restored["container"], "--raw", "keys", "*").split()) and k,
        30,
        "redis to load its data",
    )
    assert sorted(keys) == sorted(f"before-{n}" for n in range(50))
    assert redis_cli(restored["container"], "get", "before-7") == "7"
    bed.ok("stack", "rm", "--force", name)

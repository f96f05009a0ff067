"""Issue 13 as a user sees it: restic backups of volume data on real engines and a real restic
repository (in a temporary folder every node can bind-mount), restores onto another node,
verifies, retention, the pause watchdog, and a password that is never shown."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from datetime import datetime
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
    ok(
        bed,
        "volume",
        "update",
        f"{name}-data",
        "--backup-schedule",
        "0 3 * * *",
        "--backup-keep",
        "daily=7,weekly=4",
    )
    status = ok(bed, "volume", "show", f"{name}-data")
    assert "    schedule: 0 3 * * * (keep daily=7,weekly=4)\n" in status
    assert re.search(rf"    last_backup: {backup['short_id']} \S+ \(\d+[sm] ago\)\n", status), status
    assert "    last_verify: -" in status

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


FILES = """
    stack: {name}
    services:
      files:
        image: busybox:local
        command: sleep 36000
        volumes:
          - {name}-data:/data
    volumes:
      {name}-data:
        external: true
    """
MIB = 1024 * 1024


def _files_stack(bed: Bed, tmp_path: Path, name: str, mib: int) -> dict:
    ok(bed, "volume", "create", "--scope", "instance", "--driver", "local", f"{name}-data")
    bed.ok("stack", "install", str(write_stack(tmp_path, FILES.format(name=name))))
    (found,) = containers(bed, f"testbed/{name}/files").values()
    script = f"i=0; while [ $i -lt {mib} ]; do dd if=/dev/urandom of=/data/f$i bs=1M count=1 2>/dev/null; i=$((i+1)); done"
    code, out = found["container"].exec_run(["sh", "-c", script])
    assert code == 0, out
    return found


def _repo_bytes(repo: Path) -> int:
    return int(json.loads(restic(repo, "stats", "--mode", "raw-data", "--json"))["total_size"])


def _snapshots(repo: Path, volume: str) -> dict[str, datetime]:
    """Each snapshot of the volume as restic lists it: id -> time."""
    listed = json.loads(restic(repo, "snapshots", "--json", "--tag", f"volume={volume}"))
    return {s["id"]: datetime.fromisoformat(s["time"]) for s in listed}


def _snapshot_ids(repo: Path, volume: str) -> set[str]:
    return set(_snapshots(repo, volume))


def test_incremental_backups_grow_the_repository_by_what_changed_and_forget_keeps_restics_set(
    bed: Bed, repo: Path, tmp_path: Path, name: str
) -> None:
    found = _files_stack(bed, tmp_path, name, 200)
    volume = f"{name}-data"
    ok(bed, "volume", "backup", "create", volume)
    growth = []
    for round_ in range(2):
        before = _repo_bytes(repo)
        # 2 of the 200 files of 1 MiB written anew: 1% changed
        script = " && ".join(
            f"dd if=/dev/urandom of=/data/f{n} bs=1M count=1 2>/dev/null" for n in (round_, round_ + 100)
        )
        assert found["container"].exec_run(["sh", "-c", script]).exit_code == 0
        ok(bed, "volume", "backup", "create", volume, "--quiesce", "none")
        growth.append(_repo_bytes(repo) - before)
    assert all(MIB < grown < 3 * MIB for grown in growth), growth  # about the 2 MiB changed, not 200
    backups = json.loads(ok(bed, "volume", "backup", "ls", volume, "--json"))
    assert len(backups) == 3 and {b["id"]: datetime.fromisoformat(b["time"]) for b in backups} == _snapshots(
        repo, volume
    ), "the ids and times restic has, to the microsecond"
    assert all(200 * MIB <= b["size"] < 201 * MIB for b in backups)

    predicted = json.loads(
        restic(repo, "forget", "--dry-run", "--json", "--tag", f"volume={volume}", "--group-by", "host,paths",
               "--keep-last", "2")
    )  # fmt: skip
    expected_keep = {s["id"] for group in predicted for s in group["keep"]}
    dry = json.loads(ok(bed, "volume", "backup", "forget", volume, "--keep-last", "2", "--dry-run", "--json"))
    assert {s["id"] for s in dry["keep"]} == expected_keep and len(dry["remove"]) == 1
    assert _snapshot_ids(repo, volume) == {b["id"] for b in backups}, "a dry run forgets nothing"
    out = ok(bed, "volume", "backup", "forget", volume, "--keep-last", "2")
    assert "kept 2, removed 1" in out
    assert _snapshot_ids(repo, volume) == expected_keep
    assert {b["id"] for b in json.loads(ok(bed, "volume", "backup", "ls", volume, "--json"))} == expected_keep
    restic(repo, "check", "--read-data")

    newest = max(backups, key=lambda b: b["time"])
    out = ok(bed, "volume", "backup", "verify", newest["short_id"])
    assert "verify" in out and "done" in out
    shown = json.loads(ok(bed, "volume", "backup", "show", newest["id"], "--json"))
    assert shown["verified_at"] and shown["verify_error"] is None

    for pack in (repo / "data").rglob("*"):
        if pack.is_file() and pack.stat().st_size > 4096:
            with pack.open("r+b") as damaged:
                damaged.seek(pack.stat().st_size // 2)
                damaged.write(b"\x00" * 64)
    failed = bed.fails("volume", "backup", "verify", newest["short_id"])
    SHOWN.append(failed.text)
    assert "restore failed:" in failed.text, failed.text
    shown_text = ok(bed, "volume", "backup", "show", newest["short_id"])
    assert "  verify_failed: restore failed:" in shown_text
    bed.ok("stack", "rm", "--force", name)


def test_a_paused_container_is_unpaused_by_the_watchdog_when_the_agent_is_killed(
    bed: Bed, repo: Path, tmp_path: Path, name: str
) -> None:
    found = _files_stack(bed, tmp_path, name, 150)
    node = found["node"]
    engine = bed.docker(node)
    limit = 10.0
    started = bed.run("volume", "backup", "create", f"{name}-data", "--pause-limit", str(limit), "--no-wait")
    assert started.code == 0, started.text
    wait_until(lambda: engine.containers.get(found["id"]).status == "paused", 30, "the backup to pause it")
    killed_at = time.monotonic()
    bed.ok("testbed", "agent", "stop", node, "--kill", "--dir", str(bed.directory))
    try:
        wait_until(
            lambda: engine.containers.get(found["id"]).status == "running",
            limit + 10,
            "the watchdog to unpause",
        )
        assert time.monotonic() - killed_at <= limit + 10
    finally:
        bed.ok("testbed", "agent", "start", node, "--dir", str(bed.directory))
    (job,) = [
        j for j in json.loads(ok(bed, "volume", "backup", "jobs", "--json")) if j["volume"] == f"{name}-data"
    ]
    assert job["state"] == "failed" and "went away" in job["error"]
    bed.ok("stack", "rm", "--force", name)


def test_the_password_is_never_shown(bed: Bed, repo: Path) -> None:
    """Every CLI output of this module, every API answer about the grid and its backups, and every
    log line of the master and the agents."""
    answers = [
        ok(bed, "grid", "show", "--json"),
        ok(bed, "volume", "backup", "ls", "--json"),
        ok(bed, "volume", "backup", "jobs", "--json"),
    ]
    logs = [p.read_text(errors="replace") for p in bed.directory.rglob("*.log") if p.is_file()]
    assert logs, "no log files found under the testbed"
    for text in SHOWN + answers + logs:
        assert PASSWORD not in text

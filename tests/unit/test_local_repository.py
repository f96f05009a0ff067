"""A snapshot's full id read off a restic repository on a path of the node (its file under
``snapshots/``), so a backup is recorded without running restic again on the master; anything
unclear leaves it to restic. Real restic makes the repository where it is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from moorage.restic.local_repository import full_snapshot_id

A = "9f4390d1af3be3b20f9451bde281f5344858d8abd8a067befbc29c981cbe023e"
B = "9f4390d1" + "0" * 56


def _repo(tmp_path: Path, *names: str) -> Path:
    (tmp_path / "snapshots").mkdir()
    for name in names:
        (tmp_path / "snapshots" / name).write_bytes(b"")
    return tmp_path


def test_the_one_file_that_starts_with_the_short_id_is_the_snapshot(tmp_path: Path) -> None:
    repo = _repo(tmp_path, A, "03f180f49ce020483f6efcc49fd663fd09fa1e523bf00fb9eac8828a7c9a808e")
    assert full_snapshot_id(repo, "9f4390d1") == A
    assert full_snapshot_id(repo, A) == A


@pytest.mark.parametrize("short", ["9f4390d1", "", "9f43", "../../etc", "9F4390D1"])
def test_anything_unclear_is_left_to_restic(tmp_path: Path, short: str) -> None:
    repo = _repo(tmp_path, A, B, "9f4390d1-not-an-id")
    assert full_snapshot_id(repo, short) is None  # two match, or it is no short id
    assert full_snapshot_id(tmp_path / "missing", "9f4390d1") is None


@pytest.mark.skipif(shutil.which("restic") is None, reason="restic is installed by scripts/setup")
def test_it_is_the_id_restic_gives_and_the_time_given_is_the_snapshots(tmp_path: Path) -> None:
    env = {**os.environ, "RESTIC_PASSWORD": "pw", "TZ": "UTC"}
    repo, data = tmp_path / "repo", tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("x")
    subprocess.run(["restic", "-r", str(repo), "init"], env=env, check=True, capture_output=True)
    done = subprocess.run(
        ["restic", "-r", str(repo), "--no-cache", "backup", "--json", "--time", "2026-12-04 18:38:38.123456", str(data)],
        env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    short = json.loads(done.stdout.splitlines()[-1])["snapshot_id"]
    listed = subprocess.run(
        ["restic", "-r", str(repo), "--no-cache", "snapshots", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    (snapshot,) = json.loads(listed.stdout)
    assert full_snapshot_id(repo, short) == snapshot["id"]
    assert snapshot["time"] == "2026-12-04T18:38:38.123456Z"

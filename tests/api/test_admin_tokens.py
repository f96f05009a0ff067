"""Named admin tokens (/v1/tokens) on a real master: made, listed, rotated and revoked, each taking
effect at the next request; and the store's files private whatever the data dir was."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.support.processes import MasterProcess


def test_tokens_are_named_listed_rotated_and_revoked_at_once(fresh_master: MasterProcess) -> None:
    with fresh_master.client() as admin:
        listed = admin.get("/v1/tokens").json()["tokens"]
        assert [t["name"] for t in listed] == ["admin"], "the first token is called admin"
        assert listed[0]["last_used_at"] is not None, "this very request used it"

        made = admin.post("/v1/tokens", json={"name": "ci"})
        assert made.status_code == 201
        ci = made.json()
        assert ci["name"] == "ci" and ci["token"] and ci["last_used_at"] is None
        assert admin.post("/v1/tokens", json={"name": "ci"}).status_code == 409

        with fresh_master.client(ci["token"]) as as_ci:
            assert as_ci.get("/v1/grids").status_code == 200
            listed = admin.get("/v1/tokens").json()["tokens"]
            assert [t["name"] for t in listed] == ["admin", "ci"]
            assert all(set(t) == {"name", "created_at", "last_used_at"} for t in listed), "never a secret"
            assert listed[1]["last_used_at"] is not None

            rotated = admin.post("/v1/tokens/ci/rotate").json()
            assert rotated["token"] != ci["token"]
            assert as_ci.get("/v1/grids").status_code == 401, "the old secret stops at once"
        with fresh_master.client(rotated["token"]) as as_ci:
            assert as_ci.get("/v1/grids").status_code == 200
            assert admin.delete("/v1/tokens/ci").json() == {"removed": "ci"}
            refused = as_ci.get("/v1/grids")
            assert refused.status_code == 401, "a revoked token stops at once"
        assert admin.delete("/v1/tokens/ci").status_code == 404

        last = admin.delete("/v1/tokens/admin")
        assert last.status_code == 409 and "only admin token" in last.json()["error"]
    fresh_master.stop()
    fresh_master.start()
    with fresh_master.client(rotated["token"]) as as_ci:
        assert as_ci.get("/v1/grids").status_code == 401, "still revoked after a restart"


@pytest.mark.parametrize(
    ("name", "field"),
    [("Bad Name", "name"), ("", "name"), ("x" * 65, "name"), ("a\nb", "name"), ("../x", "name")],
    ids=["space", "empty", "too-long", "newline", "dots-slash"],
)
def test_bad_token_names_are_422_and_make_nothing(master: MasterProcess, name: str, field: str) -> None:
    with master.client() as admin:
        before = admin.get("/v1/tokens").json()
        response = admin.post("/v1/tokens", json={"name": name})
        assert response.status_code == 422
        assert "Token name" in response.json()["error"][field]
        assert admin.get("/v1/tokens").json() == before


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_sqlite_files_are_0600_whatever_the_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "master"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    db = data_dir / "moorage.db"
    db.touch()
    os.chmod(db, 0o644)  # as a restore by hand, or an older master, might leave it
    old_umask = os.umask(0o022)
    try:
        master = MasterProcess(data_dir=data_dir).start()
    finally:
        os.umask(old_umask)
    try:
        with master.client() as admin:
            admin.post("/v1/grids", json={"name": "modes"}).raise_for_status()
        files = [db, data_dir / "moorage.db-wal", data_dir / "moorage.db-shm"]
        assert all(f.exists() for f in files)
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        master.stop()

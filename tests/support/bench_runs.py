"""Running a bench script at its smoke size, on SQLite or on the test PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]


def run_bench_smoke(script: str, backend: str = "sqlite", *extra: str) -> list[str]:
    """``bench/<script> --smoke [EXTRA]`` (with ``--db`` on PostgreSQL); its stdout lines, once it exited 0."""
    args = [sys.executable, str(ROOT / "bench" / script), "--smoke", *extra]
    if backend == "postgresql":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("MOORAGE_TEST_PG_URL is not set; scripts/test starts PostgreSQL and sets it")
            pytest.skip("MOORAGE_TEST_PG_URL not set (scripts/test sets it)")
        args += ["--db", PG_URL]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{script} --smoke exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout.splitlines()

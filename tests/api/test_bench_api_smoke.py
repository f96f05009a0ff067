"""bench/bench_api.py at its smoke size still runs and prints its figures (no timing is asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
FIGURE = re.compile(
    r"^api (sqlite|postgresql) (baseline|agents) +(list|create|delete|all) *: +[\d.]+ requests/s, "
    r"p50 +[\d.]+ ms, p99 +[\d.]+ ms, max +[\d.]+ ms, errors \d+ of [\d,]+$"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_api_smoke(backend: str) -> None:
    args = [sys.executable, str(ROOT / "bench" / "bench_api.py"), "--smoke"]
    if backend == "postgresql":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("MOORAGE_TEST_PG_URL is not set; scripts/test starts PostgreSQL and sets it")
            pytest.skip("MOORAGE_TEST_PG_URL not set (scripts/test sets it)")
        args += ["--db", PG_URL]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = done.stdout.splitlines()
    figures = [line for line in lines if FIGURE.match(line)]
    assert len(figures) == 8, done.stdout  # 4 kinds x (baseline, agents)
    for label in ("cost list", "ratio all", "target (p99", "heartbeats", "20 of 20 agents joined"):
        assert any(f"api {backend} " in line and label in line for line in lines), (label, done.stdout)

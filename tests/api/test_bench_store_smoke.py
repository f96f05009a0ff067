"""bench/bench_store_scale.py and bench/bench_scheduler.py at their smoke sizes still run and print
their figures (no timing is asserted: speed is for the benchmarks to report)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[2]
PLACED = re.compile(
    r"^(sqlite|postgresql) nodes=(\d+) instances=(\d+): [\d,]+ placements/s committed \(.*; "
    r"[\d,]+ per CPU-second; .*first deployment.*took [\d.]+s"
)
REDEPLOY = re.compile(
    r"^(sqlite|postgresql) nodes=\d+ instances=\d+: redeploy .* [\d,]+ instances/s checked$"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_store_scale_smoke(backend: str) -> None:
    args = [sys.executable, str(ROOT / "bench" / "bench_store_scale.py"), "--smoke"]
    if backend == "postgresql":
        if not PG_URL:
            if os.environ.get("CI"):
                pytest.fail("MOORAGE_TEST_PG_URL is not set; scripts/test starts PostgreSQL and sets it")
            pytest.skip("MOORAGE_TEST_PG_URL not set (scripts/test sets it)")
        args += ["--db", PG_URL]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    lines = done.stdout.splitlines()
    placed = [m.groups() for m in map(PLACED.match, lines) if m]
    assert placed == [(backend, "50", "400"), (backend, "200", "400")], done.stdout
    assert sum(1 for line in lines if REDEPLOY.match(line)) == 2, done.stdout


def test_bench_scheduler_smoke() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_scheduler.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert re.search(r"[\d,]+ placements/s", done.stdout), done.stdout

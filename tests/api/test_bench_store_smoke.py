"""bench/bench_store_scale.py and bench/bench_scheduler.py at their smoke sizes still run and print
their figures (no timing is asserted: speed is for the benchmarks to report)."""

from __future__ import annotations

import re

import pytest

from tests.support.bench_runs import run_bench_smoke

PLACED = re.compile(
    r"^(sqlite|postgresql) nodes=(\d+) instances=(\d+): [\d,]+ placements/s committed \(.*; "
    r"[\d,]+ per CPU-second; .*first deployment.*took [\d.]+s"
)
REDEPLOY = re.compile(
    r"^(sqlite|postgresql) nodes=\d+ instances=\d+: redeploy .* [\d,]+ instances/s checked$"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_store_scale_smoke(backend: str) -> None:
    lines = run_bench_smoke("bench_store_scale.py", backend)
    text = "\n".join(lines)
    placed = [m.groups() for m in map(PLACED.match, lines) if m]
    assert placed == [(backend, "50", "400"), (backend, "200", "400")], text
    assert sum(1 for line in lines if REDEPLOY.match(line)) == 2, text


def test_bench_scheduler_smoke() -> None:
    lines = run_bench_smoke("bench_scheduler.py")
    assert any(re.search(r"[\d,]+ placements/s", line) for line in lines), "\n".join(lines)

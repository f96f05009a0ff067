"""bench/bench_api.py at its smoke size still runs and prints its figures (no timing is asserted)."""

from __future__ import annotations

import re

import pytest

from tests.support.bench_runs import run_bench_smoke

FIGURE = re.compile(
    r"^api (sqlite|postgresql) (baseline|agents) +(list|create|delete|all) *: +[\d.]+ requests/s, "
    r"p50 +[\d.]+ ms, p99 +[\d.]+ ms, max +[\d.]+ ms, errors \d+ of [\d,]+$"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_api_smoke(backend: str) -> None:
    lines = run_bench_smoke("bench_api.py", backend)
    text = "\n".join(lines)
    figures = [line for line in lines if FIGURE.match(line)]
    assert len(figures) == 8, text  # 4 kinds x (baseline, agents)
    for label in ("cost list", "ratio all", "target (p99", "heartbeats", "20 of 20 agents joined"):
        assert any(f"api {backend} " in line and label in line for line in lines), (label, text)


MASTERS_FIGURE = re.compile(
    r"^api masters (one master|two masters) +(list|create|delete|all) *: +[\d.]+ requests/s, "
    r"p50 +[\d.]+ ms, p99 +[\d.]+ ms, max +[\d.]+ ms, errors \d+ of [\d,]+$"
)


def test_bench_api_two_masters_smoke() -> None:
    lines = run_bench_smoke("bench_api.py", "postgresql", "--masters", "2")
    text = "\n".join(lines)
    assert len([line for line in lines if MASTERS_FIGURE.match(line)]) == 8, text  # 4 kinds x (one, two)
    for label in ("ratio all", "failover: the survivor leads", "failover: a deploy asked of it"):
        assert any(f"api masters {label}" in line for line in lines), (label, text)

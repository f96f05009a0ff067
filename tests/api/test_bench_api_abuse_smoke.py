"""bench/bench_api_abuse.py at its smoke size still runs, prints its figures and meets no 5xx
(no timing is asserted: at --smoke size the bench reports its timing targets without judging them)."""

from __future__ import annotations

import re

import pytest

from tests.support.bench_runs import run_bench_smoke

RACE = re.compile(
    r"^abuse (sqlite|postgresql) race (volume|stack) create x20, 2 rounds: 2 x 201, .*; 0 5xx, 0 unexpected; "
    r"one \w+ listed after each round: yes; .*: met\)$"
)
STORM = re.compile(
    r"^abuse (sqlite|postgresql) storm (volumes|stacks), 4 clients for 1 s on 4 names: [\d,]+ requests .*; "
    r"0 5xx, 0 unexpected; at the end \d+ listed.*, as the answers imply: yes; .*: met\)$"
)
BODY = re.compile(
    r"^abuse (sqlite|postgresql) 30MB (unauthenticated|admin's) body \((Content-Length|chunked)\) x[\d,]+ "
    r"in [\d.]+ s: answered [\d,]+ x (401|413) in [\d.]+ s at most .*; ping during it p50 [\d.]+ ms "
    r"p99 [\d.]+ ms max [\d.]+ ms over [\d,]+ pings; 0 5xx \(target < 1 s, < 200 ms: .*\)$"
)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_bench_api_abuse_smoke(backend: str) -> None:
    lines = run_bench_smoke("bench_api_abuse.py", backend)
    text = "\n".join(lines)
    assert sorted(m.group(2) for m in map(RACE.match, lines) if m) == ["stack", "volume"], text
    assert sorted(m.group(2) for m in map(STORM.match, lines) if m) == ["stacks", "volumes"], text
    bodies = sorted((m.group(2), m.group(3), m.group(4)) for m in map(BODY.match, lines) if m)
    assert bodies == [
        ("admin's", "Content-Length", "413"),
        ("admin's", "chunked", "413"),
        ("unauthenticated", "Content-Length", "401"),
        ("unauthenticated", "chunked", "401"),
    ], text
    assert f"abuse {backend} total: 0 5xx answers; no internal error in the master's log" in text, text

"""bench/bench_cli.py at its smoke size still runs and prints its figures (no timing is asserted:
speed is for the benchmark to report)."""

from __future__ import annotations

import re

from tests.support.bench_runs import run_bench_smoke

FIGURE = r": median \d+ ms p90 \d+ ms \(cpu \d+ ms\)"
LINES = {
    "volume ls": re.compile(rf"^cli volume ls{FIGURE} \(target <= 120 ms\)$"),
    "python -m": re.compile(rf"^cli python -m moorage volume ls{FIGURE}$"),
    "help": re.compile(rf"^cli --help{FIGURE}$"),
    "import": re.compile(rf"^cli import moorage.cli.main{FIGURE}$"),
    "python": re.compile(rf"^python start-up{FIGURE}$"),
    # with a Docker Engine reachable, its figure and the ratio; without one, why it was skipped
    "docker": re.compile(
        rf"^docker volume ls( \(engine [^)]+\){FIGURE}; ratio [\d.]+x|: skipped \(.+; the bench starts none\))$"
    ),
    "target": re.compile(r"^target cli volume ls <= 120 ms: not judged \(--smoke\)$"),
}


def test_bench_cli_smoke() -> None:
    lines = run_bench_smoke("bench_cli.py")
    text = "\n".join(lines)
    for name, pattern in LINES.items():
        assert sum(1 for line in lines if pattern.match(line)) == 1, (name, text)
    assert lines[0].startswith("machine: "), text

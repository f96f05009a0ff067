"""The benchmarks on real engines still run: each script with ``--smoke`` (a tiny size, one run).

Each bench starts its own 1-node testbed in its own folder and takes it down (and leaves Docker
Swarm) before it exits; these tests check that it exited 0, printed its figure lines, and left
no process, network namespace or mount of that testbed behind.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.leftovers import assert_nothing_left

pytestmark = pytest.mark.e2e

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "the benches start a testbed, which needs root (network and mount namespaces)"
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        return "dockerd and the docker command are not installed (scripts/setup installs docker.io)"
    return None


@pytest.fixture
def folder() -> Iterator[Path]:
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"the bench smoke tests cannot run: {missing}")
        pytest.skip(missing)
    directory = Path(f"/tmp/mrg-bsmoke-{uuid.uuid4().hex[:6]}")
    try:
        yield directory
    finally:
        # The bench takes its testbed down itself; this is only for a bench that was killed.
        if (directory / "state.json").exists():
            subprocess.run(
                [sys.executable, "-m", "moorage", "testbed", "down", "--dir", str(directory)],
                capture_output=True,
                timeout=300,
                check=False,
            )
        assert_nothing_left(directory, ["node-1"])
        shutil.rmtree(directory, ignore_errors=True)


def _run(script: str, folder: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", "--dir", str(folder)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"{script} --smoke exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def test_bench_deploy_smoke(folder: Path) -> None:
    out = _run("bench_deploy.py", folder)
    assert re.search(r"^machine: \d+ CPUs .* GiB memory", out, re.M), out
    line = re.search(r"^deploy N=3: raw (\S+)s  swarm (\S+)s  moorage (\S+)s  moorage/raw (\S+)  "
                     r"moorage/swarm (\S+)  master cpu (\S+)s agent cpu (\S+)s$", out, re.M)  # fmt: skip
    assert line, out
    assert all(float(value) > 0 for value in line.groups()[:5]), line.group(0)
    assert re.search(r"^target N=3 .*: (met|NOT met)$", out, re.M), out
    shell = re.search(r"^deploy N=3 from the shell: moorage stack install (\S+)s, cli/raw (\S+) ", out, re.M)
    assert shell and float(shell.group(1)) > 0, out
    assert re.search(
        r"^target N=3 \(moorage stack install from the shell <= 1\.1 x raw\): (met|NOT met)$", out, re.M
    )


def test_bench_volume_ops_smoke(folder: Path) -> None:
    out = _run("bench_volume_ops.py", folder)
    assert re.search(r"^machine: \d+ CPUs", out, re.M), out
    assert re.search(r"^volumes 5 raw docker: create \S+s  rm \S+s  total \S+s$", out, re.M), out
    assert re.search(r"^volumes 5 definitions via API: .* api/raw \d+\.\d\d ", out, re.M), out
    assert re.search(r"^volumes 5 docker volumes via agents: .* agents/raw \d+\.\d\d ", out, re.M), out
    assert re.search(
        r"^target \(<= 1\.5 x raw\): definitions (met|NOT met), agents (met|NOT met)$", out, re.M
    )


def test_bench_volume_move_smoke(folder: Path) -> None:
    out = _run("bench_volume_move.py", folder)
    assert re.search(r"^machine: \d+ CPUs", out, re.M), out
    move = re.search(r"^move/raw = (\d+\.\d\d) \(target <= 1\.5\)$", out, re.M)
    downtime = re.search(r"^downtime/move = (\d+\.\d{3}) \(target <= 0\.2\)$", out, re.M)
    assert move and downtime, out
    assert float(move.group(1)) > 0 and float(downtime.group(1)) > 0, out


def test_bench_drain_moves_smoke(folder: Path) -> None:
    out = _run("bench_drain_moves.py", folder)
    assert re.search(r"^machine: \d+ CPUs", out, re.M), out
    rounds = re.findall(
        r"^(\d) at a time: (\d+\.\d\d)s for all, mean stop-to-switch (\d+\.\d\d)s; "
        r"time/one-at-a-time = (\d+\.\d\d), downtime/one-at-a-time = (\d+\.\d\d)$",
        out,
        re.M,
    )
    assert [r[0] for r in rounds] == ["1", "2"], out
    assert all(float(v) > 0 for r in rounds for v in r[1:]), out

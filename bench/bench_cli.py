"""How fast the ``moorage`` CLI answers, timed from the shell as a person runs it. One figure per line.

    python bench/bench_cli.py             # 30 runs of each command (about a minute)
    python bench/bench_cli.py --smoke     # 3 runs each: checks that it still runs (no target judged)
    python bench/bench_cli.py --runs 100 --volumes 50

A master (``python -m moorage master`` on loopback, a SQLite file in a temp dir), a grid with
``--volumes`` volume definitions (20); then each command runs as a fresh process, ``--runs``
times, in an order rotated from run to run (so that what else runs on the machine weighs on all
of them alike), timed from fork to exit (wall, time.perf_counter) with the CPU seconds it used:

volume ls      ``moorage volume ls`` (the console script beside this Python) against that master
python -m      ``python -m moorage volume ls``, the same through the module
help           ``moorage --help``
import         ``python -c 'import moorage.cli.main'``: what every command imports
floor          ``python -c 'import typer, http.client, json'``: the libraries a command cannot do
               without (its parser, its HTTP client), imported and nothing else done
python         ``python -c pass``: the interpreter's own start, under any Python command

Our own modules are compiled to bytecode before anything is timed (``compileall``, as ``pip
install`` does): in an editable install run with PYTHONDONTWRITEBYTECODE=1 (CI, this machine)
they would otherwise be compiled again by every run, a cost no installed ``moorage`` pays.
docker         ``docker volume ls`` against the Docker Engine that ``DOCKER_HOST`` (or the default
               socket) names, when one answers; the bench starts none (it needs no root)

Target (issue 16, item 7): ``moorage volume ls`` against a local master, median <= 120 ms wall.
Exit status 1 when it is missed (not judged with --smoke) or when the bench could not run.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench_api import Master
from benchlib import BenchError, load_average, log, machine, median, rotations
from moorage.client.api import MasterClient

TARGET_MS = 120.0  # issue 16, item 7: `moorage volume ls` against a local master
GRID = "bench"
DOCKER_CHECK_TIMEOUT = 10.0


@dataclass
class Timings:
    """One command's runs: wall and CPU seconds (user + system) of each."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def median_ms(self) -> float:
        return median(self.wall) * 1000

    def p90_ms(self) -> float:
        if len(self.wall) < 2:
            return self.median_ms()
        return statistics.quantiles(self.wall, n=10, method="inclusive")[-1] * 1000

    def cpu_ms(self) -> float:
        return median(self.cpu) * 1000


def run_once(argv: Sequence[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds of one run of ``argv`` and its output; BenchError if it failed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def moorage_command() -> list[str]:
    """The console script pip made beside this Python (what a shell runs), else ``python -m``."""
    script = Path(sys.executable).with_name("moorage")
    return [str(script)] if script.exists() else [sys.executable, "-m", "moorage"]


def docker_engine(env: dict[str, str]) -> tuple[str | None, str]:
    """The version of the Docker Engine ``docker`` reaches, or None and why there is none."""
    where = env.get("DOCKER_HOST", "the default socket")
    if shutil.which("docker") is None:
        return None, "no docker command on PATH"
    try:
        done = subprocess.run(
            ["docker", "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=DOCKER_CHECK_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None, f"no answer from {where} within {DOCKER_CHECK_TIMEOUT:.0f}s"
    version = done.stdout.strip()
    if done.returncode != 0 or not version:
        return None, f"no Docker Engine answers at {where}"
    return version, where


def define_volumes(master: Master, count: int) -> None:
    with MasterClient(master.url, master.admin_token()) as client:
        client.post("/v1/grids", {"name": GRID})
        for i in range(count):
            client.post(
                f"/v1/volumes/{GRID}",
                {"name": f"data-{i:03d}", "scope": "instance", "driver": "local", "driver_opts": {}},
            )


def measure(commands: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, Timings]:
    timings = {name: Timings() for name in commands}
    for argv in commands.values():  # warm the page cache and the bytecode caches first
        run_once(argv, env)
    for order in rotations(list(commands), runs):
        for name in order:
            wall, cpu, _ = run_once(commands[name], env)
            timings[name].wall.append(wall)
            timings[name].cpu.append(cpu)
    return timings


def figure(label: str, t: Timings) -> str:
    return f"{label}: median {t.median_ms():.0f} ms p90 {t.p90_ms():.0f} ms (cpu {t.cpu_ms():.0f} ms)"


def compile_package() -> None:
    """Bytecode for moorage's modules, as an installed package has it (see the module)."""
    import moorage

    if not compileall.compile_dir(Path(moorage.__file__).parent, quiet=1):
        raise BenchError("compileall failed on the moorage package")


def bench(master: Master, runs: int, volumes: int, smoke: bool) -> int:
    define_volumes(master, volumes)
    compile_package()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env |= {
        "MOORAGE_URL": master.url,
        "MOORAGE_TOKEN": master.admin_token(),
        "MOORAGE_GRID": GRID,
        "MOORAGE_CONFIG": str(master.data_dir.parent / "no-config.json"),  # none: flags and env only
    }
    moorage = moorage_command()
    commands = {
        "volume ls": [*moorage, "volume", "ls"],
        "python -m": [sys.executable, "-m", "moorage", "volume", "ls"],
        "help": [*moorage, "--help"],
        "import": [sys.executable, "-c", "import moorage.cli.main"],
        "floor": [sys.executable, "-c", "import typer, http.client, json"],
        "python": [sys.executable, "-c", "pass"],
    }
    listed = run_once(commands["volume ls"], env)[2].splitlines()
    if len(listed) != volumes + 1:  # the header, then one line per volume
        raise BenchError(f"moorage volume ls printed {len(listed)} lines, not {volumes + 1}:\n{listed}")
    engine, engine_where = docker_engine(env)
    if engine is not None:
        commands["docker"] = ["docker", "volume", "ls"]
    load_start = load_average()
    log(f"timing {len(commands)} commands, {runs} runs each")
    t = measure(commands, env, runs)
    print(f"{machine()}; load average {load_start:.1f} at start, {load_average():.1f} at end")
    print(f"cli: {' '.join(moorage)}, {volumes} volumes in the grid, {runs} runs of each command")
    ls = t["volume ls"]
    print(f"{figure('cli volume ls', ls)} (target <= {TARGET_MS:.0f} ms)")
    print(figure("cli python -m moorage volume ls", t["python -m"]))
    print(figure("cli --help", t["help"]))
    print(figure("cli import moorage.cli.main", t["import"]))
    print(figure("floor: import typer, http.client, json", t["floor"]))
    print(figure("python start-up", t["python"]))
    if engine is not None:
        docker = t["docker"]
        print(
            f"{figure(f'docker volume ls (engine {engine})', docker)}; "
            f"ratio {ls.median_ms() / docker.median_ms():.1f}x"
        )
    else:
        print(f"docker volume ls: skipped ({engine_where}; the bench starts none)")
    met = ls.median_ms() <= TARGET_MS
    if smoke:
        print(f"target cli volume ls <= {TARGET_MS:.0f} ms: not judged (--smoke)")
        return 0
    print(f"target cli volume ls <= {TARGET_MS:.0f} ms: {'met' if met else 'NOT met'}")
    return 0 if met else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="3 runs each, to check the bench still runs")
    parser.add_argument("--runs", type=int, help="runs of each command (default 30; smoke 3)")
    parser.add_argument("--volumes", type=int, default=20, help="volumes defined in the grid (default 20)")
    args = parser.parse_args()
    runs = args.runs or (3 if args.smoke else 30)
    with tempfile.TemporaryDirectory(prefix="moorage-bench-cli-") as tmp:
        master = Master(Path(tmp) / "master", None, 5.0)
        try:
            master.start()
            return bench(master, runs, args.volumes, args.smoke)
        except BenchError as err:
            print(f"bench_cli: {err}\nthe master's log ends:\n{master.log_tail()}", file=sys.stderr)
            return 1
        finally:
            master.stop()


if __name__ == "__main__":
    sys.exit(main())
